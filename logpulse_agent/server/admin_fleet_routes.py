"""Admin API, fleet side: agents (list, show, move, revoke), actions (create, list, cancel),
and an on-demand run of the sweeps."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import actions, agents, groups
from logpulse_agent.server.admin_auth import admin
from logpulse_agent.server.admin_routes import PREFIX
from logpulse_agent.server.context import ServerContext
from logpulse_agent.server.errors import BadRequest
from logpulse_agent.server.http import ok, query_int, read_json

MAX_LIMIT = 10000


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise BadRequest(f"query parameter {name!r} must be one of {', '.join(allowed)}")
    return value


def _page(request: Request) -> tuple[int, int]:
    limit = query_int(request, "limit", 1000, minimum=1)
    if limit > MAX_LIMIT:
        raise BadRequest(f"query parameter 'limit' must be at most {MAX_LIMIT}")
    return limit, query_int(request, "offset", 0)


@admin
async def list_agents(request: Request, ctx: ServerContext) -> Response:
    status = _choice(request, "status", agents.STATUSES)
    health = _choice(request, "health", agents.HEALTH_FILTERS)
    limit, offset = _page(request)
    now = ctx.clock()
    ctx.ingest.counters.flush()  # rows show exact ingest counts
    with ctx.store.read() as conn:
        ref = request.query_params.get("group")
        group_id = None if ref is None else groups.resolve(conn, ref)["id"]
        rows = agents.list_agents(
            conn,
            now=now,
            threshold=ctx.offline_threshold,
            group_id=group_id,
            status=status,
            host=request.query_params.get("host") or None,
            health=health,
            limit=limit,
            offset=offset,
        )
    return ok([agents.to_json(row, now, ctx.offline_threshold) for row in rows])


@admin
async def get_agent(request: Request, ctx: ServerContext) -> Response:
    ctx.ingest.counters.flush()
    with ctx.store.read() as conn:
        row = agents.get(conn, request.path_params["agent_id"])
    return ok(agents.to_json(row, ctx.clock(), ctx.offline_threshold))


@admin
async def move_agent(request: Request, ctx: ServerContext) -> Response:
    body = ctx.api.check_request("moveAgent", await read_json(request, ctx.body_limit))
    now = ctx.clock()
    with ctx.store.write() as conn:
        row = agents.move(conn, request.path_params["agent_id"], body["group"], now)
    return ok(agents.to_json(row, now, ctx.offline_threshold))


@admin
async def revoke_agent(request: Request, ctx: ServerContext) -> Response:
    now = ctx.clock()
    with ctx.store.write() as conn:
        row = agents.revoke(conn, request.path_params["agent_id"], now)
    return ok(agents.to_json(row, now, ctx.offline_threshold))


@admin
async def list_actions(request: Request, ctx: ServerContext) -> Response:
    status = _choice(request, "status", actions.STATUSES)
    limit, offset = _page(request)
    agent_id = request.query_params.get("agentId") or None
    batch_id = request.query_params.get("batchId") or None
    with ctx.store.read() as conn:
        rows = actions.list_actions(
            conn,
            agent_id=agent_id,
            status=status,
            batch_id=batch_id,
            limit=limit,
            offset=offset,
        )
    return ok([actions.to_json(row) for row in rows])


@admin
async def create_actions(request: Request, ctx: ServerContext) -> Response:
    """One action per agent in ``agentIds``; the type and payload are checked first."""
    raw = await read_json(request, ctx.bulk_body_limit)
    body: dict[str, Any] = ctx.api.check_request("createActions", raw)
    payload = body.get("payload", {})
    ctx.api.check_action_payload(body["type"], payload)
    deadline = body.get("deadlineSeconds", actions.DEFAULT_DEADLINE_SECONDS)
    with ctx.store.write() as conn:
        rows = actions.create(conn, body["agentIds"], body["type"], payload, deadline, ctx.clock())
    return ok([actions.to_json(row) for row in rows], status=201)


@admin
async def get_action(request: Request, ctx: ServerContext) -> Response:
    with ctx.store.read() as conn:
        return ok(actions.to_json(actions.get(conn, request.path_params["action_id"])))


@admin
async def cancel_action(request: Request, ctx: ServerContext) -> Response:
    with ctx.store.write() as conn:
        row = actions.cancel(conn, request.path_params["action_id"], ctx.clock())
    return ok(actions.to_json(row))


@admin
async def run_sweeps(request: Request, ctx: ServerContext) -> Response:
    report = ctx.sweeper.run_once()
    return ok({"expiredActions": report.expired_actions, "wentOffline": report.went_offline})


routes = [
    Route(f"{PREFIX}/agents", list_agents, methods=["GET"]),
    Route(f"{PREFIX}/agents/{{agent_id}}", get_agent, methods=["GET"]),
    Route(f"{PREFIX}/agents/{{agent_id}}/move", move_agent, methods=["POST"]),
    Route(f"{PREFIX}/agents/{{agent_id}}/revoke", revoke_agent, methods=["POST"]),
    Route(f"{PREFIX}/actions", list_actions, methods=["GET"]),
    Route(f"{PREFIX}/actions", create_actions, methods=["POST"]),
    Route(f"{PREFIX}/actions/{{action_id}}", get_action, methods=["GET"]),
    Route(f"{PREFIX}/actions/{{action_id}}/cancel", cancel_action, methods=["POST"]),
    Route(f"{PREFIX}/sweep", run_sweeps, methods=["POST"]),
]
