"""Admin API, configuration side: groups, inputs, YAML preview, enrolment tokens.

Every handler checks the admin token (:func:`admin`), validates its JSON body against the
OpenAPI document, and runs in one transaction, so an edit and its config-version bump commit
together or not at all.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import enrolment, groups, inputs
from logpulse_agent.server.admin_auth import admin
from logpulse_agent.server.agent_routes import YAML_TYPE
from logpulse_agent.server.context import ServerContext
from logpulse_agent.server.errors import BadRequest
from logpulse_agent.server.http import ok, read_json

PLATFORMS = ("linux", "kubernetes")
PREFIX = "/api/v1/admin"


async def _body(request: Request, ctx: ServerContext, operation_id: str) -> dict[str, Any]:
    return ctx.api.check_request(operation_id, await read_json(request, ctx.body_limit))


@admin
async def list_groups(request: Request, ctx: ServerContext) -> Response:
    with ctx.store.read() as conn:
        return ok([groups.to_json(row) for row in groups.list_all(conn)])


@admin
async def create_group(request: Request, ctx: ServerContext) -> Response:
    body = await _body(request, ctx, "createGroup")
    with ctx.store.write() as conn:
        row = groups.create(conn, body["name"], body.get("slug"), ctx.clock())
    return ok(groups.to_json(row), status=201)


@admin
async def get_group(request: Request, ctx: ServerContext) -> Response:
    with ctx.store.read() as conn:
        return ok(groups.to_json(groups.get(conn, request.path_params["group"])))


@admin
async def update_group(request: Request, ctx: ServerContext) -> Response:
    body = await _body(request, ctx, "updateGroup")
    with ctx.store.write() as conn:
        row = groups.update(
            conn,
            request.path_params["group"],
            body.get("name"),
            body.get("slug"),
            ctx.clock(),
            body.get("rollout"),
        )
    return ok(groups.to_json(row))


@admin
async def delete_group(request: Request, ctx: ServerContext) -> Response:
    with ctx.store.write() as conn:
        groups.delete(conn, request.path_params["group"])
    return Response(status_code=204)


@admin
async def list_inputs(request: Request, ctx: ServerContext) -> Response:
    with ctx.store.read() as conn:
        group = groups.resolve(conn, request.path_params["group"])
        return ok([inputs.to_json(row) for row in inputs.list_for_group(conn, group["id"])])


@admin
async def create_input(request: Request, ctx: ServerContext) -> Response:
    body = await _body(request, ctx, "createInput")
    with ctx.store.write() as conn:
        row = inputs.create(conn, request.path_params["group"], body, ctx.clock())
    return ok(inputs.to_json(row), status=201)


@admin
async def get_input(request: Request, ctx: ServerContext) -> Response:
    with ctx.store.read() as conn:
        return ok(inputs.to_json(inputs.get(conn, request.path_params["input_id"])))


@admin
async def update_input(request: Request, ctx: ServerContext) -> Response:
    body = await _body(request, ctx, "updateInput")
    with ctx.store.write() as conn:
        row = inputs.update(conn, request.path_params["input_id"], body, ctx.clock())
    return ok(inputs.to_json(row))


@admin
async def delete_input(request: Request, ctx: ServerContext) -> Response:
    with ctx.store.write() as conn:
        inputs.delete(conn, request.path_params["input_id"], ctx.clock())
    return Response(status_code=204)


@admin
async def preview(request: Request, ctx: ServerContext) -> Response:
    """The bytes an agent of this group and platform gets (same cache, same renderer)."""
    platform = request.query_params.get("platform", "linux")
    if platform not in PLATFORMS:
        raise BadRequest(f"platform must be one of {', '.join(PLATFORMS)}, got {platform!r}")
    with ctx.store.read() as conn:
        group = groups.resolve(conn, request.path_params["group"])
        rendered = ctx.configs.get(conn, group["id"], platform)
    headers = {"x-config-version": str(rendered.version), "x-config-etag": rendered.etag}
    return Response(rendered.body, 200, headers=headers, media_type=YAML_TYPE)


@admin
async def list_tokens(request: Request, ctx: ServerContext) -> Response:
    now = ctx.clock()
    with ctx.store.read() as conn:
        ref = request.query_params.get("group")
        group_id = None if ref is None else groups.resolve(conn, ref)["id"]
        rows = enrolment.list_tokens(conn, group_id)
        return ok([enrolment.to_json(row, now) for row in rows])


@admin
async def mint_token(request: Request, ctx: ServerContext) -> Response:
    body = await _body(request, ctx, "mintEnrolmentToken")
    now = ctx.clock()
    with ctx.store.write() as conn:
        row, raw = enrolment.mint_token(
            conn,
            str(body["group"]),
            ttl_seconds=int(body.get("ttlSeconds", enrolment.DEFAULT_TTL_SECONDS)),
            max_uses=int(body.get("maxUses", enrolment.DEFAULT_MAX_USES)),
            label=body.get("label"),
            now=now,
        )
    return ok({**enrolment.to_json(row, now), "token": raw}, status=201)


@admin
async def revoke_token(request: Request, ctx: ServerContext) -> Response:
    now = ctx.clock()
    with ctx.store.write() as conn:
        row = enrolment.revoke(conn, request.path_params["token_id"], now)
    return ok(enrolment.to_json(row, now))


routes = [
    Route(f"{PREFIX}/groups", list_groups, methods=["GET"]),
    Route(f"{PREFIX}/groups", create_group, methods=["POST"]),
    Route(f"{PREFIX}/groups/{{group}}", get_group, methods=["GET"]),
    Route(f"{PREFIX}/groups/{{group}}", update_group, methods=["PATCH"]),
    Route(f"{PREFIX}/groups/{{group}}", delete_group, methods=["DELETE"]),
    Route(f"{PREFIX}/groups/{{group}}/inputs", list_inputs, methods=["GET"]),
    Route(f"{PREFIX}/groups/{{group}}/inputs", create_input, methods=["POST"]),
    Route(f"{PREFIX}/groups/{{group}}/preview", preview, methods=["GET"]),
    Route(f"{PREFIX}/inputs/{{input_id}}", get_input, methods=["GET"]),
    Route(f"{PREFIX}/inputs/{{input_id}}", update_input, methods=["PATCH"]),
    Route(f"{PREFIX}/inputs/{{input_id}}", delete_input, methods=["DELETE"]),
    Route(f"{PREFIX}/enrolment-tokens", list_tokens, methods=["GET"]),
    Route(f"{PREFIX}/enrolment-tokens", mint_token, methods=["POST"]),
    Route(f"{PREFIX}/enrolment-tokens/{{token_id}}/revoke", revoke_token, methods=["POST"]),
]
