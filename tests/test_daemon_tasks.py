"""The daemon's task runner: crashed tasks restart with backoff, reset after a healthy run."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from structlog.testing import capture_logs

from logpulse_agent.daemon.tasks import cancel_and_wait, guarded

pytestmark = pytest.mark.anyio


class Crashes:
    """A task that crashes after running ``runs[i]`` seconds of a fake clock; the sleeps the
    runner asks for are recorded instead of waited."""

    def __init__(self, runs: list[float]) -> None:
        self.runs = list(runs)
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def task(self) -> None:
        self.now += self.runs.pop(0)
        raise RuntimeError("boom")

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if not self.runs:
            raise asyncio.CancelledError


async def run_guarded(crashes: Crashes) -> None:
    with pytest.raises(asyncio.CancelledError):
        await guarded(
            "t", crashes.task, healthy_after=60.0, clock=crashes.clock, sleep=crashes.sleep
        )


class TestGuarded:
    async def test_crashes_in_a_row_back_off_to_the_ceiling(self) -> None:
        """Each quick crash doubles the wait, 1 s up to 60 s, and each is logged."""
        crashes = Crashes([0.1] * 8)
        with capture_logs() as logs:
            await run_guarded(crashes)
        assert crashes.sleeps == [1, 2, 4, 8, 16, 32, 60, 60]
        assert [e["event"] for e in logs] == ["task.crashed"] * 8

    async def test_a_healthy_run_resets_the_delay(self) -> None:
        """Regression: crashes days apart left every later restart waiting 60 s; a task that
        ran healthily for a while restarts after 1 s again."""
        crashes = Crashes([0.1] * 7 + [86_400.0, 0.1, 0.1])
        await run_guarded(crashes)
        assert crashes.sleeps[:7] == [1, 2, 4, 8, 16, 32, 60]
        assert crashes.sleeps[7:] == [1, 2, 4]

    async def test_a_task_that_returns_is_restarted_too(self) -> None:
        """A task ending without an error is logged and started again."""
        calls: list[int] = []
        sleeps: list[float] = []

        async def returns() -> None:
            calls.append(1)

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(calls) == 2:
                raise asyncio.CancelledError

        with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
            await guarded("t", returns, clock=lambda: 0.0, sleep=sleep)
        assert len(calls) == 2 and sleeps == [1, 2]
        assert [e["event"] for e in logs] == ["task.returned", "task.returned"]


class TestCancelAndWait:
    async def test_returns_once_every_task_has_ended(self) -> None:
        """Cancelled tasks are awaited to their end, even one that swallows a cancellation."""
        ended: list[str] = []

        async def stubborn() -> None:
            # Swallowed once, as asyncio.wait_for may do on Python < 3.12.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)
            try:
                await asyncio.sleep(3600)
            finally:
                ended.append("stubborn")

        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        await asyncio.wait_for(cancel_and_wait([task], retry=0.01), 5)
        assert ended == ["stubborn"] and task.done()
