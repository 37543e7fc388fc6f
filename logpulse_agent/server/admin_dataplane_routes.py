"""Admin API, data-plane side: the ingest (status, pause, totals, recent events) and each
agent's health history (SPEC §11.1, §11.2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import agent_health, agents, groups, ingest_counters
from logpulse_agent.server.admin_auth import admin
from logpulse_agent.server.admin_routes import PREFIX
from logpulse_agent.server.context import ServerContext
from logpulse_agent.server.errors import BadRequest
from logpulse_agent.server.http import ok, query_int, read_json

MAX_EVENTS = 1000


@admin
async def ingest_status(request: Request, ctx: ServerContext) -> Response:
    return ok(ctx.ingest.status(ctx.clock()))


@admin
async def pause_ingest(request: Request, ctx: ServerContext) -> Response:
    """Answer 503 to every HEC request for ``seconds`` (default 60), e.g. before maintenance."""
    body = ctx.api.check_request("pauseIngest", await read_json(request, ctx.body_limit))
    now = ctx.clock()
    ctx.ingest.pause(float(body.get("seconds", 60)), now)
    return ok(ctx.ingest.status(now))


@admin
async def resume_ingest(request: Request, ctx: ServerContext) -> Response:
    ctx.ingest.resume()
    return ok(ctx.ingest.status(ctx.clock()))


@admin
async def ingest_totals(request: Request, ctx: ServerContext) -> Response:
    """Events and bytes grouped by ``by`` (comma-separated dimensions), optionally of one group
    or agent."""
    by = [d for d in (request.query_params.get("by") or "").split(",") if d]
    ctx.ingest.counters.flush()
    with ctx.store.read() as conn:
        ref = request.query_params.get("group")
        group_id = None if ref is None else groups.resolve(conn, ref)["id"]
        agent_id = request.query_params.get("agent")
        if agent_id is not None:
            agents.get(conn, agent_id)
        try:
            rows = ingest_counters.totals(conn, by, group_id=group_id, agent_id=agent_id)
        except ValueError as exc:
            raise BadRequest(f"query parameter 'by': {exc}") from None
    return ok(rows)


@admin
async def recent_events(request: Request, ctx: ServerContext) -> Response:
    """The group's most recent events, oldest first; ``after`` = the last ``seq`` already seen."""
    after = query_int(request, "after", 0)
    limit = query_int(request, "limit", 100, minimum=1)
    if limit > MAX_EVENTS:
        raise BadRequest(f"query parameter 'limit' must be at most {MAX_EVENTS}")
    with ctx.store.read() as conn:
        group = groups.resolve(conn, request.path_params["group"])
    return ok(ctx.ingest.recent.since(group["id"], after, limit))


@admin
async def health_history(request: Request, ctx: ServerContext) -> Response:
    """The agent's health transitions, newest first."""
    with ctx.store.read() as conn:
        agent_id = agents.get(conn, request.path_params["agent_id"])["id"]
        return ok(agent_health.history(conn, agent_id))


routes = [
    Route(f"{PREFIX}/ingest", ingest_status, methods=["GET"]),
    Route(f"{PREFIX}/ingest/pause", pause_ingest, methods=["POST"]),
    Route(f"{PREFIX}/ingest/resume", resume_ingest, methods=["POST"]),
    Route(f"{PREFIX}/ingest/totals", ingest_totals, methods=["GET"]),
    Route(f"{PREFIX}/groups/{{group}}/events", recent_events, methods=["GET"]),
    Route(f"{PREFIX}/agents/{{agent_id}}/health", health_history, methods=["GET"]),
]
