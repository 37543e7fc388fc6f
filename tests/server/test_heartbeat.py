"""Heartbeats: every reported field stored, pending actions handed out, results applied."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from logpulse_agent.server.http import isotime
from tests.server.harness import DEMO, FakeClock, Fleet

pytestmark = pytest.mark.anyio


class TestHeartbeatFields:
    async def test_every_field_is_stored(self, fleet: Fleet, clock: FakeClock) -> None:
        """Versions, applied version, Vector state, uptime → start time, config error, time."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        error = {
            "configVersion": 2,
            "message": "vector validate: bad option",
            "at": "2025-06-15T15:06:40Z",
        }
        response = await fleet.heartbeat(
            agent,
            agentVersion="0.4.2",
            vectorVersion="0.41.1",
            appliedConfigVersion=1,
            vectorRunning=True,
            vectorUptimeSeconds=1837,
            configError=error,
        )
        assert response.status_code == 200
        assert response.json()["data"] == {"pendingActions": [], "configVersion": 2}
        shown = await fleet.agent(agent)
        assert shown["agentVersion"] == "0.4.2"
        assert shown["vectorVersion"] == "0.41.1"
        assert shown["appliedConfigVersion"] == 1
        assert shown["groupConfigVersion"] == 2
        assert shown["vectorRunning"] is True
        assert shown["vectorStartedAt"] == isotime(clock.now - 1837)
        assert shown["lastHeartbeatAt"] == isotime(clock.now)
        assert shown["configError"] == error
        assert shown["status"] == "online"

    async def test_config_error_is_cleared_by_a_null(self, fleet: Fleet) -> None:
        """configError null (a later version applied) clears the stored error."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        await fleet.heartbeat(agent, configError={"configVersion": 2, "message": "bad"})
        await fleet.heartbeat(agent, configError=None)
        assert (await fleet.agent(agent))["configError"] is None

    async def test_stopped_vector_has_no_start_time(self, fleet: Fleet) -> None:
        """vectorRunning false stores no start time, whatever the uptime says."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        await fleet.heartbeat(agent, vectorRunning=False, vectorUptimeSeconds=None)
        shown = await fleet.agent(agent)
        assert (shown["vectorRunning"], shown["vectorStartedAt"]) == (False, None)

    async def test_tokens_in_a_config_error_are_masked(self, fleet: Fleet) -> None:
        """A token that slipped into an error message is stored masked."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        message = f"failed with {agent.token}"
        await fleet.heartbeat(agent, configError={"configVersion": 1, "message": message})
        assert (await fleet.agent(agent))["configError"]["message"] == "failed with AGT_***"

    async def test_answer_carries_the_groups_config_version(self, fleet: Fleet) -> None:
        """configVersion in the answer moves with the group, so the agent polls at once."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        await fleet.data("POST", "/groups/web/inputs", DEMO)
        response = await fleet.heartbeat(agent, appliedConfigVersion=1)
        assert response.json()["data"]["configVersion"] == 2


