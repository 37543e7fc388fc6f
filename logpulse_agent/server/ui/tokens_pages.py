"""Enrolment tokens from the browser: mint one (shown once, with the install one-liner) and
revoke one.

The raw ``EBT_`` token exists only in the answer to the mint post: the database keeps its
SHA-256, and the answer is ``Cache-Control: no-store``, so reloading or going back never shows
it again (a repeated post mints a new token, which the page says).
"""

from __future__ import annotations

import shlex
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import enrolment, groups
from logpulse_agent.server.errors import ApiError, Unprocessable
from logpulse_agent.server.ui.auth import UiRequest, signed_in
from logpulse_agent.server.ui.groups_pages import group_page_response
from logpulse_agent.server.ui.templating import redirect

# The agent's default install_url (SPEC §3). Not imported from the agent's settings module:
# the server may import only the agent's pure shared modules (tests/test_import_contract.py).
INSTALL_URL = "https://get.logpulse.io"
MAX_TTL_HOURS = 24 * 365


def api_url(ui: UiRequest) -> str:
    """The control plane's URL as this browser reaches it (what the new hosts will use)."""
    return str(ui.request.base_url).rstrip("/")


def install_commands(url: str, token: str, install_url: str = INSTALL_URL) -> dict[str, str]:
    """The one-liner that installs, enrols and starts an agent, and the enrol command for a
    host where the agent is already installed (values shell-quoted)."""
    q = shlex.quote
    return {
        "install": f"curl -fsSL {q(install_url)} | sudo LOGPULSE_API_URL={q(url)}"
        f" LOGPULSE_ENROL_TOKEN={q(token)} sh",
        "enrol": f"sudo -u logpulse logpulse-agent enrol --api-url {q(url)} --token {q(token)}",
    }


def _mint_body(ui: UiRequest, group_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"group": group_id}
    hours, uses = ui.form.get("ttlHours", "").strip(), ui.form.get("maxUses", "").strip()
    try:
        if hours:
            ttl = float(hours)
            if not 0 < ttl <= MAX_TTL_HOURS:
                raise Unprocessable(f"expiry must be from 1 minute to {MAX_TTL_HOURS} hours")
            body["ttlSeconds"] = max(60, round(ttl * 3600))
        if uses:
            body["maxUses"] = int(uses)
    except ValueError:
        raise Unprocessable("expiry (hours) and maximum uses must be numbers") from None
    label = ui.form.get("label", "").strip()
    if label:
        body["label"] = label
    return body


@signed_in
async def mint(ui: UiRequest) -> Response:
    ref = ui.request.path_params["group"]
    now = ui.now
    try:
        with ui.ctx.store.read() as conn:
            group = groups.to_json(groups.get(conn, ref))
        body = ui.ctx.api.check_request("mintEnrolmentToken", _mint_body(ui, group["id"]))
        with ui.ctx.store.write() as conn:
            row, raw = enrolment.mint_from_request(conn, body, now)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return group_page_response(ui, ref, exc.status, token_error=exc.message)
    return ui.page(
        "token_minted.html",
        group=group,
        token=raw,
        details=enrolment.to_json(row, now),
        commands=install_commands(api_url(ui), raw),
    )


@signed_in
async def revoke(ui: UiRequest) -> Response:
    with ui.ctx.store.write() as conn:
        row = enrolment.revoke(conn, ui.request.path_params["token_id"], ui.now)
        slug = groups.resolve(conn, row["group_id"])["slug"]
    return redirect(f"/ui/groups/{slug}?done=token-revoked#tokens")


routes = [
    Route("/groups/{group}/tokens", mint, methods=["POST"]),
    Route("/tokens/{token_id}/revoke", revoke, methods=["POST"]),
]
