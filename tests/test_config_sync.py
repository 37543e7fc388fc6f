"""Config sync against fakes of the control plane and Vector (the real ones run in
tests/test_daemon_*.py): validate → swap → reload, failures keep the previous config."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from logpulse_agent.config import sync as config_sync
from logpulse_agent.config.store import AppliedConfig, ConfigStore
from logpulse_agent.config.sync import ConfigSync
from logpulse_agent.controlplane.protocol import ConfigUnchanged, ConfigUpdate, config_etag
from logpulse_agent.errors import (
    ReloadFailed,
    RevokedError,
    TransientError,
    ValidationFailed,
    VectorError,
)
from logpulse_agent.state.layout import Layout
from logpulse_agent.status.tracker import StatusTracker

pytestmark = pytest.mark.anyio

GOOD = (
    b"sources:\n  a: {type: demo_logs, format: json}\nsinks:\n  b: {type: console, inputs: [a]}\n"
)
GOOD2 = GOOD.replace(b"json", b"syslog")
GOOD3 = GOOD.replace(b"json", b"apache_common")
BAD = GOOD.replace(b"demo_logs", b"nonsense")


def update(version: int, body: bytes) -> ConfigUpdate:
    return ConfigUpdate(version=version, etag=config_etag(body), body=body)


class FakeVector:
    """Records calls; `fail_reload` makes the next reload fail like Vector's log would say."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.should_run = False
        self.running = False  # started on the live config and not exited since
        self.fail_reload = False
        self.fail_start = False
        self.fail_restart = False
        self.failures: list[float] = []

    async def start(self) -> None:
        self.calls.append("start")
        self.should_run = True  # as the supervisor: wanted running, even if this start fails
        self.running = not self.fail_start
        if self.fail_start:
            raise VectorError("Vector exited with status 78 before it was running")

    async def stop(self) -> None:
        self.calls.append("stop")
        self.should_run = False
        self.running = False

    async def restart(self) -> None:
        self.calls.append("restart")
        self.should_run = True
        self.running = not self.fail_restart
        if self.fail_restart:
            raise VectorError("Vector exited with status 78 before it was running")

    async def reload(self, timeout: float = 30.0) -> None:
        self.calls.append("reload")
        if self.fail_reload:
            raise ReloadFailed("Reload was not successful.")

    def recent_failures(self, since: float) -> int:
        return sum(1 for t in self.failures if t >= since)

    def crash(self, *at: float) -> None:
        """Vector exited without being asked to at these clock times (and is down now)."""
        self.failures += at
        self.running = False


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.layout = Layout(tmp_path / "etc", tmp_path / "lib", tmp_path / "log")
        self.layout.ensure_dirs()
        self.store = ConfigStore(self.layout)
        self.vector = FakeVector()
        self.answers: list[ConfigUpdate | ConfigUnchanged | Exception] = []
        self.requests: list[tuple[int, str | None]] = []
        self.validated: list[bytes] = []
        self.now = 1000.0
        self.status = StatusTracker(tmp_path / "lib" / "status.json", "0.1.0")
        self.sync = self.make_sync()

    def make_sync(self) -> ConfigSync:
        return ConfigSync(
            store=self.store,
            fetch=self.fetch,
            validate=self.validate,
            vector=self.vector,
            status=self.status,
            poll_interval=10.0,
            clock=lambda: self.now,
        )

    async def fetch(self, since: int, etag: str | None) -> ConfigUpdate | ConfigUnchanged:
        self.requests.append((since, etag))
        answer = self.answers.pop(0) if self.answers else ConfigUnchanged()
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def validate(self, candidate: Path) -> None:
        body = candidate.read_bytes()
        self.validated.append(body)
        if b"nonsense" in body:
            raise ValidationFailed("unknown component type 'nonsense'", "x Failed")

    async def poll(self, answer: ConfigUpdate | ConfigUnchanged | Exception) -> None:
        self.answers.append(answer)
        await self.sync.poll_once()


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


