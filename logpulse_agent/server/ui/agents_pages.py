"""The Agents table and an agent's own page (revoke, move, cancel an action), under ``/ui``.

Reads and changes go through the same domain functions as the admin API (``agents``,
``actions``, ``groups``), in one transaction each. The table is paginated in SQL (``LIMIT`` /
``OFFSET`` with a ``COUNT``), so a page costs the same with ten agents or ten thousand; with
``?fragment=1`` only its live part is answered, which ``ui.js`` swaps in to refresh the table
without reloading the page.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server import actions, agent_filters, agent_health, agents, groups
from logpulse_agent.server.ui.auth import UiRequest, signed_in
from logpulse_agent.server.ui.query import PER_PAGE_CHOICES, AgentQuery
from logpulse_agent.server.ui.templating import now_utc, redirect
from logpulse_agent.server.ui.views import action_view, agent_view, history_view

RECENT_ACTIONS = 50
HISTORY_SHOWN = 20  # health transitions (the server keeps 50)
COMPONENTS_SHOWN = 20  # data-plane components, noisiest first as the agent sends them
NOTICES = {
    "revoked": "The agent was revoked: its next request gets 403 and its pending actions were"
    " cancelled.",
    "moved": "The agent was moved: its applied version is reset to 0 and its next poll fetches"
    " the new group's config.",
    "cancelled": "The action was cancelled.",
}


@signed_in
async def agents_page(ui: UiRequest) -> Response:
    query = AgentQuery.parse(ui.request.query_params)
    ctx, now = ui.ctx, ui.now
    ctx.ingest.counters.flush()  # rows show exact ingest counts, as the admin API's do
    with ctx.store.read() as conn:
        group = groups.resolve(conn, query.group) if query.group else None
        group_id = None if group is None else group["id"]
        which = agent_filters.AgentFilter(
            now, ctx.offline_threshold, group_id, query.status, query.host, query.health
        )
        total = agent_filters.count(conn, which)
        rows = agents.list_agents(
            conn,
            now=now,
            threshold=ctx.offline_threshold,
            group_id=group_id,
            status=query.status,
            host=query.host,
            health=query.health,
            limit=query.per,
            offset=query.offset,
        )
        counts = agent_filters.status_counts(conn, which)
        group_list = [] if ui.request.query_params.get("fragment") else groups.list_all(conn)
    moment = now_utc(now)
    values: dict[str, Any] = {
        "query": query,
        "total": total,
        "pages": query.pages(total),
        "counts": counts,
        "agents": [agent_view(agents.to_json(r, now, ctx.offline_threshold), moment) for r in rows],
    }
    if ui.request.query_params.get("fragment"):
        return ui.page("agents_live.html", **values)
    return ui.page(
        "agents.html",
        groups=[groups.to_json(g) for g in group_list],
        per_choices=PER_PAGE_CHOICES,
        statuses=agents.STATUSES,
        health_filters=agents.HEALTH_FILTERS,
        **values,
    )


@signed_in
async def agent_page(ui: UiRequest) -> Response:
    ctx, now = ui.ctx, ui.now
    agent_id = ui.request.path_params["agent_id"]
    ctx.ingest.counters.flush()
    with ctx.store.read() as conn:
        row = agents.get(conn, agent_id)
        recent = actions.list_actions(conn, agent_id=agent_id, limit=RECENT_ACTIONS)
        group_list = groups.list_all(conn)
        history = agent_health.history(conn, agent_id, HISTORY_SHOWN)
    agent = agent_view(agents.to_json(row, now, ctx.offline_threshold), now_utc(now))
    return ui.page(
        "agent.html",
        agent=agent,
        actions=[action_view(actions.to_json(a)) for a in recent],
        groups=[groups.to_json(g) for g in group_list],
        history=[history_view(entry) for entry in history],
        components=(agent.get("dataPlane") or {}).get("components", [])[:COMPONENTS_SHOWN],
        notice=NOTICES.get(ui.request.query_params.get("done", "")),
    )


@signed_in
async def revoke_confirm(ui: UiRequest) -> Response:
    with ui.ctx.store.read() as conn:
        agent = agents.to_json(
            agents.get(conn, ui.request.path_params["agent_id"]), ui.now, ui.ctx.offline_threshold
        )
    return ui.page(
        "confirm.html",
        title=f"Revoke {agent['hostname']}?",
        lines=[
            "Its agent token stops working at once: every request it makes gets 403.",
            "Its pending actions are cancelled. Vector keeps running its last config on the host.",
            "To bring the host back, enrol it again with a new enrolment token.",
        ],
        action=f"/ui/agents/{agent['id']}/revoke",
        fields={},
        button="Revoke agent",
        cancel=f"/ui/agents/{agent['id']}",
    )


@signed_in
async def revoke(ui: UiRequest) -> Response:
    agent_id = ui.request.path_params["agent_id"]
    with ui.ctx.store.write() as conn:
        agents.revoke(conn, agent_id, ui.now)
    return redirect(f"/ui/agents/{agent_id}?done=revoked")


@signed_in
async def move_confirm(ui: UiRequest) -> Response:
    agent_id = ui.request.path_params["agent_id"]
    with ui.ctx.store.read() as conn:
        agent = agents.to_json(agents.get(conn, agent_id), ui.now, ui.ctx.offline_threshold)
        target = groups.resolve(conn, ui.request.query_params.get("group", ""))
    return ui.page(
        "confirm.html",
        title=f"Move {agent['hostname']} to {target['name']}?",
        lines=[
            f"From group {agent['groupName'] or '—'} to {target['name']} ({target['slug']}).",
            "Its applied config version resets to 0; its next poll fetches the new group's"
            f" config (version {target['config_version']}) without a reinstall.",
        ],
        action=f"/ui/agents/{agent_id}/move",
        fields={"group": target["slug"]},
        button="Move agent",
        cancel=f"/ui/agents/{agent_id}",
    )


@signed_in
async def move(ui: UiRequest) -> Response:
    agent_id = ui.request.path_params["agent_id"]
    body = ui.ctx.api.check_request("moveAgent", {"group": ui.form.get("group", "")})
    with ui.ctx.store.write() as conn:
        agents.move(conn, agent_id, body["group"], ui.now)
    return redirect(f"/ui/agents/{agent_id}?done=moved")


@signed_in
async def cancel_action(ui: UiRequest) -> Response:
    with ui.ctx.store.write() as conn:
        row = actions.cancel(conn, ui.request.path_params["action_id"], ui.now)
    return redirect(f"/ui/agents/{row['agent_id']}?done=cancelled")


routes = [
    Route("/agents", agents_page, methods=["GET"]),
    Route("/agents/{agent_id}", agent_page, methods=["GET"]),
    Route("/agents/{agent_id}/revoke", revoke_confirm, methods=["GET"]),
    Route("/agents/{agent_id}/revoke", revoke, methods=["POST"]),
    Route("/agents/{agent_id}/move", move_confirm, methods=["GET"]),
    Route("/agents/{agent_id}/move", move, methods=["POST"]),
    Route("/actions/{action_id}/cancel", cancel_action, methods=["POST"]),
]
