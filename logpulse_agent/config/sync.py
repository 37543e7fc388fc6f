"""Config sync: poll the control plane, validate, swap, reload, watch, roll back.

The apply sequence for a new config (SPEC §6):

1. write the body to ``vector.next.yaml`` (atomic), run ``vector validate`` on it together with
   the agent's global options, exactly as Vector will load them;
2. rename it over ``vector.yaml`` (Vector never sees a missing or torn file);
3. SIGHUP and wait for Vector's own "reloaded" line — or restart when global options changed,
   or start Vector when it was not running;
4. record version and etag as applied, clear the last config error;
5. watch Vector for a crash window: a crash loop rolls back to the newest fallback, a quiet
   window makes this config the last-known-good one.

A failure at 1 or 3 restores the previous file, records ``configError`` and remembers the
version/etag as rejected so the same bad config is not validated again at every poll; polls
then send the rejected version and etag (:func:`~.decisions.poll_cursor`), so the control plane
answers 204 until it serves something else, instead of the rejected body at every poll.

Fallbacks (:mod:`.store`): the config a new one replaces is judged at that moment
(:func:`~.decisions.standing`). One that ran its whole window is the last-known-good; one
replaced inside its window that Vector ran without a single exit is the *superseded* fallback,
tried first and watched again when rolled back to; one that failed is never returned to. A crash
loop with no fallback left stops Vector.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import structlog

from logpulse_agent.backoff import jittered
from logpulse_agent.config.book import ConfigBook
from logpulse_agent.config.decisions import (
    CRASH_LOOP_EXITS,
    Plan,
    Standing,
    Watch,
    crash_loop,
    crash_window,
    plan_update,
    retry_ceiling,
    should_poll_now,
    standing,
    survived,
)
from logpulse_agent.config.store import AppliedConfig, ConfigStore, RejectedConfig
from logpulse_agent.controlplane.protocol import (
    ConfigUnchanged,
    ConfigUpdate,
    config_etag,
    is_empty_config,
)
from logpulse_agent.errors import (
    ControlPlaneError,
    RevokedError,
    ValidationFailed,
    VectorError,
)
from logpulse_agent.status.tracker import StatusTracker
from logpulse_agent.vector.options import requires_restart

log = structlog.get_logger(__name__)


class VectorControl(Protocol):
    """What config sync needs from the Vector supervisor."""

    @property
    def should_run(self) -> bool: ...

    @property
    def running(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def restart(self) -> None: ...

    async def reload(self, timeout: float = 30.0) -> None: ...

    def recent_failures(self, since: float) -> int: ...


Fetch = Callable[[int, "str | None"], Awaitable["ConfigUnchanged | ConfigUpdate"]]
Validate = Callable[[Path], Awaitable[None]]


class ConfigSync:
    """The config-sync task; ``poke()`` asks for an immediate poll."""

    def __init__(
        self,
        *,
        store: ConfigStore,
        fetch: Fetch,
        validate: Validate,
        vector: VectorControl,
        status: StatusTracker,
        poll_interval: float,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._fetch = fetch
        self._validate = validate
        self.vector = vector
        self.status = status
        self.poll_interval = poll_interval
        self.crash_window = crash_window(poll_interval)
        self._rng = rng or random.Random()
        self._clock = clock
        self._poke = asyncio.Event()
        self._lock = asyncio.Lock()
        self.book = ConfigBook(store, status)
        self._watch: Watch | None = None
        self._watching = asyncio.Event()
        self._skip_told: str | None = None  # the rejected etag a skip was logged for

    @property
    def applied(self) -> AppliedConfig:
        return self.book.applied

    @property
    def rejected(self) -> RejectedConfig | None:
        return self.book.rejected

    @property
    def watch(self) -> Watch | None:
        """The freshly applied config under observation, if any."""
        return self._watch

    @watch.setter
    def watch(self, value: Watch | None) -> None:
        self._watch = value
        if value is not None:
            self._watching.set()

    # --- public ------------------------------------------------------------------------------
    def poke(self) -> None:
        """Poll now."""
        self._poke.set()

    def on_group_version(self, version: int | None) -> None:
        """A heartbeat said which config version the group serves us: poll now when it is
        ahead of the one we poll with; forget a rejected version it no longer offers."""
        self.book.withdraw(version)
        if should_poll_now(version, self.book.cursor[0]):
            self.poke()

    async def run(self) -> None:
        """Start Vector on the config from disk, then poll forever."""
        await self.start_from_disk()
        watcher = asyncio.create_task(self._watch_loop(), name="config-watch")
        try:
            while True:
                delay = await self._poll_guarded()
                self._poke.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._poke.wait(), delay)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def start_from_disk(self) -> None:
        """Run Vector on the applied config, if there is one (agent restart, upgrade).

        A live config with no matching record (the agent was stopped between installing a
        config and recording it) was validated before it was installed: Vector runs on it
        until the next poll, which fetches from version 0 and records what the group serves.
        """
        if self.applied.empty:
            return
        if self.applied.etag is None:
            live = self.store.read_live()
            if live is None or is_empty_config(live):
                return
            if self.rejected is not None and self.rejected.failed(config_etag(live)):
                return  # left behind by a crash loop with nothing to roll back to: Vector stays off
            log.info("config.resume_unrecorded", reason="no record matches the live config")
            await self._start_resumed()
            return
        if self.applied.etag != self.applied.lkg_etag:
            self.watch = Watch(self.applied.version, self.applied.etag, self._clock())
        log.info("config.resume", version=self.applied.version)
        await self._start_resumed()

    async def _start_resumed(self) -> None:
        try:
            await self.vector.start()
        except VectorError as exc:
            log.warning("config.resume_failed", version=self.applied.version, error=str(exc))

    async def poll_once(self) -> None:
        """One fetch and whatever it calls for."""
        update = await self._fetch(*self.book.cursor)
        if isinstance(update, ConfigUnchanged):
            return
        async with self._lock:
            await self._handle(update)

    async def check_vector(self) -> None:
        """Roll back on a crash loop; promote a config that survived its window."""
        async with self._lock:
            watch = self.watch
            if watch is None:
                return
            exits = self.vector.recent_failures(watch.since)
            if crash_loop(exits):
                await self._rollback(watch, exits)
            elif survived(watch, self._clock(), self.crash_window, exits):
                live = self.store.read_live()
                if live is not None:
                    self._promote(watch, live)

    # --- polling -----------------------------------------------------------------------------
    async def _poll_guarded(self) -> float:
        """Poll once; return how long to wait before the next poll."""
        try:
            await self.poll_once()
        except RevokedError as exc:
            self.status.mark_revoked(str(exc))
            return retry_ceiling(self.poll_interval)
        except ControlPlaneError as exc:
            log.warning("config.poll_failed", error=str(exc))
            self.status.set(replace(self.status.control_plane, error=str(exc)))
        except VectorError as exc:
            log.error("config.apply_failed", error=str(exc))
        return jittered(self.poll_interval, self._rng)

    async def _watch_loop(self) -> None:
        """Tick only while a freshly applied config is watched (no idle wake-ups)."""
        tick = min(1.0, self.poll_interval / 4)
        while True:
            if self.watch is None:
                self._watching.clear()
                await self._watching.wait()
            await asyncio.sleep(tick)
            try:
                await self.check_vector()
            except Exception as exc:  # e.g. Vector won't start on the rollback config either
                # Logged, and the watch goes on: a dead watcher would never roll back again.
                log.error("config.watch_failed", error=str(exc), exc_info=True)
                await asyncio.sleep(self.poll_interval)

    # --- applying ----------------------------------------------------------------------------
    async def _handle(self, update: ConfigUpdate) -> None:
        plan = plan_update(
            update.version, update.etag, update.is_empty, self.applied, self.rejected
        )
        fields = {"version": update.version, "etag": update.etag, "plan": plan.value}
        if plan is Plan.SKIP_REJECTED:
            # The cursor makes the server answer 204 while it serves the rejected config; one
            # that sends it anyway (ignoring If-None-Match) gets one info line, not one per
            # poll (8,640 a day at the default cadence).
            if self._skip_told != update.etag:
                log.info("config.received", **fields)
            self._skip_told = update.etag
            return
        log.info("config.received", **fields)
        if plan is Plan.RECORD_ONLY:
            self.book.record(update.version, update.etag, empty=False)
            return
        if plan is Plan.STOP:
            await self.vector.stop()
            self.watch = None
            self.book.record(update.version, update.etag, empty=True)
            log.info("config.empty", version=update.version, action="vector stopped")
            return
        await self._apply(update)

    async def _apply(self, update: ConfigUpdate) -> None:
        previous = self.store.read_live()
        candidate = self.store.write_candidate(update.body)
        try:
            await self._validate(candidate)
        except ValidationFailed as exc:
            self.book.reject(update.version, update.etag, str(exc))
            return
        # Parsing both configs can take seconds for a big one: off the event loop, which keeps
        # heartbeats, the supervisor and the systemd watchdog going meanwhile.
        restart = previous is not None and await asyncio.to_thread(
            requires_restart,
            previous.decode("utf-8", "replace"),
            update.body.decode("utf-8", "replace"),
        )
        # Judged before the swap: what Vector does on the new config is not the old one's doing.
        replaced = self.watch
        judged = self._judge(replaced)
        self.store.promote_candidate()
        since = self._clock()
        was_running = self.vector.should_run  # start() wants Vector running even if it fails
        try:
            if not self.vector.should_run:
                await self.vector.start()
            elif restart:
                log.info("config.restart", version=update.version, reason="global options changed")
                await self.vector.restart()
            else:
                await self.vector.reload()
        except VectorError as exc:
            if previous is not None and was_running:
                # A failed reload keeps the old pipeline; after a failed restart the supervisor
                # starts Vector again from the live file: either way, the previous file goes back.
                self.store.write_live(previous)
                if not restart:
                    self.book.reject(update.version, update.etag, f"vector reload failed: {exc}")
                    return
                what = "vector restart failed (global options changed)"
                self.book.reject(update.version, update.etag, f"{what}: {exc}")
                if replaced is not None:  # judged from the supervisor's next start onwards
                    self.watch = replace(replaced, since=self._clock())
                return
            # Vector did not come up on it: the crash-loop watch decides about rollback.
            log.warning("config.start_failed", version=update.version, error=str(exc))
        if replaced is not None and previous is not None:
            self._keep_fallback(replaced, judged, previous)
        self.watch = Watch(update.version, update.etag, since)
        self.book.record(update.version, update.etag, empty=False)
        log.info("config.applied", version=update.version, etag=update.etag)

    def _judge(self, watch: Watch | None) -> Standing | None:
        """What the watched config is worth as a fallback if it is replaced now."""
        if watch is None:
            return None
        exits = self.vector.recent_failures(watch.since)
        return standing(watch, self._clock(), self.crash_window, exits, self.vector.running)

    def _keep_fallback(self, watch: Watch, judged: Standing | None, body: bytes) -> None:
        """The replaced config ``watch`` (content ``body``) becomes a fallback if it earned it."""
        if judged is Standing.PROVEN:
            self._promote(watch, body)
        elif judged is Standing.CLEAN:
            self.book.keep_superseded(watch, body)

    async def _rollback(self, watch: Watch, exits: int) -> None:
        """``watch`` crash-looped: back to the newest fallback that has not failed, else stop."""
        self.watch = None
        target = self.book.fallback(watch.etag)
        message = (
            f"Vector exited {exits} times within {self.crash_window:g}s of applying "
            f"version {watch.version}"
        )
        if target is None:
            message += "; no config to roll back to, Vector stopped"
            self.book.reject_crashed(watch, message)
            await self.vector.stop()
            self.book.set_applied(AppliedConfig())
            log.error("config.crash_loop", version=watch.version, action="vector stopped")
            return
        self.book.reject_crashed(watch, message + f"; rolled back to version {target.version}")
        self.book.roll_back_to(target)
        if target.watch:  # it never ran a whole window: judged again, by the same rules
            self.watch = Watch(target.version, target.etag, self._clock())
        log.error("config.rolled_back", version=watch.version, to=target.version)
        await self.vector.restart()

    def _promote(self, watch: Watch, body: bytes) -> None:
        self.book.promote(watch, body)
        if self.watch == watch:
            self.watch = None


__all__ = ["CRASH_LOOP_EXITS", "ConfigSync", "VectorControl"]
