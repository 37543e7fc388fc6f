"""Admin API of staged rollouts (SPEC §11.3): a group's rollout, pause / resume / abort, the
list of past rollouts, and staged bulk upgrades.

    GET  /api/v1/admin/groups/{group}/rollout              the group's latest config rollout
    POST /api/v1/admin/groups/{group}/rollout/pause        (and /resume, /abort)
    GET  /api/v1/admin/rollouts?group=&kind=               past and present rollouts, newest first
    GET  /api/v1/admin/rollouts/{id}                       any rollout (config or upgrade)
    POST /api/v1/admin/rollouts/{id}/pause                 (and /resume, /abort)
    POST /api/v1/admin/upgrades                            a staged bulk upgrade

Commands take an optional JSON body ``{"reason": "…"}``, recorded in the audit trail with the
caller's ``X-LogPulse-Actor``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import groups, rollout_store, rollout_views, rollouts
from logpulse_agent.server.admin_auth import admin
from logpulse_agent.server.admin_routes import PREFIX
from logpulse_agent.server.context import ServerContext
from logpulse_agent.server.errors import BadRequest, Conflict, NotFound
from logpulse_agent.server.http import ok, query_int, read_json
from logpulse_agent.server.rollout_machine import CommandRefused
from logpulse_agent.server.rollout_store import Rollout

VERBS = ("pause", "resume", "abort")
KINDS = ("config", "upgrade")
MAX_LIMIT = 1000


def _group_rollout(conn: Any, ref: str) -> Rollout:
    group = groups.resolve(conn, ref)
    rollout = rollout_store.latest_config(conn, group["id"])
    if rollout is None:
        raise NotFound(
            f"group {group['slug']!r} has had no staged rollout; set its rollout policy with"
            ' PATCH {"rollout": {"strategy": "staged", …}}'
        )
    return rollout


@admin
async def get_group_rollout(request: Request, ctx: ServerContext) -> Response:
    with ctx.store.read() as conn:
        rollout = _group_rollout(conn, request.path_params["group"])
        return ok(rollout_views.view(conn, rollout))


@admin
async def get_rollout(request: Request, ctx: ServerContext) -> Response:
    with ctx.store.read() as conn:
        rollout = rollout_store.get(conn, request.path_params["rollout_id"])
        return ok(rollout_views.view(conn, rollout))


@admin
async def list_rollouts(request: Request, ctx: ServerContext) -> Response:
    limit = query_int(request, "limit", 50, minimum=1)
    if limit > MAX_LIMIT:
        raise BadRequest(f"query parameter 'limit' must be at most {MAX_LIMIT}")
    offset = query_int(request, "offset", 0)
    kind = request.query_params.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise BadRequest(f"query parameter 'kind' must be one of {', '.join(KINDS)}")
    with ctx.store.read() as conn:
        ref = request.query_params.get("group")
        group_id = None if ref is None else groups.resolve(conn, ref)["id"]
        found = rollout_store.list_rollouts(conn, group_id, limit, offset, kind)
        return ok([rollout_views.view(conn, r, detail=False) for r in found])


async def _reason(request: Request, ctx: ServerContext) -> str | None:
    """The optional ``{"reason": …}`` of a command; no body at all is fine."""
    if request.headers.get("content-length", "0") == "0" and "chunked" not in request.headers.get(
        "transfer-encoding", ""
    ):
        return None
    # The six command operations share one body schema.
    body = ctx.api.check_request("rolloutPause", await read_json(request, ctx.body_limit))
    reason = body.get("reason")
    return reason.strip() or None if isinstance(reason, str) else None


async def _command(request: Request, ctx: ServerContext, verb: str, find: Any) -> Response:
    reason = await _reason(request, ctx)
    with ctx.store.write() as conn:
        rollout = find(conn)
        try:
            changed = rollouts.command(conn, rollout, verb, reason, ctx.clock())
        except CommandRefused as exc:
            raise Conflict(f"cannot {verb}: {exc}") from None
        return ok(rollout_views.view(conn, changed))


def _group_command(verb: str) -> Any:
    @admin
    async def endpoint(request: Request, ctx: ServerContext) -> Response:
        ref = request.path_params["group"]
        return await _command(request, ctx, verb, lambda conn: _group_rollout(conn, ref))

    return endpoint


def _rollout_command(verb: str) -> Any:
    @admin
    async def endpoint(request: Request, ctx: ServerContext) -> Response:
        rollout_id = request.path_params["rollout_id"]
        return await _command(request, ctx, verb, lambda conn: rollout_store.get(conn, rollout_id))

    return endpoint


@admin
async def create_upgrade(request: Request, ctx: ServerContext) -> Response:
    body = ctx.api.check_request(
        "createStagedUpgrade", await read_json(request, ctx.bulk_body_limit)
    )
    ctx.api.check_action_payload("upgrade_agent", {"targetVersion": body["targetVersion"]})
    with ctx.store.write() as conn:
        rollout = rollouts.start_upgrade(conn, body, ctx.clock())
        return ok(rollout_views.view(conn, rollout), status=201)


routes = [
    Route(f"{PREFIX}/groups/{{group}}/rollout", get_group_rollout, methods=["GET"]),
    *(
        Route(f"{PREFIX}/groups/{{group}}/rollout/{verb}", _group_command(verb), methods=["POST"])
        for verb in VERBS
    ),
    Route(f"{PREFIX}/rollouts", list_rollouts, methods=["GET"]),
    Route(f"{PREFIX}/rollouts/{{rollout_id}}", get_rollout, methods=["GET"]),
    *(
        Route(f"{PREFIX}/rollouts/{{rollout_id}}/{verb}", _rollout_command(verb), methods=["POST"])
        for verb in VERBS
    ),
    Route(f"{PREFIX}/upgrades", create_upgrade, methods=["POST"]),
]
