"""Staged config rollouts through the API (SPEC §11.3), with an injected clock and no sleeps."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from tests.server.harness import ADMIN, FakeClock, Fleet
from tests.server.rollout_harness import STAGED, Flock

pytestmark = pytest.mark.anyio


@pytest.fixture
def flock(fleet: Fleet, app: Starlette, clock: FakeClock) -> Flock:
    return Flock(fleet, app, clock)


async def soak(flock: Flock, seconds: float = 31) -> None:
    """Let the soak pass with every host beating healthy, then tick."""
    flock.clock.advance(seconds)
    await flock.everyone()
    flock.tick()


class TestPolicy:
    async def test_default_is_immediate_and_a_patch_is_echoed(self, flock: Flock) -> None:
        """A group starts immediate; PATCH rollout is echoed normalised, without a new version."""
        group = await flock.fleet.group("web")
        assert group["rollout"] == {"strategy": "immediate"}
        changed = await flock.fleet.data(
            "PATCH", "/groups/web", {"rollout": {"strategy": "staged"}}
        )
        assert changed["rollout"] == {
            "strategy": "staged",
            "phases": [1, "10%", "50%", "100%"],
            "soakSeconds": 120,
            "maxFailures": 0,
        }
        assert changed["configVersion"] == group["configVersion"]
        assert (await flock.fleet.data("GET", "/groups/web"))["rollout"] == changed["rollout"]
        back = await flock.fleet.data(
            "PATCH", "/groups/web", {"rollout": {"strategy": "immediate"}}
        )
        assert back["rollout"] == {"strategy": "immediate"}

    @pytest.mark.parametrize(
        ("policy", "message"),
        [
            ({"strategy": "slow"}, "strategy"),
            ({"strategy": "staged", "phases": []}, "phases"),
            ({"strategy": "staged", "phases": [1, "50%"]}, 'end with "100%"'),
            ({"strategy": "staged", "phases": ["50%", "10%", "100%"]}, "must grow"),
            ({"strategy": "staged", "phases": [0, "100%"]}, "phases"),
            ({"strategy": "staged", "phases": ["150%"]}, "percentage"),
            ({"strategy": "staged", "soakSeconds": -1}, "soakSeconds"),
            ({"strategy": "staged", "maxFailures": 1.5}, "maxFailures"),
            ({"strategy": "staged", "speed": 3}, "speed"),
            ({"strategy": "immediate", "phases": ["100%"]}, "staged"),
            ({"phases": ["100%"]}, "strategy"),
        ],
    )
    async def test_invalid_policy_is_422_and_changes_nothing(
        self, flock: Flock, policy: dict[str, object], message: str
    ) -> None:
        """A bad policy gets a 422 naming the problem; the group keeps its policy."""
        await flock.fleet.group("web")
        response = await flock.fleet.admin("PATCH", "/groups/web", {"rollout": policy})
        assert response.status_code == 422, response.text
        assert message in response.json()["error"]["message"]
        assert (await flock.fleet.data("GET", "/groups/web"))["rollout"] == {
            "strategy": "immediate"
        }


class TestImmediate:
    async def test_immediate_serves_everyone_the_new_version_at_once(self, flock: Flock) -> None:
        """Without a staged policy a change reaches every agent at its next poll, as before."""
        await flock.start(4)
        new = await flock.change()
        await flock.everyone()
        assert all(h.applied == new for h in flock.hosts)
        response = await flock.fleet.admin("GET", "/groups/web/rollout")
        assert response.status_code == 404


class TestStaged:
    async def test_only_the_canary_gets_the_new_version(self, flock: Flock) -> None:
        """Phase 0 admits one agent; the others are served `from` byte for byte and are never
        told to poll by their heartbeat."""
        await flock.start(10, STAGED)
        old = flock.hosts[0].applied
        old_etag = flock.hosts[0].etag
        new = await flock.change()
        await flock.everyone()
        assert len(flock.on(new)) == 1
        assert len(flock.on(old)) == 9
        for host in flock.on(old):
            assert host.heartbeat_version == old
            assert host.etag == old_etag
            assert await flock.poll(host) == 204
        rollout = await flock.rollout()
        assert rollout["state"] == "running"
        assert (rollout["fromVersion"], rollout["toVersion"], rollout["phase"]) == (old, new, 0)
        assert rollout["counts"] == {
            "admitted": 1,
            "applied": 1,
            "healthy": 1,
            "failed": 0,
            "waiting": 9,
        }

    async def test_non_admitted_agent_without_etag_gets_from_bytes(self, flock: Flock) -> None:
        """A fresh poll (since=0) of a held-back agent answers `from`, same etag as before."""
        await flock.start(3, STAGED)
        old_etag = flock.hosts[0].etag
        await flock.change()
        await flock.everyone()
        waiting = next(h for h in flock.hosts if h.etag == old_etag)
        response = await flock.fleet.config(waiting.agent, 0)
        assert response.status_code == 200
        assert response.headers["x-config-etag"] == old_etag

    async def test_phases_pass_after_the_soak_and_complete(self, flock: Flock) -> None:
        """Each phase waits for the soak of its agents; then the next is admitted (cumulative:
        50% of 10 is 5 in total); after the last, everyone is on the new version."""
        await flock.start(10, STAGED)
        new = await flock.change()
        await flock.everyone()
        flock.clock.advance(29)
        await flock.everyone()
        flock.tick()
        assert (await flock.rollout())["phase"] == 0
        await soak(flock, 2)
        await flock.everyone()
        assert (await flock.rollout())["phase"] == 1
        assert len(flock.on(new)) == 5
        await soak(flock)
        await flock.everyone()
        assert len(flock.on(new)) == 10
        await soak(flock)
        rollout = await flock.rollout()
        assert rollout["state"] == "completed"
        assert [p["result"] for p in rollout["phaseResults"]] == ["passed"] * 3
        assert [p["admittedTotal"] for p in rollout["phaseResults"]] == [1, 5, 10]
        later = await flock.change("v3")  # staged again: a new rollout from `new`
        assert (await flock.rollout())["fromVersion"] == new
        assert (await flock.rollout())["toVersion"] == later

    async def test_soak_counts_from_the_first_healthy_heartbeat_on_to(self, flock: Flock) -> None:
        """An agent that applied `to` but reports degraded (as before the change) has no soak."""
        await flock.start(2, STAGED, name="web")
        await flock.everyone(configError={"configVersion": 1, "message": "old"})
        await flock.change()
        await flock.everyone(configError={"configVersion": 1, "message": "old"})
        flock.clock.advance(100)
        await flock.everyone(configError={"configVersion": 1, "message": "old"})
        flock.tick()
        rollout = await flock.rollout()
        assert (rollout["phase"], rollout["state"], rollout["counts"]["healthy"]) == (
            0,
            "running",
            0,
        )
        await flock.everyone()  # healthy from now on: the soak starts here
        flock.clock.advance(29)
        flock.tick()
        assert (await flock.rollout())["phase"] == 0
        flock.clock.advance(1)
        flock.tick()
        assert (await flock.rollout())["phase"] == 1

    async def test_etag_must_be_confirmed_by_a_poll(self, flock: Flock) -> None:
        """`applied` needs the etag: a heartbeat alone reporting `to` is not enough."""
        await flock.start(2, STAGED)
        new = await flock.change()
        canary = None
        for host in flock.hosts:
            if (await flock.beat(host))["configVersion"] == new:
                canary = host
        assert canary is not None
        await flock.poll(canary)  # the 200: applied, but not yet confirmed by If-None-Match
        await flock.beat(canary)
        assert (await flock.rollout())["counts"]["applied"] == 0
        await flock.poll(canary)
        assert (await flock.rollout())["counts"]["applied"] == 1


class TestFailures:
    async def _canary(self, flock: Flock, policy: dict[str, object] | None = None) -> tuple:
        await flock.start(4, policy or STAGED)
        old = flock.hosts[0].applied
        new = await flock.change()
        await flock.everyone()
        (canary,) = flock.on(new)
        return canary, old, new

    async def test_config_error_for_to_halts_and_rolls_back(self, flock: Flock) -> None:
        """A configError for `to` halts; the reason names the host and the error."""
        await flock.start(4, STAGED)
        old = flock.hosts[0].applied
        new = await flock.change()
        canary = None
        for host in flock.hosts:
            if (await flock.beat(host))["configVersion"] == new:
                canary = host
        assert canary is not None
        error = {"configVersion": new, "message": "vector validate: unknown field"}
        await flock.beat(canary, configError=error)
        rollout = await flock.rollout()
        assert rollout["state"] == "halted"
        assert canary.hostname in rollout["reason"]
        assert "unknown field" in rollout["reason"]
        assert f"served version {old} again" in rollout["reason"]
        assert (await flock.beat(canary))["configVersion"] == old

    @pytest.mark.parametrize(
        ("health", "kind"),
        [
            ({"state": "failed", "reason": "Vector crash-looped", "since": "x"}, "health failed"),
            ({"state": "degraded", "reason": "sink out_1: 41 errors (HTTP 403)"}, "degraded"),
        ],
    )
    async def test_bad_health_on_to_halts_and_the_canary_is_served_from_again(
        self, flock: Flock, health: dict[str, object], kind: str
    ) -> None:
        """failed, or degraded after being healthy, halts; within one poll the canary gets
        `from` again (same etag as before) and nobody else ever saw `to`."""
        canary, old, _ = await self._canary(flock)
        old_etag = next(h.etag for h in flock.hosts if h is not canary)
        await flock.beat(canary, health=health)
        rollout = await flock.rollout()
        assert rollout["state"] == "halted"
        assert kind in rollout["reason"]
        assert rollout["failedAgents"][0]["hostname"] == canary.hostname
        assert await flock.poll(canary) == 200
        assert (canary.applied, canary.etag) == (old, old_etag)
        assert await flock.poll(canary) == 204
        assert all(len(h.seen) == 1 for h in flock.hosts if h is not canary)

    async def test_degraded_before_and_after_is_not_a_failure(self, flock: Flock) -> None:
        """An agent degraded before the change is not blamed for staying degraded."""
        degraded = {"state": "degraded", "reason": "sink out_1: 3 errors"}
        await flock.start(3, STAGED)
        await flock.everyone(health=degraded)
        await flock.change()
        await flock.everyone(health=degraded)
        assert (await flock.rollout())["state"] == "running"

    async def test_silent_admitted_agent_fails_after_two_intervals(self, flock: Flock) -> None:
        """No heartbeat for two heartbeat intervals (60 s by default) is a failure, found by
        the tick with no request from that agent."""
        canary, _, _ = await self._canary(flock)
        others = [h for h in flock.hosts if h is not canary]
        flock.clock.advance(59)
        for host in others:
            await flock.beat(host)
        flock.tick()
        assert (await flock.rollout())["state"] == "running"
        flock.clock.advance(2)
        flock.tick()
        rollout = await flock.rollout()
        assert rollout["state"] == "halted"
        assert "no heartbeat" in rollout["reason"]

    async def test_failures_up_to_max_failures_are_tolerated(self, flock: Flock) -> None:
        """maxFailures 1: one failure is counted, the rollout goes on; the second halts."""
        policy = {**STAGED, "phases": [2, "100%"], "maxFailures": 1}
        await flock.start(4, policy)
        new = await flock.change()
        await flock.everyone()
        first, second = flock.on(new)
        bad = {"state": "failed", "reason": "boom"}
        await flock.beat(first, health=bad)
        rollout = await flock.rollout()
        assert (rollout["state"], rollout["counts"]["failed"]) == ("running", 1)
        await flock.beat(second, health=bad)
        assert (await flock.rollout())["state"] == "halted"

    async def test_a_failure_while_paused_still_halts(self, flock: Flock) -> None:
        """Pausing stops admission, not the safety net."""
        canary, _, _ = await self._canary(flock)
        await flock.fleet.data("POST", "/groups/web/rollout/pause")
        await flock.beat(canary, health={"state": "failed", "reason": "x"})
        assert (await flock.rollout())["state"] == "halted"

    async def test_offline_agents_are_admitted_last_and_do_not_block(self, flock: Flock) -> None:
        """Agents silent before the rollout are admitted after live ones, are not failures,
        and a phase does not wait for them."""
        await flock.start(3, {**STAGED, "phases": [2, "100%"]})
        flock.clock.advance(600)
        live = flock.hosts[:2]
        for host in live:
            await flock.sync(host)
        new = await flock.change()
        for host in live:
            await flock.sync(host)
        assert all(h.applied == new for h in live)
        for _ in range(2):  # phase 0 (2 live agents), then 100 % (the offline one is absent)
            flock.clock.advance(31)
            for host in live:
                await flock.sync(host)
            flock.tick()
        rollout = await flock.rollout()
        assert rollout["state"] == "completed", rollout
        assert rollout["counts"]["failed"] == 0


class TestMembership:
    async def test_moved_and_revoked_agents_stop_counting(self, flock: Flock) -> None:
        """An admitted agent moved to another group or revoked does not hold its phase back,
        and one moved back is served `from` like any agent not admitted."""
        await flock.start(4, {**STAGED, "phases": [3, "100%"]})
        old = flock.hosts[0].applied
        new = await flock.change()
        await flock.everyone()
        moved, revoked, stays = flock.on(new)
        await flock.fleet.group("other")
        await flock.fleet.data("POST", f"/agents/{moved.agent.id}/move", {"group": "other"})
        await flock.fleet.data("POST", f"/agents/{revoked.agent.id}/revoke")
        flock.clock.advance(31)
        await flock.sync(stays)
        flock.tick()
        rollout = await flock.rollout()
        assert rollout["phase"] == 1, rollout
        assert rollout["counts"]["admitted"] == 2  # `stays` and the fourth, admitted now
        await flock.fleet.data("POST", f"/agents/{moved.agent.id}/move", {"group": "web"})
        response = await flock.fleet.config(moved.agent, 0)
        assert response.headers["x-config-version"] == str(old)


class TestOperator:
    async def test_pause_resume_abort_and_the_audit_trail(self, flock: Flock) -> None:
        """Pause holds the phase even after the soak, resume lets it pass, abort rolls back;
        each is recorded with the caller's X-LogPulse-Actor and reason."""
        await flock.start(4, STAGED)
        old = flock.hosts[0].applied
        new = await flock.change()
        await flock.everyone()
        client = flock.fleet.client
        headers = {**ADMIN, "X-LogPulse-Actor": "cli:alice"}
        paused = await client.post(
            "/api/v1/admin/groups/web/rollout/pause", json={"reason": "lunch"}, headers=headers
        )
        assert paused.json()["data"]["state"] == "paused"
        assert "lunch" in paused.json()["data"]["reason"]
        await soak(flock)
        assert (await flock.rollout())["phase"] == 0
        again = await flock.fleet.admin("POST", "/groups/web/rollout/pause")
        assert again.status_code == 409
        await flock.fleet.data("POST", "/groups/web/rollout/resume")
        flock.tick()
        assert (await flock.rollout())["phase"] == 1
        await flock.everyone()
        assert len(flock.on(new)) >= 2
        aborted = await client.post("/api/v1/admin/groups/web/rollout/abort", headers=headers)
        data = aborted.json()["data"]
        assert data["state"] == "aborted"
        assert f"served version {old} again" in data["reason"]
        await flock.everyone()
        assert all(h.applied == old for h in flock.hosts)
        kinds = [(e["kind"], e["actor"]) for e in data["events"]]
        assert ("paused", "cli:alice") in kinds
        assert ("resumed", "admin-api") in kinds
        assert ("aborted", "cli:alice") in kinds
        assert kinds[0] == ("started", "admin-api")
        refused = await flock.fleet.admin("POST", "/groups/web/rollout/resume")
        assert refused.status_code == 409
        assert "aborted" in refused.json()["error"]["message"]

    async def test_a_newer_change_replaces_the_rollout(self, flock: Flock) -> None:
        """A change during a rollout marks it replaced; the new one starts from the last
        version every agent may run, not from the replaced `to`."""
        await flock.start(4, STAGED)
        old = flock.hosts[0].applied
        first = await flock.change("v2")
        await flock.everyone()
        second = await flock.change("v3")
        rollouts = await flock.fleet.data("GET", "/rollouts", group="web")
        assert [r["state"] for r in rollouts] == ["running", "replaced"]
        assert (rollouts[0]["fromVersion"], rollouts[0]["toVersion"]) == (old, second)
        assert rollouts[1]["toVersion"] == first
        assert "replaced by version" in rollouts[1]["reason"]
        await flock.everyone()
        assert len(flock.on(second)) == 1
        assert len(flock.on(old)) == 3
        assert not flock.on(first)

    async def test_halted_group_serves_from_until_the_next_change(self, flock: Flock) -> None:
        """After a halt everyone, new agents too, gets `from`; the next change rolls out
        from there."""
        canary, old, _ = await self._halted(flock)
        newcomer = await flock.fleet.enrol("web", hostname="late")
        response = await flock.fleet.config(newcomer, 0)
        assert response.headers["x-config-version"] == str(old)
        fixed = await flock.change("v3")
        rollout = await flock.rollout()
        assert (rollout["fromVersion"], rollout["toVersion"]) == (old, fixed)
        assert canary  # (the canary stays on `from` until admitted again)

    async def _halted(self, flock: Flock) -> tuple:
        await flock.start(3, STAGED)
        old = flock.hosts[0].applied
        new = await flock.change()
        await flock.everyone()
        (canary,) = flock.on(new)
        await flock.beat(canary, health={"state": "failed", "reason": "x"})
        assert (await flock.rollout())["state"] == "halted"
        return canary, old, new

    async def test_commands_on_unknown_things(self, flock: Flock) -> None:
        """404 for an unknown group or rollout, 404 for a group without rollouts."""
        await flock.fleet.group("web")
        assert (await flock.fleet.admin("GET", "/groups/nope/rollout")).status_code == 404
        assert (await flock.fleet.admin("GET", "/rollouts/" + "0" * 32)).status_code == 404
        missing = await flock.fleet.admin("POST", "/groups/web/rollout/pause")
        assert missing.status_code == 404
        assert "no staged rollout" in missing.json()["error"]["message"]
        bad = await flock.fleet.admin("GET", "/rollouts", kind="other")
        assert bad.status_code == 400
        assert (await flock.fleet.admin("GET", "/rollouts", limit=5000)).status_code == 400
        odd = await flock.fleet.admin("POST", "/groups/web/rollout/pause", {"why": "x"})
        assert odd.status_code == 422
        junk = await flock.fleet.client.post(
            "/api/v1/admin/groups/web/rollout/pause", content=b"{nope", headers=ADMIN
        )
        assert junk.status_code == 400

    async def test_failure_reasons_are_redacted_and_bounded(self, flock: Flock) -> None:
        """What an agent reports lands in the reason without tokens and cut to one line."""
        await flock.start(2, STAGED)
        new = await flock.change()
        await flock.everyone()
        (canary,) = flock.on(new)
        token = "AGT_" + "x" * 43
        error = {"configVersion": new, "message": f"bad {token} " + "y" * 5000}
        await flock.beat(canary, configError=error)
        rollout = await flock.rollout()
        assert token not in rollout["reason"]
        assert len(rollout["failedAgents"][0]["failure"]) <= 500
