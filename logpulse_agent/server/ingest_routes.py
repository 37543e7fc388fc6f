"""The HEC-compatible ingest endpoints (SPEC §11.2); the wire rules are in ``ingest_hec.py``.

``POST /services/collector/event`` (also ``/event/1.0`` and ``/services/collector``) takes a
batch from a ``splunk_hec_logs`` sink: the token is checked first (one indexed read), then the
body is read up to the limit, inflated (gzip) up to the same limit, parsed and counted in
memory. ``GET /services/collector/health[/1.0]`` answers as Splunk does: 200 "HEC is healthy"
without a token or with a valid one, 400 for a token this server refuses, 503 while paused.
Every refusal is a HEC ``{"text", "code"}`` body with Splunk's status and code.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server.context import ServerContext, context
from logpulse_agent.server.http import JSON_TYPE
from logpulse_agent.server.ingest_hec import (
    ACK_DISABLED,
    ACK_PATH,
    EVENT_PATHS,
    HEALTH_INVALID_TOKEN,
    HEALTH_PATHS,
    HEALTHY,
    SERVER_BUSY,
    SUCCESS,
    TOO_LARGE,
    UNHEALTHY,
    HecError,
    HecReply,
    check_channel,
    decode_body,
    parse_events,
    splunk_token,
)

_BODIES: dict[HecReply, bytes] = {}


def reply(answer: HecReply) -> Response:
    body = _BODIES.get(answer)
    if body is None:
        body = answer.body()
        if answer.event_number is None:
            _BODIES[answer] = body
    return Response(body, answer.status, media_type=JSON_TYPE)


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HecError(TOO_LARGE)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HecError(TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


async def collect_event(request: Request) -> Response:
    ctx = context(request)
    ingest = ctx.ingest
    try:
        agent = ingest.authenticate(splunk_token(request.headers.get("authorization")))
        if ingest.busy(ctx.clock()):
            raise HecError(SERVER_BUSY)
        check_channel(request.headers.get("x-splunk-request-channel"))
        raw = await _read(request, ingest.body_limit)
        text = decode_body(raw, request.headers.get("content-encoding"), ingest.body_limit)
        batch = parse_events(text, keep=ingest.recent.size)
    except HecError as exc:
        return reply(ingest.refuse(exc.reply))
    ingest.record(agent, batch, ctx.clock())
    return reply(SUCCESS)


async def health(request: Request) -> Response:
    ctx = context(request)
    header = request.headers.get("authorization")
    if header is not None:
        try:
            ctx.ingest.authenticate(splunk_token(header))
        except HecError:
            return reply(HEALTH_INVALID_TOKEN)
    return reply(UNHEALTHY if ctx.ingest.busy(ctx.clock()) else HEALTHY)


async def ack(request: Request) -> Response:
    """Indexer acknowledgement queries: never needed, as no answer here carries an ``ackId``."""
    ctx: ServerContext = context(request)
    try:
        ctx.ingest.authenticate(splunk_token(request.headers.get("authorization")))
    except HecError as exc:
        return reply(exc.reply)
    return reply(ACK_DISABLED)


routes = [
    *(Route(path, collect_event, methods=["POST"]) for path in EVENT_PATHS),
    *(Route(path, health, methods=["GET"]) for path in HEALTH_PATHS),
    Route(ACK_PATH, ack, methods=["POST"]),
]
