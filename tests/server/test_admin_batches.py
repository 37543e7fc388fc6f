"""Admin API additions the fleet pages share: a host search on the agents list, and the batch
id that ties together the actions one request created (read back by ``batchId``)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from starlette.applications import Starlette

from logpulse_agent.server import actions, agent_filters, agents
from tests.server.harness import FakeClock, Fleet

pytestmark = pytest.mark.anyio


class TestHostSearch:
    async def test_host_matches_a_case_insensitive_part_taken_literally(self, fleet: Fleet) -> None:
        group = await fleet.group("web")
        for name in ("Web-1.example.com", "web_2", "db%1", "cache"):
            await fleet.enrol(group["id"], hostname=name)

        async def hosts(text: str) -> list[str]:
            return [a["hostname"] for a in await fleet.data("GET", "/agents", host=text)]

        assert await hosts("WEB") == ["Web-1.example.com", "web_2"]
        assert await hosts("_") == ["web_2"]
        assert await hosts("%") == ["db%1"]
        assert await hosts("") == ["Web-1.example.com", "cache", "db%1", "web_2"]


class TestBatches:
    async def test_one_request_makes_one_batch_read_back_by_its_id(self, fleet: Fleet) -> None:
        group = await fleet.group("web")
        a, b, c = [await fleet.enrol(group["id"], hostname=f"h{n}") for n in range(3)]
        first = await fleet.upgrade(a, b)
        second = await fleet.upgrade(c)
        (batch,) = {action["batchId"] for action in first}
        assert second[0]["batchId"] != batch
        listed = await fleet.data("GET", "/actions", batchId=batch)
        assert sorted(x["agentId"] for x in listed) == sorted([a.id, b.id])
        assert await fleet.data("GET", "/actions", batchId="0" * 32) == []

    async def test_counts_add_up_each_status_and_batches_list_newest_first(
        self, fleet: Fleet, app: Starlette, clock: FakeClock
    ) -> None:
        group = await fleet.group("web")
        a, b = [await fleet.enrol(group["id"], hostname=f"h{n}") for n in range(2)]
        older = await fleet.upgrade(a, b)
        clock.advance(10)
        newer = await fleet.upgrade(a, version="0.5.0")
        report = [{"actionId": older[0]["id"], "status": "done", "result": {}}]
        await fleet.heartbeat(a, actionResults=report)
        store = app.state.ctx.store
        with store.read() as conn:
            counts = actions.batch_counts(conn, older[0]["batchId"])
            batches = actions.list_batches(conn)
        assert counts == {
            "pending": 1,
            "running": 0,
            "done": 1,
            "failed": 0,
            "cancelled": 0,
            "expired": 0,
        }
        assert [row["batch_id"] for row in batches] == [newer[0]["batchId"], older[0]["batchId"]]
        assert (batches[1]["total"], batches[1]["done"], batches[1]["pending"]) == (2, 1, 1)


class TestFilters:
    async def test_count_status_summary_and_reachable_ids_agree_with_the_list(
        self, fleet: Fleet, app: Starlette, clock: FakeClock
    ) -> None:
        group = await fleet.group("web")
        agents = [await fleet.enrol(group["id"], hostname=f"h{n}") for n in range(4)]
        await fleet.heartbeat(agents[0])
        await fleet.data("POST", f"/agents/{agents[3].id}/revoke")
        which = agent_filters.AgentFilter(clock(), app.state.ctx.offline_threshold)
        with app.state.ctx.store.read() as conn:
            summary = agent_filters.status_counts(conn, replace(which, status="online"))
            offline = agent_filters.count(conn, replace(which, status="offline"))
            reachable = agent_filters.unrevoked_ids(conn, which)
            picked = agent_filters.unrevoked_among(conn, [agents[3].id, agents[1].id, "nope"])
        assert summary == {"online": 1, "offline": 2, "revoked": 1}
        assert offline == 2
        assert reachable == [a.id for a in agents[:3]]
        assert picked == [agents[1].id]


class TestPagingPlan:
    @pytest.mark.parametrize("in_group", [False, True])
    def test_a_page_of_the_fleet_or_a_group_is_an_index_walk_not_a_sort(
        self, app: Starlette, clock: FakeClock, in_group: bool
    ) -> None:
        """The query ``agents.list_agents`` runs walks a covering hostname index of migration
        003 (so OFFSET skips index entries): why deep pages of 10,000 agents stay cheap."""
        statements: list[str] = []
        with app.state.ctx.store.read() as conn:
            group = "0" * 32 if in_group else None
            conn.set_trace_callback(statements.append)
            agents.list_agents(
                conn, now=clock(), threshold=300.0, group_id=group, limit=50, offset=5000
            )
            conn.set_trace_callback(None)
            (sql,) = [s for s in statements if "LIMIT" in s]
            plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "COVERING INDEX agent_registrations_by" in plan, plan
        assert plan.count("TEMP B-TREE") <= 1, plan  # only the final 50 rows are sorted
