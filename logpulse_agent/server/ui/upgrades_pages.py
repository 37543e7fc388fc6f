"""Bulk upgrade: review the resolved selection, confirm, then watch aggregate progress.

1. ``POST /ui/upgrade/review`` (from the agents table: ticked boxes or "all matching the
   filters") resolves the selection on the server and shows the exact count and the first
   hosts, with the target version to fill in.
2. ``POST /ui/upgrade`` resolves it again in the write transaction; only when it still matches
   the reviewed digest are the actions created, through the same checks and domain function as
   ``POST /api/v1/admin/actions`` (one ``upgrade_agent`` action per agent, one batch).
3. ``/ui/upgrades/{batch}`` adds up the batch's actions by status as agents report results.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import actions, agent_filters
from logpulse_agent.server.actions import DEFAULT_DEADLINE_SECONDS, STATUSES
from logpulse_agent.server.errors import ApiError, Conflict, Unprocessable
from logpulse_agent.server.http import isotime
from logpulse_agent.server.ui import selection
from logpulse_agent.server.ui.auth import UiRequest, signed_in
from logpulse_agent.server.ui.templating import redirect
from logpulse_agent.server.ui.views import action_view

SAMPLE_HOSTS = 10
BATCH_PAGE = 50
RECENT_BATCHES = 50


def _review_page(
    ui: UiRequest,
    chosen: selection.Selection,
    status: int = 200,
    error: str | None = None,
) -> Response:
    with ui.ctx.store.read() as conn:
        names = agent_filters.hostnames(conn, chosen.ids[:SAMPLE_HOSTS])
    return ui.page(
        "upgrade_review.html",
        status,
        selection=chosen,
        sample=[names[i] for i in chosen.ids[:SAMPLE_HOSTS] if i in names],
        error=error,
        version=ui.form.get("targetVersion", ""),
        deadline=ui.form.get("deadlineMinutes", str(DEFAULT_DEADLINE_SECONDS // 60)),
    )


@signed_in
async def review(ui: UiRequest) -> Response:
    with ui.ctx.store.read() as conn:
        chosen = selection.resolve(
            conn, selection.parse(ui.form), now=ui.now, threshold=ui.ctx.offline_threshold
        )
    return _review_page(ui, chosen)


def _request_body(ui: UiRequest, agent_ids: list[str]) -> dict[str, Any]:
    """The ``createActions`` body this confirmation stands for, checked like the admin API's."""
    minutes = ui.form.get("deadlineMinutes", "").strip()
    try:
        deadline = round(float(minutes) * 60) if minutes else DEFAULT_DEADLINE_SECONDS
    except ValueError:
        raise Unprocessable("the deadline must be a number of minutes") from None
    payload = {"targetVersion": ui.form.get("targetVersion", "").strip()}
    body = {
        "agentIds": agent_ids,
        "type": "upgrade_agent",
        "payload": payload,
        "deadlineSeconds": deadline,
    }
    checked: dict[str, Any] = ui.ctx.api.check_request("createActions", body)
    ui.ctx.api.check_action_payload("upgrade_agent", payload)
    return checked


@signed_in
async def create(ui: UiRequest) -> Response:
    wanted = selection.parse(ui.form)
    try:
        with ui.ctx.store.write() as conn:
            chosen = selection.resolve(conn, wanted, now=ui.now, threshold=ui.ctx.offline_threshold)
            if ui.form.get("digest") != chosen.digest:
                raise Conflict(
                    f"the selection changed since you reviewed it: it now holds {chosen.count}"
                    " agent(s). Check the new count and confirm again; nothing was queued."
                )
            if not chosen.ids:
                raise Unprocessable("no agent in the selection can be upgraded")
            body = _request_body(ui, chosen.ids)
            rows = actions.create(
                conn,
                body["agentIds"],
                body["type"],
                body["payload"],
                body["deadlineSeconds"],
                ui.now,
            )
    except ApiError as exc:
        if exc.status == 404:
            raise
        with ui.ctx.store.read() as conn:
            chosen = selection.resolve(conn, wanted, now=ui.now, threshold=ui.ctx.offline_threshold)
        return _review_page(ui, chosen, exc.status, exc.message)
    return redirect(f"/ui/upgrades/{rows[0]['batch_id']}")


@signed_in
async def batch_page(ui: UiRequest) -> Response:
    batch_id = ui.request.path_params["batch_id"]
    shown = ui.request.query_params.get("status") or None
    if shown not in (None, *STATUSES):
        shown = None
    with ui.ctx.store.read() as conn:
        counts = actions.batch_counts(conn, batch_id)
        first = actions.list_actions(conn, batch_id=batch_id, limit=1)
        rows = actions.list_actions(conn, batch_id=batch_id, status=shown, limit=BATCH_PAGE)
        names = agent_filters.hostnames(conn, [row["agent_id"] for row in rows])
    items = [action_view(actions.to_json(r), names.get(r["agent_id"])) for r in rows]
    total = sum(counts.values())
    values = {
        "batch_id": batch_id,
        "counts": counts,
        "total": total,
        "finished": total - counts["pending"] - counts["running"],
        "target": action_view(actions.to_json(first[0]))["target"] if first else None,
        "items": items,
        "shown": shown,
        "page_size": BATCH_PAGE,
    }
    if ui.request.query_params.get("fragment"):
        return ui.page("upgrade_live.html", **values)
    return ui.page("upgrade.html", **values)


@signed_in
async def batches_page(ui: UiRequest) -> Response:
    with ui.ctx.store.read() as conn:
        rows = actions.list_batches(conn, limit=RECENT_BATCHES)
    batches = [
        {
            "id": row["batch_id"],
            "type": row["type"],
            "target": json.loads(row["payload"]).get("targetVersion"),
            "createdAt": isotime(row["created_at"]),
            "total": row["total"],
            "counts": {status: row[status] for status in STATUSES},
        }
        for row in rows
    ]
    return ui.page("upgrades.html", batches=batches)


routes = [
    Route("/upgrade/review", review, methods=["POST"]),
    Route("/upgrade", create, methods=["POST"]),
    Route("/upgrades", batches_page, methods=["GET"]),
    Route("/upgrades/{batch_id}", batch_page, methods=["GET"]),
]
