"""One spawned Vector process: confirming its start, and the bounded way to stop it.

Stopping is SIGTERM, ``grace`` seconds, SIGKILL, wait — the child is always reaped, and the
sequence runs to its end even when the task that asked for it is cancelled (compare anyio's
``Process.aclose`` and its test ``test_process_aexit_cancellation_doesnt_orphan_process``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import structlog

from logpulse_agent.errors import VectorError
from logpulse_agent.vector.logwatch import last_error, wait_for_start

log = structlog.get_logger("logpulse_agent.vector.supervisor")
T = TypeVar("T")


class VectorChild:
    """A Vector process we spawned and what we learnt about it.

    ``requested``: the supervisor asked it to exit, so its exit is no failure. ``started`` is
    set once "Vector has started." was seen *or* the start failed (then ``start_error`` says
    why). ``done`` is set once its exit has been recorded.
    """

    def __init__(self, proc: asyncio.subprocess.Process, spawned_at: float, offset: int) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.spawned_at = spawned_at
        self.log_offset = offset
        self.requested = False
        self.start_error: VectorError | None = None
        self.started = asyncio.Event()
        self.done = asyncio.Event()

    @property
    def alive(self) -> bool:
        """False once the process has exited (``returncode`` is None while it runs)."""
        return self.proc.returncode is None

    @property
    def running(self) -> bool:
        """Started successfully and not exited."""
        return self.started.is_set() and self.start_error is None and self.alive

    async def confirm_start(self, log_path: Path, timeout: float, grace: float) -> bool:
        """Wait for "Vector has started." in ``log_path``; True when it came.

        Otherwise ``start_error`` says why: stopped on request, exited (with its code and its
        last error line), or silent past ``timeout`` — then it is terminated, as a failure.
        ``started`` is set either way.
        """
        try:
            await wait_for_start(log_path, self.log_offset, timeout, alive=lambda: self.alive)
            return True
        except VectorError as exc:
            if self.requested:
                self.start_error = VectorError("Vector was stopped before it started")
            elif self.alive:
                self.start_error = exc
                await self.terminate(grace, requested=False)
            else:
                reason = last_error(log_path, self.log_offset)
                message = f"Vector exited with code {self.proc.returncode} before it started"
                self.start_error = VectorError(f"{message}: {reason}" if reason else message)
            return False
        finally:
            self.started.set()

    async def terminate(self, grace: float, requested: bool = True) -> None:
        """SIGTERM, ``grace`` seconds, SIGKILL; returns once the process is reaped."""
        if requested:
            self.requested = True
        if not self.alive:
            await self.proc.wait()
            return
        log.info("vector.stopping", pid=self.pid, grace=grace)
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), grace)
        except asyncio.TimeoutError:
            log.warning("vector.killed", pid=self.pid, grace=grace)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


async def uncancellable(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end even if the caller is cancelled meanwhile; then re-raise that.

    Only for bounded work (stopping Vector is bounded by the grace period and SIGKILL).
    """
    task = asyncio.ensure_future(coro)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():  # the work itself was cancelled (event loop shutting down)
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result
