"""Running the daemon's tasks: restarted when they crash, cancelled until they have ended.

A task that raises is logged with its traceback and started again after a backoff; it never
takes the others down. The backoff grows with crashes in a row (1 s doubling to 60 s) and
starts again at 1 s once the task had run healthily for :data:`HEALTHY_AFTER` seconds, so a few
crashes spread over days never leave every later restart waiting a minute.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import structlog

from logpulse_agent.backoff import Backoff, next_attempt

log = structlog.get_logger(__name__)

RESTART_BACKOFF = Backoff(initial=1.0, ceiling=60.0, jitter=0.0)
HEALTHY_AFTER = 60.0


async def guarded(
    name: str,
    factory: Callable[[], Awaitable[None]],
    *,
    backoff: Backoff = RESTART_BACKOFF,
    healthy_after: float = HEALTHY_AFTER,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Run ``factory()`` forever: an unexpected exception or return is logged and the task
    started again after the backoff (see the module docstring)."""
    rng = random.Random()
    attempt = 0
    while True:
        started = clock()
        try:
            await factory()
        except asyncio.CancelledError:
            raise
        except Exception:
            attempt = next_attempt(attempt, clock() - started, healthy_after)
            delay = backoff.delay(attempt, rng)
            log.exception("task.crashed", task=name, restart_in=delay)
        else:
            attempt = next_attempt(attempt, clock() - started, healthy_after)
            delay = backoff.delay(attempt, rng)
            log.error("task.returned", task=name, restart_in=delay)
        await sleep(delay)


async def cancel_and_wait(tasks: list[asyncio.Task[None]], retry: float = 0.1) -> None:
    """Cancel ``tasks`` and return once every one has ended.

    A task still running is cancelled again every ``retry`` seconds: on Python < 3.12
    ``asyncio.wait_for`` swallows a cancellation that arrives just as the future it waits for
    completes (https://github.com/python/cpython/issues/86296), and every loop here waits for
    its wake-up event that way, so one ``cancel()`` can be lost and the agent would hang on
    SIGTERM.
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry)