class TestApply:
    async def test_first_config_starts_vector(self, h: Harness) -> None:
        """The first valid config is validated, swapped in and Vector started."""
        await h.poll(update(1, GOOD))
        assert h.validated == [GOOD]
        assert h.store.read_live() == GOOD
        assert h.vector.calls == ["start"]
        assert h.sync.applied.version == 1
        assert h.requests == [(0, None)]

    async def test_new_version_is_reloaded(self, h: Harness) -> None:
        """A second config reloads the running Vector and sends since/etag of the first."""
        await h.poll(update(1, GOOD))
        await h.poll(update(2, GOOD2))
        assert h.vector.calls == ["start", "reload"]
        assert h.requests[-1] == (1, config_etag(GOOD))
        assert h.store.read_live() == GOOD2

    async def test_invalid_config_is_kept_out_and_validated_once(self, h: Harness) -> None:
        """A failed validation keeps the previous file, reports configError, and the same
        version is not validated again at the next polls."""
        await h.poll(update(1, GOOD))
        for _ in range(3):
            await h.poll(update(2, BAD))
        assert h.validated == [GOOD, BAD]
        assert h.store.read_live() == GOOD
        assert h.sync.applied.version == 1
        assert h.sync.rejected is not None and h.sync.rejected.version == 2
        assert "nonsense" in h.sync.rejected.message
        assert h.status.config.error is not None
        assert h.vector.calls == ["start"]

    async def test_a_later_good_version_clears_the_error(self, h: Harness) -> None:
        """configError stays until a later version applies."""
        await h.poll(update(1, GOOD))
        await h.poll(update(2, BAD))
        await h.poll(update(3, GOOD2))
        assert h.sync.rejected is None and h.status.config.error is None
        assert not h.layout.rejected.exists()

    async def test_failed_reload_restores_the_previous_file(self, h: Harness) -> None:
        """Vector kept its old pipeline, so the old file goes back and the error is reported."""
        await h.poll(update(1, GOOD))
        h.vector.fail_reload = True
        await h.poll(update(2, GOOD2))
        assert h.store.read_live() == GOOD
        assert h.sync.applied.version == 1
        assert h.sync.rejected is not None and "reload" in h.sync.rejected.message

    async def test_empty_config_stops_vector_and_a_config_starts_it_again(self, h: Harness) -> None:
        """`{}` stops Vector and is recorded as applied; the next config starts it."""
        await h.poll(update(1, GOOD))
        await h.poll(update(2, b"{}"))
        assert h.vector.calls == ["start", "stop"]
        assert h.sync.applied.version == 2 and h.sync.applied.empty
        await h.poll(update(3, GOOD2))
        assert h.vector.calls == ["start", "stop", "start"]

    async def test_global_option_change_restarts_instead_of_reloading(self, h: Harness) -> None:
        """Vector cannot reload a changed global option: restart."""
        await h.poll(update(1, GOOD))
        await h.poll(update(2, b"data_dir: /elsewhere\n" + GOOD))
        assert h.vector.calls == ["start", "restart"]

    async def test_a_failed_restart_is_not_reported_as_a_failed_reload(self, h: Harness) -> None:
        """Global options changed and Vector did not come up again on the new config: the error
        says restart, the previous file goes back for the supervisor's next start, and the
        previous config's watch starts afresh (the failed start was not its exit)."""
        await h.poll(update(1, GOOD))
        h.now += 2
        h.vector.fail_restart = True
        await h.poll(update(2, b"data_dir: /elsewhere\n" + GOOD))
        assert h.vector.calls == ["start", "restart"]
        assert h.store.read_live() == GOOD and h.sync.applied.version == 1
        assert h.sync.rejected is not None
        assert h.sync.rejected.message.startswith("vector restart failed (global options changed)")
        assert "reload" not in h.sync.rejected.message
        assert h.sync.watch is not None and h.sync.watch.since == h.now

    async def test_same_bytes_new_version_is_recorded_without_reload(self, h: Harness) -> None:
        """A version bump that does not change the YAML touches nothing."""
        await h.poll(update(1, GOOD))
        await h.poll(update(2, GOOD))
        assert h.vector.calls == ["start"]
        assert h.sync.applied.version == 2