class TestPendingActions:
    async def test_at_most_ten_are_handed_out_oldest_first(
        self, fleet: Fleet, clock: FakeClock
    ) -> None:
        """Twelve pending actions: the heartbeat answers the ten oldest."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        created = []
        for n in range(12):
            created += await fleet.upgrade(agent, version=f"0.5.{n}")
            clock.advance(1)
        handed = await fleet.pending(agent)
        assert [a["id"] for a in handed] == [a["id"] for a in created[:10]]
        assert handed[0] == {
            "id": created[0]["id"],
            "type": "upgrade_agent",
            "payload": {"targetVersion": "0.5.0"},
        }

    async def test_pending_action_is_handed_out_until_the_agent_reports(self, fleet: Fleet) -> None:
        """A pending action comes back in every heartbeat until a status is reported."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (action,) = await fleet.upgrade(agent)
        assert [a["id"] for a in await fleet.pending(agent)] == [action["id"]]
        assert [a["id"] for a in await fleet.pending(agent)] == [action["id"]]
        running = [{"actionId": action["id"], "status": "running"}]
        assert await fleet.pending(agent, actionResults=running) == []
        shown = await fleet.data("GET", f"/actions/{action['id']}")
        assert shown["status"] == "running"
        assert shown["dispatchedAt"] is not None

    async def test_cancelled_and_expired_actions_are_never_handed_out(
        self, fleet: Fleet, clock: FakeClock
    ) -> None:
        """Cancelled actions, and pending ones past their deadline, stay out of the answer."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (cancelled,) = await fleet.upgrade(agent)
        await fleet.data("POST", f"/actions/{cancelled['id']}/cancel")
        await fleet.upgrade(agent, deadlineSeconds=60)  # overdue
        (fresh,) = await fleet.upgrade(agent, deadlineSeconds=3600)
        clock.advance(61)  # past the deadline, before any sweep ran
        assert [a["id"] for a in await fleet.pending(agent)] == [fresh["id"]]

    async def test_actions_of_other_agents_are_not_handed_out(self, fleet: Fleet) -> None:
        """Each agent gets only its own actions."""
        await fleet.group("web")
        a, b = await fleet.enrol("web"), await fleet.enrol("web")
        await fleet.upgrade(a)
        assert await fleet.pending(b) == []


async def _report(fleet: Fleet, agent, action_id: str, status: str, result=None) -> dict:
    results = [{"actionId": action_id, "status": status, "result": result}]
    response = await fleet.heartbeat(agent, actionResults=results)
    assert response.status_code == 200
    return await fleet.data("GET", f"/actions/{action_id}")


class TestActionTransitions:
    async def test_upgrade_lifecycle_pending_running_done(self, fleet: Fleet) -> None:
        """pending → running → done, with the result stored and times recorded."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (action,) = await fleet.upgrade(agent)
        await fleet.pending(agent)
        running = await _report(fleet, agent, action["id"], "running")
        assert running["status"] == "running" and running["startedAt"] is not None
        result = {"fromVersion": "0.4.1", "toVersion": "0.4.2"}
        done = await _report(fleet, agent, action["id"], "done", result)
        assert (done["status"], done["result"]) == ("done", result)
        assert done["finishedAt"] is not None

    async def test_pending_may_fail_straight_away(self, fleet: Fleet) -> None:
        """An agent may report failed straight from pending (a rejected payload)."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (action,) = await fleet.upgrade(agent)
        failed = await _report(fleet, agent, action["id"], "failed", {"error": "no"})
        assert (failed["status"], failed["result"]) == ("failed", {"error": "no"})

    @pytest.mark.parametrize(
        ("steps", "refused", "left"),
        [
            (["done"], "running", "done"),
            (["failed"], "done", "failed"),
        ],
    )
    async def test_invalid_transition_is_ignored_and_logged(
        self, fleet: Fleet, steps: list[str], refused: str, left: str
    ) -> None:
        """A finished action cannot move again: the result is ignored, logged, and the
        heartbeat still answers 200."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (action,) = await fleet.upgrade(agent)
        for step in steps:
            await _report(fleet, agent, action["id"], step)
        with capture_logs() as logs:
            shown = await _report(fleet, agent, action["id"], refused)
        assert shown["status"] == left
        assert any(
            e["event"] == "action.result_ignored" and e["reason"] == "invalid transition"
            for e in logs
        )

    async def test_expired_action_stays_expired(self, fleet: Fleet, app, clock: FakeClock) -> None:
        """A result for an action the sweep expired is ignored."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (action,) = await fleet.upgrade(agent, deadlineSeconds=60)
        clock.advance(61)
        app.state.ctx.sweeper.run_once()
        shown = await _report(fleet, agent, action["id"], "done", {"fromVersion": "0.4.1"})
        assert (shown["status"], shown["result"]) == ("expired", None)

    async def test_cancelled_action_cannot_start(self, fleet: Fleet) -> None:
        """running for a cancelled action is ignored."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (action,) = await fleet.upgrade(agent)
        await fleet.data("POST", f"/actions/{action['id']}/cancel")
        assert (await _report(fleet, agent, action["id"], "running"))["status"] == "cancelled"

    async def test_redelivered_result_is_a_quiet_no_op(self, fleet: Fleet) -> None:
        """The outbox delivers at least once: the same done twice changes nothing."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (action,) = await fleet.upgrade(agent)
        first = await _report(fleet, agent, action["id"], "done", {"toVersion": "0.4.2"})
        with capture_logs() as logs:
            again = await _report(fleet, agent, action["id"], "done", {"toVersion": "0.4.2"})
        assert again == first
        assert not [e for e in logs if e["event"] == "action.result_ignored"]

    async def test_results_for_unknown_or_foreign_actions_are_ignored(self, fleet: Fleet) -> None:
        """Unknown ids and other agents' actions are ignored; valid results beside them apply."""
        await fleet.group("web")
        a, b = await fleet.enrol("web"), await fleet.enrol("web")
        (theirs,) = await fleet.upgrade(b)
        (mine,) = await fleet.upgrade(a)
        results = [
            {"actionId": "f" * 32, "status": "done"},
            {"actionId": theirs["id"], "status": "done"},
            {"actionId": mine["id"], "status": "running"},
        ]
        with capture_logs() as logs:
            response = await fleet.heartbeat(a, actionResults=results)
        assert response.status_code == 200
        assert (await fleet.data("GET", f"/actions/{theirs['id']}"))["status"] == "pending"
        assert (await fleet.data("GET", f"/actions/{mine['id']}"))["status"] == "running"
        ignored = [e for e in logs if e["event"] == "action.result_ignored"]
        assert len(ignored) == 2
