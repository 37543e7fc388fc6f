"""Rollouts (SPEC §11.3) in the browser: the list, one rollout's phase progress, counts and
halt reason, pause / resume / abort; and the diff between two versions of a group's config.

Reads go through ``rollout_store`` and ``rollout_views`` (the JSON of ``GET
/api/v1/admin/rollouts/{id}``), commands through ``rollouts.command`` as the admin API's do,
recorded in the rollout's audit trail with the actor ``ui:fleet-pages``. Old versions' bytes
come from the same :class:`~logpulse_agent.server.configs.ConfigCache` agents are served from.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import audit, config_versions, groups, rollout_store, rollouts
from logpulse_agent.server.admin_routes import PLATFORMS
from logpulse_agent.server.errors import BadRequest, Conflict, NotFound
from logpulse_agent.server.rollout_machine import CommandRefused
from logpulse_agent.server.rollout_views import view
from logpulse_agent.server.ui import diff
from logpulse_agent.server.ui.auth import UiRequest, signed_in
from logpulse_agent.server.ui.groups_pages import platform_param
from logpulse_agent.server.ui.templating import redirect

ACTOR = "ui:fleet-pages"
VERBS = ("pause", "resume", "abort")
RECENT = 50
NOTICES = {
    "pause": "The rollout is paused: no further phase is admitted until you resume it.",
    "resume": "The rollout resumed.",
    "abort": "The rollout was aborted: every agent that got the new version is served the"
    " previous one again at its next poll.",
}


@signed_in
async def rollouts_page(ui: UiRequest) -> Response:
    with ui.ctx.store.read() as conn:
        found = rollout_store.list_rollouts(conn, None, RECENT, 0)
        items = [view(conn, rollout, detail=False) for rollout in found]
    return ui.page("rollouts.html", rollouts=items)


@signed_in
async def rollout_page(ui: UiRequest) -> Response:
    with ui.ctx.store.read() as conn:
        rollout = view(conn, rollout_store.get(conn, ui.request.path_params["rollout_id"]))
    values: dict[str, Any] = {
        "rollout": rollout,
        "notice": NOTICES.get(ui.request.query_params.get("done", "")),
    }
    if ui.request.query_params.get("fragment"):
        return ui.page("rollout_live.html", **values)
    return ui.page("rollout.html", **values)


@signed_in
async def abort_confirm(ui: UiRequest) -> Response:
    with ui.ctx.store.read() as conn:
        rollout = view(conn, rollout_store.get(conn, ui.request.path_params["rollout_id"]))
    what = (
        f"version {rollout['toVersion']} of group {rollout['groupSlug']}"
        if rollout["kind"] == "config"
        else f"the upgrade to {rollout['targetVersion']}"
    )
    return ui.page(
        "confirm.html",
        title=f"Abort the rollout of {what}?",
        lines=[
            "Aborting rolls back: every agent that got the new version is served the previous"
            " one again at its next poll, and no further phase is admitted."
            if rollout["kind"] == "config"
            else "Aborting stops queueing upgrade actions; agents already upgraded stay so.",
        ],
        action=f"/ui/rollouts/{rollout['id']}/abort",
        fields={},
        button="Abort rollout",
        cancel=f"/ui/rollouts/{rollout['id']}",
    )


@signed_in
async def command(ui: UiRequest) -> Response:
    rollout_id, verb = ui.request.path_params["rollout_id"], ui.request.path_params["verb"]
    if verb not in VERBS:
        raise NotFound(f"no rollout command {verb!r}")
    reason = ui.form.get("reason", "").strip() or None
    with audit.acting(ACTOR), ui.ctx.store.write() as conn:
        rollout = rollout_store.get(conn, rollout_id)
        try:
            rollouts.command(conn, rollout, verb, reason, ui.now)
        except CommandRefused as exc:
            raise Conflict(f"cannot {verb}: {exc}") from None
    return redirect(f"/ui/rollouts/{rollout_id}?done={verb}")


def _version(raw: str | None, default: int, known: list[int], name: str) -> int:
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a version number, got {raw[:20]!r}") from None
    if value not in known:
        kept = ", ".join(map(str, known[:10]))
        raise NotFound(f"version {value} is not kept for this group (kept: {kept}…)")
    return value


@signed_in
async def diff_page(ui: UiRequest) -> Response:
    params = ui.request.query_params
    platform = platform_param(ui)
    with ui.ctx.store.write() as conn:  # a body rendered for the first time is stored
        group = groups.to_json(groups.get(conn, ui.request.path_params["group"]))
        known = config_versions.versions(conn, group["id"])
        if not known:
            raise NotFound(f"group {group['slug']!r} has no recorded versions yet")
        new = _version(params.get("to"), known[0], known, "to")
        old = _version(params.get("from"), known[1] if len(known) > 1 else new, known, "from")
        old_body = ui.ctx.configs.get(conn, group["id"], platform, old).body.decode("utf-8")
        new_body = ui.ctx.configs.get(conn, group["id"], platform, new).body.decode("utf-8")
    lines = diff.unified(old_body, new_body, f"version {old}", f"version {new}")
    added, removed = diff.counts(lines)
    return ui.page(
        "diff.html",
        group=group,
        versions=known,
        old=old,
        new=new,
        platform=platform,
        platforms=PLATFORMS,
        lines=lines,
        added=added,
        removed=removed,
    )


routes = [
    Route("/rollouts", rollouts_page, methods=["GET"]),
    Route("/rollouts/{rollout_id}", rollout_page, methods=["GET"]),
    Route("/rollouts/{rollout_id}/abort", abort_confirm, methods=["GET"]),
    Route("/rollouts/{rollout_id}/{verb}", command, methods=["POST"]),
    Route("/groups/{group}/diff", diff_page, methods=["GET"]),
]
