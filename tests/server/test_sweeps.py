"""Sweeps: overdue actions expire, agents past the offline threshold are marked and recover."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette
from structlog.testing import capture_logs

from logpulse_agent.server.http import isotime
from logpulse_agent.server.sweeps import Sweeper
from tests.server.harness import FakeClock, Fleet

pytestmark = pytest.mark.anyio


def sweeper(app: Starlette) -> Sweeper:
    result: Sweeper = app.state.ctx.sweeper
    return result


class TestActionExpiry:
    async def test_actions_expire_after_the_default_thirty_minutes(
        self, fleet: Fleet, app: Starlette, clock: FakeClock
    ) -> None:
        """Pending and running actions expire at their deadline, not a second before."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (pending,) = await fleet.upgrade(agent)
        (running,) = await fleet.upgrade(agent)
        await fleet.heartbeat(
            agent, actionResults=[{"actionId": running["id"], "status": "running"}]
        )
        clock.advance(30 * 60 - 1)
        assert sweeper(app).run_once().expired_actions == 0
        clock.advance(1)
        assert sweeper(app).run_once().expired_actions == 2
        for action in (pending, running):
            shown = await fleet.data("GET", f"/actions/{action['id']}")
            assert shown["status"] == "expired"
            assert shown["finishedAt"] == isotime(clock.now)

    async def test_deadline_is_settable_per_action(
        self, fleet: Fleet, app: Starlette, clock: FakeClock
    ) -> None:
        """deadlineSeconds on creation sets that action's deadline."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (short,) = await fleet.upgrade(agent, deadlineSeconds=10)
        (long,) = await fleet.upgrade(agent, deadlineSeconds=7200)
        assert short["deadlineAt"] == isotime(clock.now + 10)
        clock.advance(11)
        sweeper(app).run_once()
        assert (await fleet.data("GET", f"/actions/{short['id']}"))["status"] == "expired"
        assert (await fleet.data("GET", f"/actions/{long['id']}"))["status"] == "pending"

    async def test_finished_actions_never_expire(
        self, fleet: Fleet, app: Starlette, clock: FakeClock
    ) -> None:
        """done, failed and cancelled actions keep their status past the deadline."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        done, failed, cancelled = [(await fleet.upgrade(agent))[0] for _ in range(3)]
        await fleet.heartbeat(
            agent,
            actionResults=[
                {"actionId": done["id"], "status": "done"},
                {"actionId": failed["id"], "status": "failed"},
            ],
        )
        await fleet.data("POST", f"/actions/{cancelled['id']}/cancel")
        clock.advance(3600)
        assert sweeper(app).run_once().expired_actions == 0

    async def test_admin_sweep_endpoint_runs_the_sweep(
        self, fleet: Fleet, clock: FakeClock
    ) -> None:
        """POST /admin/sweep runs the sweeps now and says what changed."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        await fleet.upgrade(agent, deadlineSeconds=5)
        clock.advance(400)
        report = await fleet.data("POST", "/sweep")
        assert report == {"expiredActions": 1, "wentOffline": 1}


class TestOffline:
    async def test_agent_goes_offline_at_the_threshold_and_recovers(
        self, fleet: Fleet, app: Starlette, clock: FakeClock
    ) -> None:
        """Five minutes without a heartbeat: offline, wentOfflineAt set to the crossing time;
        the next heartbeat clears it."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        await fleet.heartbeat(agent)
        last = clock.now
        clock.advance(300)
        assert sweeper(app).run_once().went_offline == 0
        assert (await fleet.agent(agent))["status"] == "online"
        clock.advance(1)
        assert sweeper(app).run_once().went_offline == 1
        shown = await fleet.agent(agent)
        assert shown["status"] == "offline"
        assert shown["wentOfflineAt"] == isotime(last + 300)
        clock.advance(600)
        assert sweeper(app).run_once().went_offline == 0  # marked once, kept
        assert (await fleet.agent(agent))["wentOfflineAt"] == isotime(last + 300)
        await fleet.heartbeat(agent)
        shown = await fleet.agent(agent)
        assert (shown["status"], shown["wentOfflineAt"]) == ("online", None)

    async def test_agent_that_never_beat_goes_offline_from_its_enrolment(
        self, fleet: Fleet, app: Starlette, clock: FakeClock
    ) -> None:
        """An agent with no heartbeat yet is offline five minutes after enrolling."""
        await fleet.group("web")
        enrolled = clock.now
        agent = await fleet.enrol("web")
        clock.advance(301)
        sweeper(app).run_once()
        assert (await fleet.agent(agent))["wentOfflineAt"] == isotime(enrolled + 300)

    async def test_status_filter_follows_the_threshold(
        self, fleet: Fleet, clock: FakeClock
    ) -> None:
        """The agents list filters online/offline/revoked by the same threshold."""
        await fleet.group("web")
        quiet, busy, gone = [await fleet.enrol("web", hostname=h) for h in ("q", "b", "g")]
        await fleet.heartbeat(quiet)
        clock.advance(301)
        await fleet.heartbeat(busy)
        await fleet.data("POST", f"/agents/{gone.id}/revoke")
        names = {}
        for status in ("online", "offline", "revoked"):
            names[status] = [
                a["hostname"] for a in await fleet.data("GET", "/agents", status=status)
            ]
        assert names == {"online": ["b"], "offline": ["q"], "revoked": ["g"]}

    async def test_revoked_agents_are_not_marked_offline(
        self, fleet: Fleet, app: Starlette, clock: FakeClock
    ) -> None:
        """Revoked agents are left alone by the offline sweep."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        await fleet.data("POST", f"/agents/{agent.id}/revoke")
        clock.advance(1000)
        assert sweeper(app).run_once().went_offline == 0


class TestBackgroundSweeps:
    async def test_loop_sweeps_every_interval_and_survives_a_failure(self, app: Starlette) -> None:
        """run_forever sweeps, sleeps the interval, logs a failing sweep and goes on."""
        real = sweeper(app)
        calls: list[str] = []
        sleeps: list[float] = []

        class Flaky(Sweeper):
            def run_once(self):  # type: ignore[no-untyped-def]
                calls.append("sweep")
                if len(calls) == 1:
                    raise RuntimeError("disk full")
                return super().run_once()

        async def fake_sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) == 3:
                raise asyncio.CancelledError

        flaky = Flaky(real.store, clock=real.clock)
        with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
            await flaky.run_forever(7.5, sleep=fake_sleep)
        assert calls == ["sweep"] * 3
        assert sleeps == [7.5] * 3
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["sweep.failed"]

    async def test_app_lifespan_runs_and_stops_the_sweeper(self, tmp_path) -> None:
        """With a sweep interval, the lifespan starts the task and cancels it on shutdown."""
        from logpulse_agent.server.app import create_app

        app = create_app(tmp_path / "s.db", admin_token="x", sweep_interval=0.01)
        ran = asyncio.Event()
        original = app.state.ctx.sweeper.run_once

        def run_once():  # type: ignore[no-untyped-def]
            ran.set()
            return original()

        app.state.ctx.sweeper.run_once = run_once
        async with app.router.lifespan_context(app):
            await asyncio.wait_for(ran.wait(), 5)
