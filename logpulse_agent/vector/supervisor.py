"""The Vector supervisor: one child process, started, watched, reloaded, restarted, stopped.

Callers say what they want — :meth:`~VectorSupervisor.start`, :meth:`~VectorSupervisor.stop`,
:meth:`~VectorSupervisor.restart`, :meth:`~VectorSupervisor.reload` — and :meth:`run`, the
supervision task, restarts every exit nobody asked for, with exponential backoff (1 s → 60 s,
jittered, reset after ``stable_after`` seconds of uptime; :mod:`logpulse_agent.backoff`). The
four operations are serialised by one lock and each finishes what it started; the later call
wins.

Each spawned process gets a *follower* task that waits for "Vector has started." in vector.log,
then for the exit, and records it: the one place where exits are observed, so they are counted
whether or not :meth:`run` is running. Stopping is bounded and always reaps the child, also when
the calling task is cancelled (:mod:`.child`). States are in :mod:`.states`; how Vector is
spawned and a leftover one recognised is in :mod:`.process`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import structlog

from logpulse_agent.errors import ReloadFailed, StateError, VectorError
from logpulse_agent.redact import redact
from logpulse_agent.vector import process
from logpulse_agent.vector.child import VectorChild, uncancellable
from logpulse_agent.vector.commands import child_env, vector_version
from logpulse_agent.vector.logwatch import (
    last_error,
    log_offset,
    rotate_if_needed,
    wait_for_reload,
)
from logpulse_agent.vector.states import ExitHistory, ExitRecord, VectorState

__all__ = ["ExitRecord", "VectorState", "VectorSupervisor"]

log = structlog.get_logger(__name__)


class VectorSupervisor:
    """Owns the Vector child. ``state``, ``pid``, ``version``, ``last_error`` feed ``status``
    (``last_error`` is set before the state change that publishes it)."""

    def __init__(
        self,
        *,
        vector_bin: str,
        config_paths: Sequence[Path],
        log_path: Path,
        pid_path: Path,
        env: Mapping[str, str],
        grace_period: float = 60.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        stable_after: float = 60.0,
        start_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        log_max_bytes: int = 10 * 1024 * 1024,
        log_keep: int = 3,
        housekeeping_interval: float = 60.0,
    ) -> None:
        self.vector_bin = vector_bin
        self.config_paths = [Path(p) for p in config_paths]
        self.log_path, self.pid_path = Path(log_path), Path(pid_path)
        # The marker lets clean_stale() recognise our Vector even before the pid file names it.
        self.env = {**child_env(env), process.MARKER_ENV: str(self.pid_path)}
        self.grace_period, self.start_timeout = grace_period, start_timeout
        self.history = ExitHistory(
            initial=backoff_initial, maximum=backoff_max, stable_after=stable_after, rng=rng
        )
        self.log_max_bytes, self.log_keep = log_max_bytes, log_keep
        self.housekeeping_interval = housekeeping_interval
        self._clock = clock
        self._state = VectorState.STOPPED
        # Called with the new state on every change (the daemon republishes its status).
        self.on_state: Callable[[VectorState], None] = lambda state: None
        self.pid: int | None = None
        self.version: str | None = None
        # Why the last start failed or the last unrequested exit happened (redacted); None
        # once Vector runs again.
        self.last_error: str | None = None
        self._child: VectorChild | None = None
        self._desired = False
        self._last_hup = -float("inf")  # event-loop time of the last SIGHUP
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._followers: set[asyncio.Task[None]] = set()

    @property
    def state(self) -> VectorState:
        return self._state

    @state.setter
    def state(self, value: VectorState) -> None:
        if value is not self._state:
            self._state = value
            try:
                self.on_state(value)
            except Exception:  # an observer must never break supervision (an orphaned Vector)
                log.exception("vector.on_state_failed", state=value.value)

    @property
    def should_run(self) -> bool:
        """Whether Vector is wanted running (the last of start/restart/reload versus stop)."""
        return self._desired

    @property
    def running(self) -> bool:
        """Whether Vector reported its start on the current files and has not exited since."""
        return self.state is VectorState.RUNNING

    def uptime(self) -> float:
        """Seconds since the current process was spawned; 0 when Vector is not RUNNING."""
        child = self._child
        if child is None or not child.alive or self.state is not VectorState.RUNNING:
            return 0.0
        return max(0.0, self._clock() - child.spawned_at)

    @property
    def exits(self) -> list[ExitRecord]:
        """The last exits, oldest first (bounded)."""
        return self.history.exits

    def recent_failures(self, since: float) -> int:
        """Unrequested exits at or after ``since`` (clock units): the crash-loop signal."""
        return self.history.failures_since(since)

    async def refresh_version(self) -> str | None:
        """Ask ``vector --version``; keep the answer in ``version`` (None when it fails)."""
        self.version = await vector_version(self.vector_bin, self.env)
        return self.version

    async def start(self) -> None:
        """Want Vector running; spawn it unless it runs; return once it reported its start.

        Raises :class:`VectorError` when it exited (or stayed silent) before starting, or when
        the binary cannot be executed (state FATAL). :meth:`run` keeps retrying either way.
        """
        async with self._lock:
            self._want(True)
            await self._ensure_started()

    async def stop(self) -> None:
        """Want Vector stopped: SIGTERM, grace period, SIGKILL, reaped. Idempotent."""
        await uncancellable(self._stop())

    async def restart(self) -> None:
        """Stop Vector if it runs and start it again (raises like :meth:`start`)."""
        async with self._lock:
            self._want(True)
            self.history.reset()
            await uncancellable(self._stop_current())
            await self._ensure_started()

    async def reload(self, timeout: float = 30.0) -> None:
        """SIGHUP Vector and wait for "Vector has reloaded." in vector.log.

        Raises :class:`ReloadFailed` when Vector says the reload failed (it keeps the old
        pipeline), dies, or stays silent for ``timeout`` seconds. When Vector is not running it
        is started instead, which reads the new files anyway (raises like :meth:`start`).
        """
        async with self._lock:
            self._want(True)
            child = self._child
            if child is not None and not child.done.is_set():
                await child.started.wait()
            if child is None or not child.running:
                await self._ensure_started()
                return
            # One SIGHUP per rate-limit window, so Vector never swallows its answer (process.py).
            loop = asyncio.get_running_loop()
            await asyncio.sleep(self._last_hup + process.LOG_RATE_LIMIT + 0.1 - loop.time())
            offset = log_offset(self.log_path)
            self._last_hup = loop.time()
            try:
                child.proc.send_signal(signal.SIGHUP)
            except ProcessLookupError:
                raise ReloadFailed("Vector exited before the reload") from None
            try:
                await wait_for_reload(self.log_path, offset, timeout, alive=lambda: child.alive)
            except ReloadFailed as exc:
                log.warning("vector.reload_failed", pid=child.pid, reason=str(exc))
                raise
            log.info("vector.reloaded", pid=child.pid)

    async def clean_stale(self) -> int:
        """Stop every Vector on our config paths left behind by a killed agent; how many.

        Identified as :mod:`.process` describes; a process that merely reuses the recorded pid
        is left alone. Call it before the first start.
        """
        async with self._lock:
            mine = {os.getpid()} | ({self._child.pid} if self._child is not None else set())
            return await process.stop_stale(
                vector_bin=self.vector_bin,
                config_paths=self.config_paths,
                pid_path=self.pid_path,
                exclude=mine,
                grace=self.grace_period,
            )

    async def run(self) -> None:
        """The supervision task: restart unrequested exits with backoff, rotate vector.log.

        Runs until cancelled; on cancellation it stops Vector (SIGTERM → grace → SIGKILL),
        reaps it and re-raises.
        """
        try:
            while True:
                self._changed.clear()
                if self._needs_spawn():
                    await self._respawn()
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), self.housekeeping_interval)
                if not self._lock.locked():  # never under a pending start/reload confirmation
                    rotate_if_needed(self.log_path, self.log_max_bytes, self.log_keep)
        except asyncio.CancelledError:
            self._desired = False
            await uncancellable(self._stop_current())
            raise

    def _want(self, running: bool) -> None:
        self._desired = running
        self._changed.set()

    def _needs_spawn(self) -> bool:
        return self._desired and (self._child is None or self._child.done.is_set())

    async def _respawn(self) -> None:
        """Wait out the backoff, then start Vector unless something changed meanwhile."""
        delay = self.history.next_delay(self.state)
        if delay > 0:
            if self.state is not VectorState.FATAL:
                self.state = VectorState.BACKOFF
            log.info("vector.restarting", delay=round(delay, 3), attempt=self.history.attempt)
            deadline = asyncio.get_running_loop().time() + delay
            while self._needs_spawn():  # an explicit start() or stop() ends the wait early
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                self._changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        async with self._lock:
            if self._needs_spawn():
                with contextlib.suppress(VectorError):  # recorded; the loop comes round again
                    await self._ensure_started()

    async def _stop(self) -> None:
        self._want(False)
        async with self._lock:
            self._want(False)  # again: a start() queued before us must not win
            self.history.reset()
            await self._stop_current()

    async def _stop_current(self) -> None:
        """Stop the current process, if any, and wait until its exit is recorded."""
        child = self._child
        if child is not None and not child.done.is_set():
            self.state = VectorState.STOPPING
            await child.terminate(self.grace_period)
            await child.done.wait()
        self.state = VectorState.STOPPED

    async def _ensure_started(self) -> None:
        """Spawn unless a started Vector runs, and wait for its start. Caller holds the lock."""
        child = self._child
        if child is not None and not child.done.is_set():
            await child.started.wait()
            if child.running:
                return
            await child.done.wait()  # a failed start is still being cleaned up by its follower
        child = await self._spawn()
        await child.started.wait()
        if child.start_error is not None:
            raise child.start_error

    async def _spawn(self) -> VectorChild:
        rotate_if_needed(self.log_path, self.log_max_bytes, self.log_keep)
        offset = log_offset(self.log_path)
        self.state = VectorState.STARTING
        log.info(
            "vector.starting",
            attempt=self.history.attempt,
            config=list(map(str, self.config_paths)),
        )
        try:
            proc = await process.spawn(self.vector_bin, self.config_paths, self.log_path, self.env)
        except OSError as exc:
            # The error first: the state change publishes the status, which must say why.
            self.last_error = f"cannot execute {self.vector_bin}: {exc.strerror or exc}"
            self.state = VectorState.FATAL
            log.error("vector.spawn_failed", error=self.last_error)
            self._changed.set()
            raise VectorError(self.last_error) from None
        child = VectorChild(proc, self._clock(), offset)
        self._child, self.pid = child, proc.pid
        try:
            process.write_pid_file(self.pid_path, proc.pid)
        except StateError as exc:
            log.warning("vector.pid_file_failed", error=str(exc))
        task = asyncio.create_task(self._follow(child))
        self._followers.add(task)  # keep a reference until it is done
        task.add_done_callback(self._followers.discard)
        return child

    async def _follow(self, child: VectorChild) -> None:
        """Confirm the start of ``child``, then wait for its exit and record it."""
        try:
            if await child.confirm_start(self.log_path, self.start_timeout, self.grace_period):
                if child is self._child and not child.requested:
                    self.last_error = None
                    self.state = VectorState.RUNNING
                log.info("vector.started", pid=child.pid)
            elif not child.requested:
                self.last_error = redact(str(child.start_error))
                log.error("vector.start_failed", pid=child.pid, error=self.last_error)
            self._record_exit(child, await child.proc.wait())
        finally:
            child.done.set()
            self._changed.set()

    def _record_exit(self, child: VectorChild, returncode: int) -> None:
        uptime = max(0.0, self._clock() - child.spawned_at)
        self.history.record(self._clock(), returncode, uptime, child.requested)
        process.remove_pid_file(self.pid_path, child.pid)
        current = child is self._child
        if current:
            self.pid = None
        if child.requested:
            log.info("vector.stopped", pid=child.pid, exit_code=returncode)
            return
        log.warning(
            "vector.exited",
            pid=child.pid,
            exit_code=returncode,
            uptime=round(uptime, 3),
            attempt=self.history.attempt,
        )
        if current:
            if child.start_error is None:  # a failed start already said why
                reason = last_error(self.log_path, child.log_offset)
                message = f"Vector exited with code {returncode} after {uptime:.0f}s"
                self.last_error = f"{message}: {reason}" if reason else message
            self.state = VectorState.BACKOFF if self._desired else VectorState.STOPPED