class TestAfterARejection:
    """Issue 10: after a rejection the agent polled with the applied version and got the
    rejected body in full at every poll, logging it at info each time."""

    async def test_polls_send_the_rejected_version_and_etag(self, h: Harness) -> None:
        """So the server answers 204 while it still serves the rejected config."""
        await h.poll(update(1, GOOD))
        await h.poll(update(2, BAD))
        await h.poll(ConfigUnchanged())
        assert h.requests[-1] == (2, config_etag(BAD))
        await h.poll(update(3, GOOD2))  # something else: applied, and polls follow it
        await h.poll(ConfigUnchanged())
        assert h.requests[-1] == (3, config_etag(GOOD2))

    async def test_polls_after_a_crash_loop_send_the_crashed_config(self, h: Harness) -> None:
        """Rolled back to v1, the agent polls with v2's version and etag, not v1's."""
        await h.poll(update(1, GOOD))
        h.now += 61
        await h.sync.check_vector()
        await h.poll(update(2, GOOD2))
        h.vector.crash(h.now + 1, h.now + 2, h.now + 3)
        h.now += 4
        await h.sync.check_vector()
        assert h.sync.applied.version == 1
        await h.poll(ConfigUnchanged())
        assert h.requests[-1] == (2, config_etag(GOOD2))

    async def test_the_heartbeat_does_not_poke_a_poll_for_the_rejected_version(
        self, h: Harness
    ) -> None:
        """The group's configVersion equals the rejected one: nothing new to fetch."""
        await h.poll(update(1, GOOD))
        await h.poll(update(2, BAD))
        h.sync.on_group_version(2)
        assert not h.sync._poke.is_set()
        h.sync.on_group_version(3)
        assert h.sync._poke.is_set()

    async def test_a_rejected_config_served_again_is_logged_once(self, h: Harness) -> None:
        """A server that ignores If-None-Match sends it at every poll: one info line."""
        await h.poll(update(1, GOOD))
        with capture_logs() as logs:
            for _ in range(4):
                await h.poll(update(2, BAD))
        received = [e for e in logs if e["event"] == "config.received"]
        assert [e["plan"] for e in received] == ["apply", "skip-rejected"]
        assert h.validated == [GOOD, BAD]


class TestRolledBack:
    async def test_a_lower_version_from_the_server_is_applied(self, h: Harness) -> None:
        """A staged rollout rolled back: version 2 is served again after 3 was applied; it is
        validated once, applied, and later polls send its version and etag."""
        await h.poll(update(2, GOOD))
        await h.poll(update(3, GOOD2))
        await h.poll(update(2, GOOD))
        assert (h.sync.applied.version, h.store.read_live()) == (2, GOOD)
        assert h.sync.rejected is None
        assert h.validated == [GOOD, GOOD2, GOOD]
        await h.poll(ConfigUnchanged())
        assert h.requests[-1] == (2, update(2, GOOD).etag)

    async def test_a_withdrawn_rejection_is_forgotten(self, h: Harness) -> None:
        """Version 3 failed validation; once the server serves version 2 (which we hold), the
        error is cleared from the status and the bad version is not fetched-and-retried."""
        await h.poll(update(2, GOOD))
        await h.poll(update(3, b"sources: {x: {type: nonsense}}\n"))
        assert h.sync.rejected is not None
        h.sync.book.withdraw(3)
        assert h.sync.rejected is not None  # still offered: still an error
        h.sync.book.withdraw(2)
        assert h.sync.rejected is None
        assert h.store.load_rejected() is None
        assert h.status.snapshot()["config"]["lastError"] is None
        assert len(h.validated) == 2


class TestCrashLoop:
    async def test_crash_loop_rolls_back_to_last_known_good(self, h: Harness) -> None:
        """Three exits right after an apply restore the last-known-good config."""
        await h.poll(update(1, GOOD))
        h.now += 61
        await h.sync.check_vector()  # version 1 survived its window
        assert h.store.read_lkg() == GOOD
        await h.poll(update(2, GOOD2))
        h.vector.failures = [h.now + 1, h.now + 2, h.now + 4]
        h.now += 5
        await h.sync.check_vector()
        assert h.store.read_live() == GOOD
        assert h.sync.applied.version == 1
        assert h.vector.calls[-1] == "restart"
        assert h.sync.rejected is not None and "rolled back to version 1" in h.sync.rejected.message
        await h.poll(update(2, GOOD2))
        assert h.vector.calls[-1] == "restart", "the crashing version is not applied again"

    async def test_crash_loop_without_fallback_stops_vector(self, h: Harness) -> None:
        """With no last-known-good config the crashing one is stopped, not looped forever."""
        await h.poll(update(1, GOOD))
        h.vector.failures = [h.now + 1, h.now + 2, h.now + 3]
        h.now += 4
        await h.sync.check_vector()
        assert h.vector.calls[-1] == "stop"
        assert h.sync.applied.version == 0


