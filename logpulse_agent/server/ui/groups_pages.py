"""The Groups list (and creating a group) and a group's page: its inputs, the YAML its agents
get per platform, and its enrolment tokens.

The YAML preview comes from the same :class:`~logpulse_agent.server.configs.ConfigCache` that
serves agents' config polls, so it is byte-identical to what an agent of the group receives.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import (
    agent_filters,
    config_versions,
    enrolment,
    groups,
    inputs,
    rollout_store,
    rollout_views,
)
from logpulse_agent.server.admin_routes import PLATFORMS
from logpulse_agent.server.errors import ApiError, BadRequest
from logpulse_agent.server.render import routing_for
from logpulse_agent.server.render_inputs import SCHEMAS
from logpulse_agent.server.ui.auth import UiRequest, signed_in
from logpulse_agent.server.ui.templating import redirect

NOTICES = {
    "created": "The group was created. Add an input, then mint an enrolment token.",
    "input-added": "The input was added; the group's config version went up by one.",
    "input-saved": "The input was saved.",
    "input-enabled": "The input was enabled; the next config includes it.",
    "input-disabled": "The input was disabled; the next config leaves it out.",
    "input-deleted": "The input was deleted.",
    "token-revoked": "The enrolment token was revoked.",
}
INPUT_TYPES = sorted(SCHEMAS)
NEW_INPUT = {
    "type": "",
    "name": "",
    "options": "",
    "enabled": True,
    "indexOverride": "",
    "sourcetypeOverride": "",
    "sourceOverride": "",
}


@signed_in
async def groups_page(ui: UiRequest) -> Response:
    return _groups_list(ui)


def _groups_list(
    ui: UiRequest, status: int = 200, error: str | None = None, values: dict[str, str] | None = None
) -> Response:
    with ui.ctx.store.read() as conn:
        rows = groups.list_all(conn)
    return ui.page(
        "groups.html",
        status,
        groups=[groups.to_json(row) for row in rows],
        error=error,
        values=values or {"name": "", "slug": ""},
    )


@signed_in
async def create_group(ui: UiRequest) -> Response:
    values = {"name": ui.form.get("name", ""), "slug": ui.form.get("slug", "").strip()}
    body: dict[str, Any] = {"name": values["name"]}
    if values["slug"]:
        body["slug"] = values["slug"]
    try:
        body = ui.ctx.api.check_request("createGroup", body)
        with ui.ctx.store.write() as conn:
            row = groups.create(conn, body["name"], body.get("slug"), ui.now)
    except ApiError as exc:
        return _groups_list(ui, exc.status, exc.message, values)
    return redirect(f"/ui/groups/{row['slug']}?done=created")


def input_row(item: dict[str, Any], row: Any) -> dict[str, Any]:
    """An input's admin JSON plus its effective routing and its options as one line."""
    index, sourcetype, source = routing_for(inputs.spec(row))
    return {
        **item,
        "routing": {"index": index, "sourcetype": sourcetype, "source": source},
        "optionsLine": json.dumps(item["options"], sort_keys=True) if item["options"] else "",
    }


def platform_param(ui: UiRequest) -> str:
    """The ``platform`` query parameter (default ``linux``); 400 for another value."""
    platform = ui.request.query_params.get("platform", "linux")
    if platform not in PLATFORMS:
        raise BadRequest(f"platform must be one of {', '.join(PLATFORMS)}, got {platform[:20]!r}")
    return platform


def group_page_response(ui: UiRequest, ref: str, status: int = 200, **extra: Any) -> Response:
    """The group page; ``extra`` carries a refused form's error and values back into it."""
    platform = platform_param(ui)
    now = ui.now
    with ui.ctx.store.read() as conn:
        group = groups.get(conn, ref)
        rows = inputs.list_for_group(conn, group["id"])
        rendered = ui.ctx.configs.get(conn, group["id"], platform)
        tokens = enrolment.list_tokens(conn, group["id"])
        which = agent_filters.AgentFilter(now, ui.ctx.offline_threshold, group["id"])
        counts = agent_filters.status_counts(conn, which)
        latest = rollout_store.latest_config(conn, group["id"])
        rollout = None if latest is None else rollout_views.view(conn, latest, detail=False)
        versions = config_versions.versions(conn, group["id"])
    values: dict[str, Any] = {
        "group": groups.to_json(group),
        "inputs": [input_row(inputs.to_json(row), row) for row in rows],
        "input_types": INPUT_TYPES,
        "platform": platform,
        "platforms": PLATFORMS,
        "preview": rendered.body.decode("utf-8"),
        "preview_etag": rendered.etag,
        "tokens": [enrolment.to_json(row, now) for row in tokens],
        "counts": counts,
        "rollout": rollout,
        "versions": versions,
        "notice": NOTICES.get(ui.request.query_params.get("done", "")),
        "add_error": None,
        "add_values": NEW_INPUT,
        "token_error": None,
    }
    values.update(extra)
    return ui.page("group.html", status, **values)


@signed_in
async def group_page(ui: UiRequest) -> Response:
    return group_page_response(ui, ui.request.path_params["group"])


routes = [
    Route("/groups", groups_page, methods=["GET"]),
    Route("/groups", create_group, methods=["POST"]),
    Route("/groups/{group}", group_page, methods=["GET"]),
]
