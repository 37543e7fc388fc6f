"""The rollout machine and policy as pure functions: plain values, plain asserts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from logpulse_agent.server import rollout_policy as rp
from logpulse_agent.server import rollout_store, rollout_tick
from logpulse_agent.server.rollout_machine import (
    CommandRefused,
    Health,
    Progress,
    Report,
    Tally,
    admission_order,
    command,
    cumulative_target,
    health_of,
    must_halt,
    next_step,
    observe,
    overdue,
    settle_action,
)
from logpulse_agent.server.store import Store

HEALTHY = Health("healthy")


def admitted(**fields: object) -> Progress:
    return Progress(admitted_at=100.0, live_at_admission=True, **fields)  # type: ignore[arg-type]


class TestPolicy:
    def test_phase_sizes_are_cumulative_and_round_up(self) -> None:
        """ "50%" of 10 is 5 in total; "1%" of 50 is 1; a count is capped at the group."""
        assert rp.phase_target("50%", 10) == 5
        assert rp.phase_target("10%", 10) == 1
        assert rp.phase_target("1%", 50) == 1
        assert rp.phase_target("1%", 10_000) == 100
        assert rp.phase_target(5, 3) == 3
        assert rp.phase_target("100%", 0) == 0
        phases = (1, "1%", "10%", "50%", "100%")
        assert [cumulative_target(phases, i, 10_000) for i in range(5)] == [
            1,
            100,
            1000,
            5000,
            10_000,
        ]
        assert [cumulative_target((5, "1%", "100%"), i, 100) for i in range(3)] == [5, 5, 100]

    def test_stored_form_round_trips(self) -> None:
        """NULL is immediate; a staged policy is stored and read back unchanged."""
        assert rp.load(None) == rp.IMMEDIATE
        staged = rp.parse({"strategy": "staged", "phases": [1, "100%"], "soakSeconds": 2.5})
        assert rp.load(rp.dump(staged)) == staged
        assert staged.to_json()["soakSeconds"] == 2.5
        assert rp.dump(rp.IMMEDIATE) is None

    @pytest.mark.parametrize(
        "phases", [[True, "100%"], [1.5, "100%"], ["10 %", "100%"], [3, 2, "100%"], ["x"]]
    )
    def test_odd_phases_are_refused(self, phases: list[object]) -> None:
        with pytest.raises(rp.PolicyError):
            rp.check_phases(phases)


class TestHealth:
    def test_reported_health_wins(self) -> None:
        body = {"vectorRunning": False, "health": {"state": "degraded", "reason": "sink x"}}
        assert health_of(body) == Health("degraded", "sink x")

    def test_without_health_the_old_fields_decide(self) -> None:
        """Healthy iff Vector runs (when it should) and no config error is pending."""
        assert health_of({"vectorRunning": True, "configError": None}) == HEALTHY
        assert health_of({"vectorRunning": False}).state == "failed"
        assert health_of({"vectorRunning": False}, expect_running=False) == HEALTHY
        error = {"vectorRunning": True, "configError": {"configVersion": 3, "message": "m"}}
        assert health_of(error).state == "degraded"
        assert health_of({"vectorRunning": True, "health": {"state": "weird"}}) == HEALTHY


class TestObserve:
    def test_soak_starts_at_the_first_healthy_heartbeat_on_the_target(self) -> None:
        p = admitted()
        p = observe(p, Report(110, False, None, HEALTHY))
        assert p.was_healthy and p.reached_at is None
        p = observe(p, Report(120, True, None, Health("degraded", "warming up")))
        assert p.failed  # it was healthy before, on `from`
        q = observe(admitted(), Report(120, True, None, Health("degraded")))
        assert not q.failed and q.healthy_since is None
        q = observe(q, Report(130, True, None, HEALTHY))
        q = observe(q, Report(160, True, None, HEALTHY))
        assert (q.reached_at, q.healthy_since) == (120, 130)
        assert q.soaked(160, 30) and not q.soaked(159, 30)

    def test_target_error_and_failed_health_fail_once(self) -> None:
        p = observe(admitted(), Report(110, False, "config error for version 5: bad", HEALTHY))
        assert p.failure == "config error for version 5: bad"
        assert observe(p, Report(120, True, None, HEALTHY)) == p
        f = observe(admitted(), Report(110, True, None, Health("failed", "crash loop")))
        assert f.failure == "health failed: crash loop"

    def test_unconfirmed_etag_does_not_soak(self) -> None:
        p = observe(admitted(etag_confirmed=False), Report(110, True, None, HEALTHY))
        assert not p.soaked(1000, 30)


class TestOverdue:
    def test_silence_of_two_intervals_fails_a_live_agent(self) -> None:
        kwargs = {"heartbeat_interval": 30.0, "soak_seconds": 30.0}
        p = admitted()
        assert overdue(p, now=160, last_heartbeat_at=100, **kwargs) == p
        assert "no heartbeat for 61 s" in (
            overdue(p, now=161, last_heartbeat_at=100, **kwargs).failure or ""
        )
        assert overdue(p, now=1000, last_heartbeat_at=100, upgrading=True, **kwargs) == p

    def test_an_agent_silent_before_admission_is_absent_not_failed(self) -> None:
        p = Progress(admitted_at=100.0, live_at_admission=False)
        kwargs = {"heartbeat_interval": 30.0, "soak_seconds": 30.0}
        assert p.absent and overdue(p, now=1000, last_heartbeat_at=50, **kwargs) == p
        spoke = observe(p, Report(150, False, None, HEALTHY))
        assert not spoke.absent  # it spoke after admission: it counts again
        assert overdue(spoke, now=1000, last_heartbeat_at=150, **kwargs).failed

    def test_upgraded_but_not_healthy_within_the_soak(self) -> None:
        p = admitted(reached_at=100.0)
        kwargs = {"heartbeat_interval": 30.0, "soak_seconds": 30.0, "upgrade": True}
        assert overdue(p, now=130, last_heartbeat_at=125, **kwargs) == p
        assert "not healthy within 30 s" in (
            overdue(p, now=131, last_heartbeat_at=125, **kwargs).failure or ""
        )

    def test_action_outcomes(self) -> None:
        assert settle_action(admitted(), "done", None, 5).reached_at == 5
        assert "expired" in (settle_action(admitted(), "expired", None, 5).failure or "")
        assert "boom" in (settle_action(admitted(), "failed", "boom", 5).failure or "")
        assert settle_action(admitted(), "running", None, 5) == admitted()


class TestSteps:
    def test_next_step(self) -> None:
        phases = (1, "50%", "100%")
        assert next_step("running", 0, phases, Tally(1, 1, 0)).kind == "wait"
        assert next_step("running", 0, phases, Tally(1, 1, 1)).kind == "admit"
        assert next_step("running", 1, phases, Tally(5, 4, 4)).phase == 2
        assert next_step("running", 2, phases, Tally(10, 9, 9)).kind == "complete"
        assert next_step("paused", 0, phases, Tally(1, 1, 1)).kind == "wait"
        assert next_step("running", 0, phases, Tally(0, 0, 0)).kind == "admit"  # nobody to wait

    def test_commands(self) -> None:
        assert command("running", "pause") == "paused"
        assert command("paused", "resume") == "running"
        assert command("paused", "abort") == "aborted"
        with pytest.raises(CommandRefused, match="already running"):
            command("running", "resume")
        with pytest.raises(CommandRefused, match="halted"):
            command("halted", "abort")
        assert must_halt(1, 0) and not must_halt(1, 1)

    def test_admission_order_is_stable_and_live_first(self) -> None:
        ids = [f"{i:032x}" for i in range(50)]
        live = {agent_id: i % 3 != 0 for i, agent_id in enumerate(ids)}
        order = admission_order(live.items())
        shuffled = list(live.items())
        random.Random(4).shuffle(shuffled)
        assert admission_order(shuffled) == order
        first_offline = next(i for i, a in enumerate(order) if not live[a])
        assert all(live[a] for a in order[:first_offline])
        assert not any(live[a] for a in order[first_offline:])


def _world(tmp_path: Path, n: int, rng: random.Random) -> Store:
    store = Store(tmp_path / "s.db")
    with store.write() as conn:
        conn.execute(
            "INSERT INTO agent_groups (id, name, slug, created_at, updated_at)"
            " VALUES ('g', 'g', 'g', 0, 0)"
        )
        conn.execute(
            "INSERT INTO rollouts (id, kind, group_id, state, policy, phase_started_at,"
            " started_by, created_at, updated_at) VALUES ('r', 'config', 'g', 'running',"
            ' \'{"phases":[3,"50%","100%"],"soakSeconds":30,"maxFailures":0}\', 0, \'t\', 0, 0)'
        )
        conn.executemany(
            "INSERT INTO agent_registrations (id, group_id, token_hash, hostname, platform,"
            " enrolled_at, last_heartbeat_at) VALUES (?, 'g', ?, 'h', 'linux', 0, ?)",
            [
                (f"{rng.getrandbits(128):032x}", f"t{i}", rng.choice([None, 920.0, 990.0]))
                for i in range(n)
            ],
        )
    return store


def test_tick_tally_in_sql_agrees_with_the_machine(tmp_path: Path) -> None:
    """The tick's aggregate (SQL) counts blocking and passed agents as Progress does."""
    rng = random.Random(7)
    now, soak = 1000.0, 30.0
    store = _world(tmp_path, 300, rng)
    blocking = passed = 0
    with store.write() as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM agent_registrations")]
        for agent_id in ids:
            progress = Progress(
                admitted_at=rng.choice([900.0, 950.0]),
                live_at_admission=rng.random() < 0.7,
                heard=rng.random() < 0.5,
                reached_at=rng.choice([None, 960.0]),
                etag_confirmed=rng.random() < 0.8,
                healthy_since=rng.choice([None, 960.0, 975.0]),
                failure=rng.choice([None, None, None, "x"]),
            )
            conn.execute(
                "INSERT INTO rollout_agents (rollout_id, agent_id, admitted_at) VALUES ('r', ?, ?)",
                (agent_id, progress.admitted_at),
            )
            rollout_store.save_progress(conn, "r", agent_id, progress)
            conn.execute(
                "UPDATE rollout_agents SET live_at_admission = ? WHERE agent_id = ?",
                (int(progress.live_at_admission), agent_id),
            )
            if not progress.failed and not progress.absent:
                blocking += 1
                passed += progress.soaked(now, soak)
        rollout = rollout_store.get(conn, "r")
        assert rollout_tick.tally(conn, rollout, now) == Tally(300, blocking, passed)
    assert 0 < passed < blocking < 300
    store.close()


def test_admission_in_sql_follows_admission_order(tmp_path: Path) -> None:
    """Each phase admits, in SQL, the next agents of admission_order: live ones first."""
    rng = random.Random(3)
    store = _world(tmp_path, 40, rng)
    with store.write() as conn:
        rows = conn.execute("SELECT id, last_heartbeat_at FROM agent_registrations").fetchall()
        live_after = 950.0
        expected = admission_order(
            (row[0], row[1] is not None and row[1] >= live_after) for row in rows
        )
        rollout = rollout_store.get(conn, "r")
        got = rollout_store.admit(conn, rollout, 0, 1000.0, live_after)
        got += rollout_store.admit(conn, rollout, 1, 1001.0, live_after)
        assert sorted(got[:3]) == sorted(expected[:3])
        assert sorted(got) == sorted(expected[:20])
        assert len(got) == 20  # "50%" of 40, cumulative
    store.close()
