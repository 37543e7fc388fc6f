"""Config sync: poll the control plane, validate, swap, reload, watch, roll back.

The apply sequence for a new config (SPEC §6):

1. write the body to ``vector.next.yaml`` (atomic), run ``vector validate`` on it together with
   the agent's global options, exactly as Vector will load them;
2. rename it over ``vector.yaml`` (Vector never sees a missing or torn file);
3. SIGHUP and wait for Vector's own "reloaded" line — or restart when global options changed,
   or start Vector when it was not running;
4. record version and etag as applied, clear the last config error;
5. watch Vector for a crash window: a crash loop restores the last-known-good config, a quiet
   window makes this config the last-known-good one.

A failure at 1 or 3 restores the previous file, records ``configError`` and remembers the
version/etag as rejected so the same bad config is not validated again at every poll.
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
from logpulse_agent.clock import rfc3339, utc_now
from logpulse_agent.config.decisions import (
    CRASH_LOOP_EXITS,
    Plan,
    Watch,
    crash_loop,
    crash_window,
    plan_update,
    retry_ceiling,
    should_poll_now,
    survived,
)
from logpulse_agent.config.store import (
    AppliedConfig,
    ConfigStore,
    RejectedConfig,
    sha256_etag,
)
from logpulse_agent.controlplane.protocol import ConfigErrorReport, ConfigUnchanged, ConfigUpdate
from logpulse_agent.errors import (
    ControlPlaneError,
    RevokedError,
    ValidationFailed,
    VectorError,
)
from logpulse_agent.status.sections import ConfigStatus
from logpulse_agent.status.tracker import StatusTracker
from logpulse_agent.vector.options import is_empty_config, requires_restart

log = structlog.get_logger(__name__)


class VectorControl(Protocol):
    """What config sync needs from the Vector supervisor."""

    @property
    def should_run(self) -> bool: ...

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
        self.applied = store.load_applied()
        self.rejected = store.load_rejected()
        self._watch: Watch | None = None
        self._watching = asyncio.Event()
        self._publish()

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
        """A heartbeat said which config version the group is at: poll now when it is ahead of
        the applied one."""
        if should_poll_now(version, self.applied):
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
            if self.rejected is not None and sha256_etag(live) == self.rejected.etag:
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
        update = await self._fetch(self.applied.version, self.applied.etag)
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
                self._promote_lkg(watch)

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
        log.info("config.received", version=update.version, etag=update.etag, plan=plan.value)
        if plan is Plan.SKIP_REJECTED:
            return
        if plan is Plan.RECORD_ONLY:
            self._record(update.version, update.etag, empty=False)
            return
        if plan is Plan.STOP:
            await self.vector.stop()
            self.watch = None
            self._record(update.version, update.etag, empty=True)
            log.info("config.empty", version=update.version, action="vector stopped")
            return
        await self._apply(update)

    async def _apply(self, update: ConfigUpdate) -> None:
        previous = self.store.read_live()
        candidate = self.store.write_candidate(update.body)
        try:
            await self._validate(candidate)
        except ValidationFailed as exc:
            self._reject(update.version, update.etag, str(exc))
            return
        # Parsing both configs can take seconds for a big one: off the event loop, which keeps
        # heartbeats, the supervisor and the systemd watchdog going meanwhile.
        restart = previous is not None and await asyncio.to_thread(
            requires_restart,
            previous.decode("utf-8", "replace"),
            update.body.decode("utf-8", "replace"),
        )
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
                # Vector kept its old pipeline; put the matching file back.
                self.store.write_live(previous)
                self._reject(update.version, update.etag, f"vector reload failed: {exc}")
                return
            # Vector did not come up on it: the crash-loop watch decides about rollback.
            log.warning("config.start_failed", version=update.version, error=str(exc))
        self.watch = Watch(update.version, update.etag, since)
        self._record(update.version, update.etag, empty=False)
        log.info("config.applied", version=update.version, etag=update.etag)

    async def _rollback(self, watch: Watch, exits: int) -> None:
        lkg = self.store.read_lkg()
        message = (
            f"Vector exited {exits} times within {self.crash_window:g}s of applying "
            f"version {watch.version}"
        )
        self.watch = None
        if lkg is not None and self.applied.lkg_etag is not None:
            message += f"; rolled back to version {self.applied.lkg_version}"
            self.store.write_live(lkg)
            self._reject(watch.version, watch.etag, message)
            self._record(
                self.applied.lkg_version, self.applied.lkg_etag, empty=False, clears_error=False
            )
            log.error("config.rolled_back", version=watch.version, to=self.applied.lkg_version)
            await self.vector.restart()
        else:
            message += "; no last-known-good config to roll back to, Vector stopped"
            self._reject(watch.version, watch.etag, message)
            await self.vector.stop()
            self._set_applied(AppliedConfig())
            log.error("config.crash_loop", version=watch.version, action="vector stopped")

    def _promote_lkg(self, watch: Watch) -> None:
        live = self.store.read_live()
        if live is None:
            return
        self.store.save_lkg(live)
        self.watch = None
        self._set_applied(
            AppliedConfig(
                version=self.applied.version,
                etag=self.applied.etag,
                empty=self.applied.empty,
                lkg_version=watch.version,
                lkg_etag=watch.etag,
            )
        )
        log.info("config.last_known_good", version=watch.version)

    # --- bookkeeping -------------------------------------------------------------------------
    def _record(self, version: int, etag: str, *, empty: bool, clears_error: bool = True) -> None:
        """Record ``version`` as applied. What the control plane sends next supersedes a
        rejected config and clears the error, even at a lower version (versions count per
        group, so a moved agent starts again from 1); the rollback that rejected it does not.
        An empty config forgets the last-known-good one: the operator withdrew every input, so
        a later crash loop rolls back to "stopped", never to a pipeline removed on purpose.
        """
        if clears_error and self.rejected is not None and etag != self.rejected.etag:
            self.rejected = None
            self.store.save_rejected(None)
        keep = not empty
        self._set_applied(
            AppliedConfig(
                version=version,
                etag=etag,
                empty=empty,
                lkg_version=self.applied.lkg_version if keep else 0,
                lkg_etag=self.applied.lkg_etag if keep else None,
            )
        )

    def _set_applied(self, applied: AppliedConfig) -> None:
        self.store.save_applied(applied)
        self.applied = applied
        self._publish()

    def _reject(self, version: int, etag: str, message: str) -> None:
        log.error("config.rejected", version=version, etag=etag, error=message)
        self.rejected = RejectedConfig(
            version=version, etag=etag, message=message, at=rfc3339(utc_now())
        )
        self.store.save_rejected(self.rejected)
        self._publish()

    def _publish(self) -> None:
        rejected = self.rejected
        error = None
        if rejected is not None:
            error = ConfigErrorReport(rejected.version, rejected.message, rejected.at)
        self.status.set(
            ConfigStatus(self.applied.version, self.applied.etag, self.applied.empty, error)
        )


__all__ = ["CRASH_LOOP_EXITS", "ConfigSync", "VectorControl"]
