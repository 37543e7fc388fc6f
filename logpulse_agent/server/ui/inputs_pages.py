"""A group's inputs from the browser: add, edit, enable, disable, delete.

Each post builds the admin API's request body (:mod:`.input_form`), checks it against the
OpenAPI document exactly as ``POST /api/v1/admin/groups/{group}/inputs`` and ``PATCH
/api/v1/admin/inputs/{id}`` do, and calls the same ``inputs`` domain function in one write
transaction. A refused post shows the admin API's message next to the form, with what was typed
kept, and changes nothing.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import groups, inputs
from logpulse_agent.server.errors import ApiError
from logpulse_agent.server.ui.auth import UiRequest, signed_in
from logpulse_agent.server.ui.groups_pages import group_page_response
from logpulse_agent.server.ui.input_form import form_values, input_body, posted_values
from logpulse_agent.server.ui.templating import redirect


@signed_in
async def add_input(ui: UiRequest) -> Response:
    ref = ui.request.path_params["group"]
    try:
        body = ui.ctx.api.check_request("createInput", input_body(ui.form, creating=True))
        with ui.ctx.store.write() as conn:
            row = inputs.create(conn, ref, body, ui.now)
            slug = groups.resolve(conn, row["group_id"])["slug"]
    except ApiError as exc:
        if exc.status == 404:
            raise
        return group_page_response(
            ui, ref, exc.status, add_error=exc.message, add_values=posted_values(ui.form)
        )
    return redirect(f"/ui/groups/{slug}?done=input-added#inputs")


def _edit_page(
    ui: UiRequest, input_id: str, status: int = 200, error: str | None = None, posted: bool = False
) -> Response:
    with ui.ctx.store.read() as conn:
        item = inputs.to_json(inputs.get(conn, input_id))
        group = groups.to_json(groups.get(conn, item["groupId"]))
    values = posted_values(ui.form, input_type=item["type"]) if posted else form_values(item)
    return ui.page("input_edit.html", status, item=item, group=group, values=values, error=error)


@signed_in
async def edit_input_page(ui: UiRequest) -> Response:
    return _edit_page(ui, ui.request.path_params["input_id"])


@signed_in
async def save_input(ui: UiRequest) -> Response:
    input_id = ui.request.path_params["input_id"]
    try:
        body = ui.ctx.api.check_request("updateInput", input_body(ui.form, creating=False))
        with ui.ctx.store.write() as conn:
            row = inputs.update(conn, input_id, body, ui.now)
            slug = groups.resolve(conn, row["group_id"])["slug"]
    except ApiError as exc:
        if exc.status == 404:
            raise
        return _edit_page(ui, input_id, exc.status, exc.message, posted=True)
    return redirect(f"/ui/groups/{slug}?done=input-saved#inputs")


async def _set_enabled(ui: UiRequest, enabled: bool) -> Response:
    body = ui.ctx.api.check_request("updateInput", {"enabled": enabled})
    with ui.ctx.store.write() as conn:
        row = inputs.update(conn, ui.request.path_params["input_id"], body, ui.now)
        slug = groups.resolve(conn, row["group_id"])["slug"]
    done = "input-enabled" if enabled else "input-disabled"
    return redirect(f"/ui/groups/{slug}?done={done}#inputs")


@signed_in
async def enable_input(ui: UiRequest) -> Response:
    return await _set_enabled(ui, True)


@signed_in
async def disable_input(ui: UiRequest) -> Response:
    return await _set_enabled(ui, False)


@signed_in
async def delete_confirm(ui: UiRequest) -> Response:
    with ui.ctx.store.read() as conn:
        item = inputs.to_json(inputs.get(conn, ui.request.path_params["input_id"]))
        group = groups.to_json(groups.get(conn, item["groupId"]))
    return ui.page(
        "confirm.html",
        title=f"Delete input {item['name']}?",
        lines=[
            f"It leaves group {group['name']}: the next config version no longer has this"
            f" {item['type']} source, and every agent of the group drops it at its next poll.",
            "To stop it for a while instead, disable it: its settings are kept.",
        ],
        action=f"/ui/inputs/{item['id']}/delete",
        fields={},
        button="Delete input",
        cancel=f"/ui/groups/{group['slug']}#inputs",
    )


@signed_in
async def delete_input(ui: UiRequest) -> Response:
    with ui.ctx.store.write() as conn:
        row = inputs.get(conn, ui.request.path_params["input_id"])
        slug = groups.resolve(conn, row["group_id"])["slug"]
        inputs.delete(conn, row["id"], ui.now)
    return redirect(f"/ui/groups/{slug}?done=input-deleted#inputs")


routes = [
    Route("/groups/{group}/inputs", add_input, methods=["POST"]),
    Route("/inputs/{input_id}", edit_input_page, methods=["GET"]),
    Route("/inputs/{input_id}", save_input, methods=["POST"]),
    Route("/inputs/{input_id}/enable", enable_input, methods=["POST"]),
    Route("/inputs/{input_id}/disable", disable_input, methods=["POST"]),
    Route("/inputs/{input_id}/delete", delete_confirm, methods=["GET"]),
    Route("/inputs/{input_id}/delete", delete_input, methods=["POST"]),
]