class TestSupersededFallback:
    """A config that ran and never failed until a newer one replaced it is a rollback target,
    even when it was replaced before its crash window ended; one that failed never is."""

    async def crash_loop(self, h: Harness) -> None:
        """The watched config makes Vector exit three times, and the watch notices."""
        h.vector.crash(h.now + 1, h.now + 2, h.now + 3)
        h.now += 4
        await h.sync.check_vector()

    @pytest.mark.parametrize("after", [0.1, 1.0, 59.0])
    async def test_a_config_replaced_inside_its_window_is_the_fallback(
        self, h: Harness, after: float
    ) -> None:
        """v1 runs (no last-known-good yet), v2 arrives 0.1 s, 1 s or 59 s later and
        crash-loops: Vector goes back to v1 instead of stopping."""
        await h.poll(update(1, GOOD))
        h.now += after
        await h.poll(update(2, GOOD2))
        await self.crash_loop(h)
        assert h.store.read_live() == GOOD
        assert h.sync.applied.version == 1
        assert h.vector.calls[-1] == "restart" and h.vector.should_run
        assert h.sync.rejected is not None and h.sync.rejected.version == 2
        assert "rolled back to version 1" in h.sync.rejected.message
        # v1 ran only briefly: it is watched again, and a quiet window makes it last-known-good.
        assert h.sync.watch is not None and h.sync.watch.version == 1
        h.now += 61
        await h.sync.check_vector()
        assert (h.sync.applied.lkg_version, h.store.read_lkg()) == (1, GOOD)

    async def test_a_config_replaced_after_its_window_is_the_fallback(self, h: Harness) -> None:
        """v2 arrives after v1's window but before the watch's tick promoted v1."""
        await h.poll(update(1, GOOD))
        h.now += 61
        await h.poll(update(2, GOOD2))
        assert (h.sync.applied.lkg_version, h.store.read_lkg()) == (1, GOOD)
        await self.crash_loop(h)
        assert (h.store.read_live(), h.sync.applied.version) == (GOOD, 1)
        assert h.sync.watch is None  # it ran its whole window: proven

    async def test_a_newer_fallback_goes_before_the_older_last_known_good(self, h: Harness) -> None:
        """v1 proven, v2 replaced cleanly by v3 within its window, v3 crash-loops: back to v2;
        if v2 then crash-loops too, back to v1."""
        await h.poll(update(1, GOOD))
        h.now += 61
        await h.sync.check_vector()
        await h.poll(update(2, GOOD2))
        h.now += 1
        await h.poll(update(3, GOOD3))
        await self.crash_loop(h)
        assert (h.store.read_live(), h.sync.applied.version) == (GOOD2, 2)
        assert h.sync.applied.lkg_version == 1
        await self.crash_loop(h)
        assert (h.store.read_live(), h.sync.applied.version) == (GOOD, 1)
        assert h.vector.calls[-1] == "restart"
        # The control plane still serves v3: that stays the rejected config, v2 failed too.
        assert h.sync.rejected is not None and h.sync.rejected.version == 3
        assert "version 2" in h.sync.rejected.message
        assert h.sync.rejected.message.endswith("rolled back to version 1")

    @pytest.mark.parametrize("proven", [False, True])
    async def test_a_config_that_failed_before_it_was_replaced_is_never_the_fallback(
        self, h: Harness, proven: bool
    ) -> None:
        """v1 was crash-looping itself when v2 replaced it; v2 crash-loops too: back to the
        older last-known-good v0 if there is one, else Vector stops. v1 is never run again."""
        if proven:
            await h.poll(update(1, GOOD3))
            h.now += 61
            await h.sync.check_vector()
        await h.poll(update(2, GOOD))
        h.vector.crash(h.now + 0.5)
        h.now += 1
        await h.poll(update(3, GOOD2))
        await self.crash_loop(h)
        if proven:
            assert (h.store.read_live(), h.sync.applied.version) == (GOOD3, 1)
            assert h.vector.calls[-1] == "restart"
        else:
            assert h.vector.calls[-1] == "stop"
            assert h.sync.applied.version == 0
        assert h.store.read_live() != GOOD and h.sync.applied.superseded_etag is None

    async def test_a_fallback_that_never_started_is_not_one(self, h: Harness) -> None:
        """v1 did not come up (start failed, nothing recorded yet): it did not run."""
        h.vector.fail_start = True
        await h.poll(update(1, GOOD))
        h.vector.fail_start = False
        h.now += 0.1
        await h.poll(update(2, GOOD2))
        await self.crash_loop(h)
        assert h.vector.calls[-1] == "stop"
        assert h.sync.applied.version == 0

    async def test_the_fallback_survives_an_agent_restart_after_it_was_replaced(
        self, h: Harness
    ) -> None:
        """v1 runs, v2 replaces it 0.1 s later, the agent restarts, v2 crash-loops: v1."""
        await h.poll(update(1, GOOD))
        h.now += 0.1
        await h.poll(update(2, GOOD2))
        h.vector = FakeVector()
        h.sync = h.make_sync()
        await h.sync.start_from_disk()
        assert h.sync.watch is not None and h.sync.watch.version == 2
        await self.crash_loop(h)
        assert (h.store.read_live(), h.sync.applied.version) == (GOOD, 1)
        assert h.vector.calls == ["start", "restart"]

    async def test_a_restart_before_the_replacement_keeps_the_rule(self, h: Harness) -> None:
        """v1 runs, the agent restarts (v1 is watched again), v2 arrives 0.1 s later and
        crash-loops: v1."""
        await h.poll(update(1, GOOD))
        h.vector = FakeVector()
        h.sync = h.make_sync()
        await h.sync.start_from_disk()
        h.now += 0.1
        await h.poll(update(2, GOOD2))
        await self.crash_loop(h)
        assert (h.store.read_live(), h.sync.applied.version) == (GOOD, 1)

    async def test_a_fallback_that_crashed_is_not_started_again_after_a_restart(
        self, h: Harness
    ) -> None:
        """v2 crash-loops, v1 (its fallback, never proven) crash-loops too, nothing older:
        Vector stops, and neither comes back when the agent restarts."""
        await h.poll(update(1, GOOD))
        h.now += 0.1
        await h.poll(update(2, GOOD2))
        await self.crash_loop(h)
        await self.crash_loop(h)
        assert h.vector.calls[-1] == "stop" and h.sync.applied.version == 0
        assert h.sync.rejected is not None and h.sync.rejected.version == 2
        h.vector = FakeVector()
        h.sync = h.make_sync()
        await h.sync.start_from_disk()
        assert h.vector.calls == []
        await h.poll(update(2, GOOD2))  # still served: still skipped
        assert h.vector.calls == []

    async def test_an_empty_config_forgets_the_fallback(self, h: Harness) -> None:
        """The operator withdrew every input: a later crash loop never revives v1."""
        await h.poll(update(1, GOOD))
        h.now += 0.1
        await h.poll(update(2, b"{}"))
        await h.poll(update(3, GOOD2))
        await self.crash_loop(h)
        assert h.vector.calls[-1] == "stop"
        assert h.store.read_live() == GOOD2


