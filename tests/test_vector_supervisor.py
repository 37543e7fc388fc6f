"""The Vector supervisor, driving real stand-in Vector processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from structlog.testing import capture_logs

from logpulse_agent.errors import ReloadFailed, VectorError
from logpulse_agent.vector import process
from logpulse_agent.vector.states import ExitRecord, VectorState
from logpulse_agent.vector.supervisor import VectorSupervisor
from tests.standin import (
    MINIMAL_CONFIG,
    Lines,
    events_named,
    install_standin,
    wait_until_async,
)


class World:
    """A temporary host: the stand-in binary, the two config files, log, pid file, events."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.vector = install_standin(root / "bin")
        self.data_dir = root / "data"
        self.data_dir.mkdir()
        self.options = root / "options.yaml"
        self.options.write_text(f"data_dir: {self.data_dir}\n")
        self.config = root / "vector.yaml"
        self.write(MINIMAL_CONFIG)
        self.log = root / "log" / "vector.log"
        self.pid_file = root / "vector.pid"
        self.events = root / "events.jsonl"

    def write(self, text: str) -> None:
        """Swap the live config by rename, as config sync does."""
        tmp = self.root / "vector.next.yaml"
        tmp.write_text(text)
        os.replace(tmp, self.config)

    def supervisor(self, **overrides: Any) -> VectorSupervisor:
        settings: dict[str, Any] = {
            "vector_bin": str(self.vector),
            "config_paths": [self.options, self.config],
            "log_path": self.log,
            "pid_path": self.pid_file,
            "env": {**os.environ, "STANDIN_EVENTS": str(self.events)},
            "grace_period": 10.0,
            "backoff_initial": 0.05,
            "backoff_max": 0.2,
            "stable_after": 30.0,
            "start_timeout": 15.0,
            "rng": random.Random(7),
        }
        return VectorSupervisor(**{**settings, **overrides})

    def count(self, name: str) -> int:
        return len(events_named(self.events, name))

    def our_vectors(self) -> list[int]:
        """Live (non-zombie) processes running on our config paths."""
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmdline = proc.info["cmdline"] or []
            if proc.info["status"] != psutil.STATUS_ZOMBIE and process.has_config_args(
                cmdline, [self.options, self.config]
            ):
                found.append(proc.pid)
        return found


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    for pid in world.our_vectors():  # a failed test must not leak a Vector
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def supervising(supervisor: VectorSupervisor) -> AsyncIterator[asyncio.Task[None]]:
    """Run the supervision task for the block; always stop Vector afterwards."""
    task = asyncio.create_task(supervisor.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await supervisor.stop()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class TestObserver:
    @pytest.mark.anyio
    async def test_a_failing_state_observer_never_orphans_vector(self, world: World) -> None:
        """The daemon's observer writes status.json; when that fails (full disk) on the way to
        RUNNING, supervision goes on: one Vector, stopped by stop()."""
        sup = world.supervisor()

        def observer(state: VectorState) -> None:
            if state is VectorState.RUNNING:
                raise OSError(28, "No space left on device")

        sup.on_state = observer
        async with supervising(sup):
            with capture_logs() as logs:
                await sup.start()
            await asyncio.sleep(0.5)  # time for a wrongly respawned second Vector to appear
            assert len(world.our_vectors()) == 1
            assert any(e["event"] == "vector.on_state_failed" for e in logs)
        assert world.our_vectors() == []


class TestStartStop:
    @pytest.mark.anyio
    async def test_start_returns_once_vector_reported_started(self, world: World) -> None:
        """start() returns RUNNING with a live pid, recorded in the pid file."""
        sup = world.supervisor()
        try:
            await sup.start()
            assert sup.state is VectorState.RUNNING and sup.should_run
            assert sup.pid is not None and not gone(sup.pid)
            record = process.read_pid_file(world.pid_file)
            assert record is not None and record.pid == sup.pid
            assert world.count("started") == 1
            assert sup.uptime() > 0
        finally:
            await sup.stop()

    @pytest.mark.anyio
    async def test_vector_runs_detached_with_stdin_devnull_and_output_in_the_log(
        self, world: World
    ) -> None:
        """Own session, stdin from /dev/null, stdout and stderr appended to vector.log."""
        sup = world.supervisor()
        try:
            await sup.start()
            assert sup.pid is not None
            assert os.getsid(sup.pid) == sup.pid
            assert os.readlink(f"/proc/{sup.pid}/fd/0") == "/dev/null"
            assert os.readlink(f"/proc/{sup.pid}/fd/1") == str(world.log)
            assert os.readlink(f"/proc/{sup.pid}/fd/2") == str(world.log)
            assert "Vector has started." in world.log.read_text()
        finally:
            await sup.stop()

    @pytest.mark.anyio
    async def test_stop_is_graceful_reaps_and_removes_the_pid_file(self, world: World) -> None:
        """stop() sends SIGTERM, Vector exits 0, the exit is requested, the pid file goes."""
        sup = world.supervisor()
        await sup.start()
        pid = sup.pid
        assert pid is not None
        with capture_logs() as logs:
            await sup.stop()
            await sup.stop()  # idempotent
        assert sup.state is VectorState.STOPPED and not sup.should_run
        assert sup.pid is None and sup.uptime() == 0.0
        assert not psutil.pid_exists(pid)
        assert sup.exits == [ExitRecord(sup.exits[0].at, 0, sup.exits[0].uptime, True)]
        assert not world.pid_file.exists()
        assert events_named(world.events, "stopped")[0]["signal"] == "SIGTERM"
        assert [e["event"] for e in logs] == ["vector.stopping", "vector.stopped"]

    @pytest.mark.anyio
    async def test_concurrent_starts_spawn_one_vector(self, world: World) -> None:
        """Two start() calls at once leave exactly one Vector running."""
        sup = world.supervisor()
        try:
            await asyncio.gather(sup.start(), sup.start())
            assert world.count("started") == 1
            assert len(world.our_vectors()) == 1
        finally:
            await sup.stop()

    @pytest.mark.anyio
    async def test_start_up_failure_raises_with_the_reason(self, world: World) -> None:
        """A Vector that exits 78 before starting fails start() with its error line."""
        world.write("# standin: fail-start\n" + MINIMAL_CONFIG)
        sup = world.supervisor()
        with pytest.raises(VectorError, match="exited with code 78 before it started: "):
            await sup.start()
        assert sup.state is VectorState.BACKOFF
        assert sup.exits[-1].failure and sup.exits[-1].returncode == 78
        assert sup.last_error is not None and "Configuration error." in sup.last_error
        await sup.stop()

    @pytest.mark.anyio
    async def test_missing_binary_is_fatal_and_retried_until_it_appears(self, world: World) -> None:
        """FATAL when the binary cannot be executed; run() retries at the ceiling."""
        missing = world.root / "later" / "vector"
        sup = world.supervisor(vector_bin=str(missing), backoff_max=0.05)
        with pytest.raises(VectorError, match="cannot execute"):
            await sup.start()
        assert sup.state is VectorState.FATAL
        async with supervising(sup):
            install_standin(missing.parent)
            await wait_until_async(lambda: sup.state is VectorState.RUNNING, what="recovery")


class TestRestarts:
    @pytest.mark.anyio
    async def test_unrequested_exit_0_is_restarted_with_backoff(self, world: World) -> None:
        """Exit code 0 without a request is a failure; restarts back off 1, 2, 3…"""
        world.write("# standin: exit-after=0.2\n" + MINIMAL_CONFIG)
        sup = world.supervisor()
        since = time.monotonic()
        with capture_logs() as logs:
            async with supervising(sup):
                await sup.start()
                await wait_until_async(lambda: world.count("started") >= 3, what="3 starts")
        failures = [record for record in sup.exits if not record.requested]
        assert len(failures) >= 2 and all(record.returncode == 0 for record in failures)
        assert sup.recent_failures(since) == len(failures)
        restarts = [e for e in logs if e["event"] == "vector.restarting"]
        assert [e["attempt"] for e in restarts[:2]] == [1, 2]
        assert all(0 < e["delay"] <= 0.2 for e in restarts)

    @pytest.mark.anyio
    async def test_stable_uptime_resets_the_backoff(self, world: World) -> None:
        """Runs longer than stable_after restart at attempt 1 every time."""
        world.write("# standin: exit-after=0.2\n" + MINIMAL_CONFIG)
        sup = world.supervisor(stable_after=0.1)
        with capture_logs() as logs:
            async with supervising(sup):
                await sup.start()
                await wait_until_async(lambda: world.count("started") >= 3, what="3 starts")
        assert {e["attempt"] for e in logs if e["event"] == "vector.restarting"} == {1}

    @pytest.mark.anyio
    async def test_crash_right_after_start_counts_as_a_failure(self, world: World) -> None:
        """A Vector that started and crashed (exit 0) is restarted and counted."""
        world.write("# standin: crash-on-start\n" + MINIMAL_CONFIG)
        sup = world.supervisor()
        async with supervising(sup):
            await sup.start()
            await wait_until_async(lambda: sup.recent_failures(0) >= 2, what="2 crashes")
        assert world.count("crashed") >= 2

    @pytest.mark.anyio
    async def test_stopped_vector_is_not_restarted(self, world: World) -> None:
        """After stop() the supervision task leaves Vector down."""
        sup = world.supervisor()
        async with supervising(sup):
            await sup.start()
            await sup.stop()
            await asyncio.sleep(0.3)  # several backoff periods: nothing may happen
            assert sup.state is VectorState.STOPPED and world.count("started") == 1


class TestStopEscalation:
    @pytest.mark.anyio
    async def test_kills_vector_that_ignores_sigterm_after_the_grace_period(
        self, world: World
    ) -> None:
        """A child ignoring SIGTERM is killed after the grace period and reaped."""
        world.write("# standin: hang-on-sigterm\n" + MINIMAL_CONFIG)
        sup = world.supervisor(grace_period=0.5)
        await sup.start()
        pid = sup.pid
        assert pid is not None
        began = time.monotonic()
        with capture_logs() as logs:
            await sup.stop()
        assert time.monotonic() - began >= 0.5
        assert sup.exits[-1].returncode == -signal.SIGKILL and sup.exits[-1].requested
        assert "vector.killed" in [e["event"] for e in logs]
        assert not psutil.pid_exists(pid)


class TestCancellation:
    @pytest.mark.anyio
    async def test_cancellation_doesnt_orphan_vector(self, world: World) -> None:
        """Cancelling run() stops and reaps Vector before the cancellation propagates."""
        sup = world.supervisor()
        task = asyncio.create_task(sup.run())
        await sup.start()
        pid = sup.pid
        assert pid is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not psutil.pid_exists(pid)
        assert sup.state is VectorState.STOPPED and world.count("stopped") == 1

    @pytest.mark.anyio
    async def test_cancelled_stop_still_reaps_vector(self, world: World) -> None:
        """A stop() cancelled half-way finishes its job before the cancellation is raised."""
        world.write("# standin: hang-on-sigterm\n" + MINIMAL_CONFIG)
        sup = world.supervisor(grace_period=0.3)
        await sup.start()
        pid = sup.pid
        assert pid is not None
        stopping = asyncio.create_task(sup.stop())
        await wait_until_async(lambda: sup.state is VectorState.STOPPING, what="STOPPING")
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping
        assert not psutil.pid_exists(pid)


class TestReload:
    @pytest.mark.anyio
    async def test_reload_is_confirmed_from_vectors_log(self, world: World) -> None:
        """SIGHUP, then "Vector has reloaded.": the new content runs in the same process."""
        sup = world.supervisor()
        try:
            await sup.start()
            pid = sup.pid
            world.write(MINIMAL_CONFIG.replace("in:", "fresh:").replace("[in]", "[fresh]"))
            with capture_logs() as logs:
                await sup.reload(timeout=15)
            assert sup.pid == pid
            assert events_named(world.events, "reloaded")[-1]["sources"] == ["fresh"]
            assert [e["event"] for e in logs] == ["vector.reloaded"]
        finally:
            await sup.stop()

    @pytest.mark.anyio
    async def test_back_to_back_reloads_are_all_confirmed(self, world: World) -> None:
        """Vector runs with a 1 s log rate limit and SIGHUPs are spaced beyond it."""
        sup = world.supervisor()
        try:
            await sup.start()
            assert sup.pid is not None
            cmdline = psutil.Process(sup.pid).cmdline()
            assert "--internal-log-rate-limit" in cmdline
            for source in ("a", "b", "c"):
                world.write(
                    MINIMAL_CONFIG.replace("in:", f"{source}:").replace("[in]", f"[{source}]")
                )
                await sup.reload(timeout=15)
            assert [e["sources"] for e in events_named(world.events, "reloaded")] == [
                ["a"],
                ["b"],
                ["c"],
            ]
        finally:
            await sup.stop()

    @pytest.mark.anyio
    async def test_failed_reload_raises_and_the_old_config_keeps_running(
        self, world: World
    ) -> None:
        """A file that does not load is refused; Vector keeps running the old pipeline."""
        sup = world.supervisor()
        try:
            await sup.start()
            pid = sup.pid
            world.write("sources: [\n")
            with pytest.raises(ReloadFailed, match="Vector rejected the reload: Configuration"):
                await sup.reload(timeout=15)
            assert sup.pid == pid and sup.state is VectorState.RUNNING
            assert world.count("reloaded") == 0 and world.count("reload_failed") == 1
        finally:
            await sup.stop()

    @pytest.mark.anyio
    async def test_changed_global_option_fails_the_reload(self, world: World) -> None:
        """A data_dir change by SIGHUP is refused the way Vector refuses it."""
        sup = world.supervisor()
        try:
            await sup.start()
            world.write(MINIMAL_CONFIG + "acknowledgements: true\n")
            with pytest.raises(ReloadFailed, match="Global options can't be changed"):
                await sup.reload(timeout=15)
            await sup.restart()  # what config sync does instead
            assert events_named(world.events, "started")[-1]["switches"] == {}
            assert world.count("started") == 2 and len(world.our_vectors()) == 1
        finally:
            await sup.stop()

    @pytest.mark.anyio
    async def test_reload_starts_vector_when_it_is_not_running(self, world: World) -> None:
        """reload() on a stopped or crashed Vector starts it on the new files."""
        sup = world.supervisor()
        try:
            await sup.reload(timeout=15)
            assert sup.state is VectorState.RUNNING and world.count("started") == 1
        finally:
            await sup.stop()


AGENT = """\
import asyncio, os, sys
from pathlib import Path
import structlog
from logpulse_agent.vector.supervisor import VectorSupervisor

structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

async def main() -> None:
    vector, options, config, log, pid = sys.argv[1:]
    sup = VectorSupervisor(vector_bin=vector, config_paths=[Path(options), Path(config)],
                           log_path=Path(log), pid_path=Path(pid), env=dict(os.environ))
    await sup.start()
    print(sup.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


class TestStaleVector:
    def spawn_agent(self, world: World) -> tuple[subprocess.Popen[bytes], int]:
        args = [world.vector, world.options, world.config, world.log, world.pid_file]
        agent = subprocess.Popen(
            [sys.executable, "-c", AGENT, *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        line = Lines(agent).until("", timeout=30)[-1]
        assert agent.stdout is not None
        agent.stdout.close()
        return agent, int(line)

    @pytest.mark.anyio
    async def test_vector_of_a_killed_agent_is_stopped_never_duplicated(self, world: World) -> None:
        """After the agent is SIGKILLed its Vector is found, stopped, and one runs after start."""
        agent, stale_pid = self.spawn_agent(world)
        agent.kill()
        agent.wait()
        assert not gone(stale_pid)  # Vector survived its agent
        sup = world.supervisor(grace_period=5)
        try:
            with capture_logs() as logs:
                assert await sup.clean_stale() == 1
            assert gone(stale_pid)
            assert [e["pid"] for e in logs if e["event"] == "vector.stale_found"] == [stale_pid]
            assert not world.pid_file.exists()
            await sup.start()
            assert world.our_vectors() == [sup.pid]
        finally:
            await sup.stop()

    @pytest.mark.anyio
    async def test_vector_missing_from_the_pid_file_is_found_by_its_marker(
        self, world: World
    ) -> None:
        """A Vector spawned just before the agent died, not yet in the pid file, is found."""
        env = {**os.environ, process.MARKER_ENV: str(world.pid_file)}
        env["STANDIN_EVENTS"] = str(world.events)
        args = process.vector_args(str(world.vector), [world.options, world.config])
        stale = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            sup = world.supervisor(grace_period=5)
            await wait_until_async(lambda: world.count("started") == 1, what="stale Vector")
            assert await sup.clean_stale() == 1
            assert stale.wait(timeout=10) == 0  # stopped gracefully by SIGTERM
        finally:
            stale.kill()
            stale.wait()

    @pytest.mark.anyio
    async def test_unrelated_process_reusing_the_pid_is_left_alone(self, world: World) -> None:
        """A pid file naming an unrelated process (pid reuse) never gets it killed."""
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            created = psutil.Process(sleeper.pid).create_time()
            world.pid_file.write_text(f'{{"pid": {sleeper.pid}, "create_time": {created}}}')
            assert await world.supervisor().clean_stale() == 0
            assert sleeper.poll() is None
            assert not world.pid_file.exists()  # the stale record itself is dropped
        finally:
            sleeper.kill()
            sleeper.wait()

    @pytest.mark.anyio
    async def test_process_with_our_paths_but_not_our_vector_is_left_alone(
        self, world: World
    ) -> None:
        """Matching config arguments alone are not enough: binary, marker or record must match."""
        args = ["--config-yaml", str(world.options), "--config-yaml", str(world.config)]
        env = {k: v for k, v in os.environ.items() if k != process.MARKER_ENV}
        impostor = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)", *args], env=env
        )
        try:
            await wait_until_async(lambda: impostor.pid in world.our_vectors(), what="impostor")
            assert await world.supervisor().clean_stale() == 0
            assert impostor.poll() is None
        finally:
            impostor.kill()
            impostor.wait()
