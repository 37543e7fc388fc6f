"""The agent protocol of SPEC section 5: enrol, config polling, heartbeat.

These are the hot endpoints (10,000 agents poll every 10 s and beat every 30 s): each one is a
token lookup by hash on a unique index plus a few parametrised statements in one transaction,
and config bodies come from the per-(group, version, platform) render cache.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import actions, agent_health, agents, enrolment, rollouts
from logpulse_agent.server.context import context
from logpulse_agent.server.errors import ApiError
from logpulse_agent.server.http import bearer_token, ok, query_int, read_json

YAML_TYPE = "application/yaml"


def _etags(header: str | None) -> set[str]:
    """The etags listed in an ``If-None-Match`` header, without quotes or weak markers."""
    if not header:
        return set()
    tags = set()
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tags.add(tag.strip('"'))
    return tags


async def enrol(request: Request) -> Response:
    ctx = context(request)
    body = ctx.api.check_request("enrolAgent", await read_json(request, ctx.body_limit))
    with ctx.store.write() as conn:
        done = enrolment.enrol(conn, body, ctx.clock())
    data = {
        "agentId": done.agent_id,
        "agentToken": done.agent_token,
        "groupId": done.group_id,
        "configVersion": done.config_version,
    }
    return ok(data, status=201)


async def config(request: Request) -> Response:
    """204 when ``since`` is current and the sent etag (if any) matches; else the YAML.

    After a group move the agent's applied version is held at 0 until it proves it holds the
    new group's config: a poll with that version and its etag (a version number alone could
    still be the old group's). An agent that sends no etag is taken at its word (``since`` at
    least the current version) once it has been served the new group's config.
    """
    ctx = context(request)
    agent_id = request.path_params["agent_id"]
    sent = _etags(request.headers.get("if-none-match"))
    with ctx.store.read() as conn:
        agent = agents.authenticate(conn, agent_id, bearer_token(request))
        since = query_int(request, "since", 0)
        # Held back by a staged rollout (or rolled back): only exactly that version is current,
        # so an agent that holds a newer one is served the older one again.
        current = since == agent.config_version if agent.held else since >= agent.config_version
        if current and not sent and not agent.reset_pending:
            return Response(
                status_code=204, headers={"x-config-version": str(agent.config_version)}
            )
        served = (agent.group_id, agent.config_version)
        # moved, served the new group's current config, and no etag to prove it with:
        confirm = current and not sent and ctx.served_after_move.get(agent.id) == served
        rendered = ctx.configs.get(conn, agent.group_id, agent.platform, agent.config_version)
    if confirm or (current and rendered.etag in sent):
        ctx.served_after_move.pop(agent.id, None)
        if agent.reset_pending or (agent.confirm_rollout and rendered.etag in sent):
            with ctx.store.write() as conn:
                if agent.reset_pending:
                    agents.config_confirmed(conn, agent)
                if agent.confirm_rollout and rendered.etag in sent:
                    rollouts.confirm_etag(conn, agent.confirm_rollout, agent.id)
        return Response(status_code=204, headers={"x-config-version": str(rendered.version)})
    if agent.reset_pending and not sent:
        # SPEC §5 checks the etag only "if sent": an agent that sends none is taken at its word
        # (``since``) once it has been served its new group's config; else it would get this
        # 200 on every poll and show applied version 0 forever.
        ctx.served_after_move[agent.id] = served
    headers = {"x-config-version": str(rendered.version), "x-config-etag": rendered.etag}
    return Response(rendered.body, 200, headers=headers, media_type=YAML_TYPE)


async def heartbeat(request: Request) -> Response:
    ctx = context(request)
    agent_id = request.path_params["agent_id"]
    token = bearer_token(request)
    try:
        raw = await read_json(request, ctx.heartbeat_body_limit)
        body = ctx.api.check_request("postHeartbeat", raw)
        body["actionResults"] = actions.usable_results(
            ctx.api, agent_id, body.get("actionResults") or []
        )
        body = agent_health.usable_reports(ctx.api, agent_id, body)
    except ApiError:
        # Credentials are judged before the body: a stranger gets 401/403/404, not a 4xx
        # about the bytes it sent.
        with ctx.store.read() as conn:
            agents.authenticate(conn, agent_id, token)
        raise
    with ctx.store.write() as conn:
        agent = agents.authenticate(conn, agent_id, token)
        data = agents.record_heartbeat(conn, agent, body, ctx.clock())
    return ok(data)


routes = [
    Route("/api/v1/agents/enrol", enrol, methods=["POST"]),
    Route("/api/v1/agents/{agent_id}/config", config, methods=["GET"]),
    Route("/api/v1/agents/{agent_id}/heartbeat", heartbeat, methods=["POST"]),
]