class TestRestart:
    async def test_restarted_agent_resumes_the_applied_config(self, h: Harness) -> None:
        """After a restart Vector starts on the config from disk without a network round trip."""
        await h.poll(update(1, GOOD))
        h.vector = FakeVector()
        h.sync = h.make_sync()
        await h.sync.start_from_disk()
        assert h.vector.calls == ["start"]
        assert h.sync.applied.version == 1

    async def test_revoked_agent_waits_at_the_ceiling(self, h: Harness) -> None:
        """403 marks the agent revoked and backs off to the 5-minute ceiling."""
        h.answers.append(RevokedError("403 token revoked"))
        delay = await h.sync._poll_guarded()
        assert delay == 300.0
        assert h.status.control_plane.state == "revoked"


class TestFailurePaths:
    """Found in review: each of these left Vector on the wrong config or stopped watching."""

    async def test_a_failed_start_after_an_empty_config_does_not_revive_the_removed_one(
        self, h: Harness
    ) -> None:
        """v1 runs, v2 is {} (Vector stopped, the live file still holds v1), v3 validates but
        Vector will not start on it: v1's pipeline, withdrawn by the operator, stays gone."""
        await h.poll(update(1, GOOD))
        await h.poll(update(2, b"{}"))
        h.vector.fail_start = True
        await h.poll(update(3, GOOD2))
        assert h.store.read_live() == GOOD2
        assert h.sync.applied.version == 3
        assert h.sync.watch is not None and h.sync.watch.version == 3  # the crash watch decides

    async def test_a_crash_loop_after_an_empty_config_stops_instead_of_reviving_it(
        self, h: Harness
    ) -> None:
        """Last-known-good is forgotten when the operator empties the group: a later crash
        loop ends with Vector stopped, not running the pipeline that was removed."""
        await h.poll(update(1, GOOD))
        h.now += 61
        await h.sync.check_vector()
        assert h.sync.applied.lkg_version == 1
        await h.poll(update(2, b"{}"))
        await h.poll(update(3, GOOD2))
        h.vector.failures = [h.now + 1, h.now + 2, h.now + 3]
        h.now += 4
        await h.sync.check_vector()
        assert h.vector.calls[-1] == "stop"
        assert h.store.read_live() == GOOD2

    async def test_the_crash_watch_survives_a_failed_rollback(self, h: Harness) -> None:
        """Vector will not start on the last-known-good config either: logged, and the watch
        goes on promoting and rolling back later configs."""
        h.sync.poll_interval = 0.01
        watcher = asyncio.create_task(h.sync._watch_loop())
        try:
            await h.poll(update(1, GOOD))
            h.now += 61
            await _until(lambda: h.sync.applied.lkg_version == 1)
            await h.poll(update(2, GOOD2))
            h.vector.fail_restart = True
            h.vector.failures = [h.now + 1, h.now + 2, h.now + 3]
            h.now += 4
            await _until(lambda: h.sync.rejected is not None)
            h.vector.fail_restart = False
            await h.poll(update(3, GOOD3))
            h.now += 61
            await _until(lambda: h.sync.applied.lkg_version == 3)
            assert not watcher.done()
        finally:
            watcher.cancel()
            with pytest.raises(asyncio.CancelledError):
                await watcher

    async def test_a_config_installed_but_not_recorded_runs_after_a_restart(
        self, h: Harness
    ) -> None:
        """Killed between installing v2 and recording it: on restart, with the control plane
        down, Vector runs on the validated live file rather than not at all."""
        await h.poll(update(1, GOOD))
        h.store.write_live(GOOD2)  # installed; applied.json still says v1
        h.vector = FakeVector()
        h.sync = h.make_sync()
        assert h.sync.applied.version == 0  # no record matches the live file
        await h.sync.start_from_disk()
        assert h.vector.calls == ["start"]
        h.answers.append(TransientError("control plane unreachable"))
        await h.sync._poll_guarded()
        assert h.vector.calls == ["start"]
        await h.poll(update(2, GOOD2))  # the next answer records it
        assert h.sync.applied.version == 2

    async def test_configs_are_compared_off_the_event_loop(
        self, h: Harness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Parsing two big configs must not stall heartbeats or the systemd watchdog."""
        threads: list[bool] = []

        def compare(old: str, new: str) -> bool:
            threads.append(threading.current_thread() is threading.main_thread())
            return False

        monkeypatch.setattr(config_sync, "requires_restart", compare)
        await h.poll(update(1, GOOD))
        await h.poll(update(2, GOOD2))
        assert threads == [False]
        assert h.vector.calls == ["start", "reload"]

    async def test_a_crash_looped_config_is_not_started_again_after_a_restart(
        self, h: Harness
    ) -> None:
        """The first config crash-loops with nothing to roll back to: Vector is stopped, and
        a restart of the agent (reboot, upgrade) must not start it again unwatched."""
        await h.poll(update(1, GOOD))
        h.vector.failures = [h.now + 1, h.now + 2, h.now + 3]
        h.now += 4
        await h.sync.check_vector()
        assert h.vector.calls[-1] == "stop"
        h.vector = FakeVector()
        h.sync = h.make_sync()
        await h.sync.start_from_disk()
        assert h.vector.calls == []

    async def test_nothing_starts_from_disk_for_an_agent_that_never_applied(
        self, h: Harness
    ) -> None:
        await h.sync.start_from_disk()
        assert h.vector.calls == []

    async def test_config_error_clears_when_a_moved_agent_applies_a_lower_version(
        self, h: Harness
    ) -> None:
        """Versions count per group: after a move, the new group's v4 supersedes the old
        group's rejected v12."""
        await h.poll(update(11, GOOD))
        await h.poll(update(12, BAD))
        assert h.sync.rejected is not None and h.sync.rejected.version == 12
        h.sync.book.set_applied(AppliedConfig())  # what the server's move does to `since`
        await h.poll(update(4, GOOD2))
        assert h.sync.applied.version == 4
        assert h.sync.rejected is None
        assert h.store.load_rejected() is None


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)
