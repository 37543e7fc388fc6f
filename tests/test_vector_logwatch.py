"""Reading vector.log: start and reload confirmations, and size-based rotation."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from logpulse_agent.errors import ReloadFailed, VectorError
from logpulse_agent.vector.logwatch import (
    LogFollower,
    LogLine,
    last_error,
    log_offset,
    parse_line,
    rotate_if_needed,
    wait_for_reload,
    wait_for_start,
)
from tests.standin import MINIMAL_CONFIG, install_standin

TS = "2026-01-01T00:00:00.000000Z"
STARTED = f'{TS}  INFO vector: Vector has started. debug="false" version="0.57.0"\n'
RELOADED = f'{TS}  INFO vector: Vector has reloaded. path=[File("/v.yaml", Some(Yaml))]\n'
GLOBAL = (
    f"{TS} ERROR vector::topology::running: Global options can't be changed while reloading "
    "config file; reload aborted. Please restart Vector to reload the configuration file.\n"
)
NOT_OK = f"{TS} ERROR vector::internal_events::process: Reload was not successful.\n"
CONFIG_ERROR = f"{TS} ERROR vector::cli: Configuration error. error=bad AGT_abcdefghijkl\n"
LOAD_ABORTED = (
    f"{TS} ERROR vector::internal_events::process: Failed to load config files, reload aborted.\n"
)


def append(path: Path, text: str) -> None:
    with open(path, "a") as handle:
        handle.write(text)


async def later(path: Path, text: str) -> None:
    """Append ``text`` once the waiter under test has had a chance to poll."""
    await asyncio.sleep(0)
    append(path, text)


async def waits(waiter: asyncio.Task[None]) -> None:
    """Let ``waiter`` poll the log a few times; it must still be waiting (it has not seen its
    line yet, so returning now would be returning without it)."""
    await asyncio.sleep(0.05)
    assert not waiter.done(), "returned before its line was in the log"


class TestParseLine:
    def test_text_format_lines(self) -> None:
        """Level, target and message (with fields) come out of tracing's text format."""
        assert parse_line(STARTED) == LogLine(
            "INFO", "vector", 'Vector has started. debug="false" version="0.57.0"'
        )
        assert parse_line(NOT_OK) == LogLine(
            "ERROR", "vector::internal_events::process", "Reload was not successful."
        )

    def test_spans_and_colours_are_skipped(self) -> None:
        """Span prefixes and ANSI colour codes do not hide the target and message."""
        line = (
            f'{TS} \x1b[32m INFO\x1b[0m source{{component_kind="source" component_id=in}}: '
            "vector::sources::file: Found new file to watch. file=/var/log/x\n"
        )
        parsed = parse_line(line)
        assert parsed is not None
        assert parsed.target == "vector::sources::file"
        assert parsed.message.startswith("Found new file to watch.")

    def test_json_format_lines(self) -> None:
        """--log-format json lines parse from their message and level."""
        line = '{"timestamp":"x","level":"INFO","target":"vector","message":"Vector has started."}'
        assert parse_line(line) == LogLine("INFO", "vector", "Vector has started.")

    def test_other_lines_are_ignored(self) -> None:
        """Anything that is not a Vector log line gives None."""
        for line in ("", '√ Loaded ["/x"]', "{not json", '{"level":"INFO"}', "panicked at x"):
            assert parse_line(line) is None


class TestFollower:
    def test_returns_only_complete_lines_after_the_offset(self, tmp_path: Path) -> None:
        """Lines before the offset and a trailing partial line are not returned."""
        log = tmp_path / "vector.log"
        log.write_text(STARTED)
        follower = LogFollower(log, log_offset(log))
        append(log, RELOADED + NOT_OK[:20])
        assert [line.message[:20] for line in follower.read()] == ["Vector has reloaded."]
        append(log, NOT_OK[20:])
        assert [line.message for line in follower.read()] == ["Reload was not successful."]

    def test_survives_truncation(self, tmp_path: Path) -> None:
        """After copy-then-truncate rotation the follower reads from the new start."""
        log = tmp_path / "vector.log"
        log.write_text(STARTED * 3)
        follower = LogFollower(log, log_offset(log))
        os.truncate(log, 0)
        append(log, RELOADED)
        assert [line.message[:20] for line in follower.read()] == ["Vector has reloaded."]

    def test_missing_file_has_offset_zero_and_no_lines(self, tmp_path: Path) -> None:
        """A log that does not exist yet is empty."""
        assert log_offset(tmp_path / "nope") == 0
        assert LogFollower(tmp_path / "nope", 0).read() == []

    def test_last_error_is_the_last_error_line_redacted(self, tmp_path: Path) -> None:
        """last_error() summarises the newest ERROR line, tokens masked."""
        log = tmp_path / "vector.log"
        log.write_text(NOT_OK + CONFIG_ERROR + STARTED)
        assert last_error(log, 0) == "Configuration error. error=bad AGT_***"
        assert last_error(log, log_offset(log)) is None


class TestWaitForStart:
    @pytest.mark.anyio
    async def test_returns_when_vector_has_started(self, tmp_path: Path) -> None:
        """It waits for the started line after the offset, and returns once it is there."""
        log = tmp_path / "vector.log"
        log.write_text(f"{TS}  INFO vector::app: Loading configs.\n")
        waiter = asyncio.create_task(wait_for_start(log, 0, timeout=5, poll=0.01))
        await waits(waiter)
        append(log, STARTED)
        await asyncio.wait_for(waiter, 5)

    @pytest.mark.anyio
    async def test_lines_before_the_offset_do_not_count(self, tmp_path: Path) -> None:
        """A started line from an earlier run does not confirm this one."""
        log = tmp_path / "vector.log"
        log.write_text(STARTED)
        with pytest.raises(VectorError, match=r"did not report a start within 0\.1s"):
            await wait_for_start(log, log_offset(log), timeout=0.1, poll=0.01)

    @pytest.mark.anyio
    async def test_raises_when_vector_dies_first(self, tmp_path: Path) -> None:
        """A dead Vector fails the wait at once, unless its started line is already there."""
        log = tmp_path / "vector.log"
        log.write_text("")
        with pytest.raises(VectorError, match="exited before it started"):
            await wait_for_start(log, 0, timeout=5, alive=lambda: False)
        append(log, STARTED)  # started, then died at once: still a start
        await wait_for_start(log, 0, timeout=5, alive=lambda: False)

    @pytest.mark.anyio
    async def test_confirms_a_real_json_logging_vector(self, tmp_path: Path) -> None:
        """The stand-in's JSON log format is understood too: the wait ends on its started
        record, while it runs."""
        log, config = tmp_path / "vector.log", tmp_path / "vector.yaml"
        config.write_text(MINIMAL_CONFIG)
        log.write_text("")
        vector = install_standin(tmp_path / "bin")
        procs: list[subprocess.Popen[bytes]] = []

        def alive() -> bool:
            return not procs or procs[0].poll() is None

        waiter = asyncio.create_task(wait_for_start(log, 0, timeout=15, alive=alive))
        await waits(waiter)
        with open(log, "ab") as out:
            procs.append(
                subprocess.Popen(
                    [str(vector), "--log-format", "json", "--config-yaml", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                )
            )
        try:
            await asyncio.wait_for(waiter, 20)
            assert procs[0].poll() is None
            started = [parse_line(line) for line in log.read_text().splitlines()]
            assert LogLine("INFO", "vector", "Vector has started.") in started
        finally:
            procs[0].terminate()
            procs[0].wait()


class TestWaitForReload:
    @pytest.mark.anyio
    async def test_returns_when_vector_has_reloaded(self, tmp_path: Path) -> None:
        """It waits for "Vector has reloaded." after the offset (an earlier one does not
        count), and returns once it is there."""
        log = tmp_path / "vector.log"
        log.write_text(RELOADED)  # an earlier reload, before the offset
        waiter = asyncio.create_task(wait_for_reload(log, log_offset(log), timeout=5, poll=0.01))
        await waits(waiter)
        append(log, RELOADED)
        await asyncio.wait_for(waiter, 5)

    @pytest.mark.anyio
    async def test_global_option_change_fails_with_vectors_reason(self, tmp_path: Path) -> None:
        """ "Reload was not successful." fails the reload, naming the first error before it."""
        log = tmp_path / "vector.log"
        log.write_text("")
        with pytest.raises(ReloadFailed) as failure:
            await asyncio.gather(wait_for_reload(log, 0, 5, 0.01), later(log, GLOBAL + NOT_OK))
        assert str(failure.value).startswith(
            "Vector rejected the reload: Global options can't be changed while reloading"
        )

    @pytest.mark.anyio
    async def test_load_failure_fails_with_the_configuration_error(self, tmp_path: Path) -> None:
        """ "…reload aborted." fails the reload; the message is redacted."""
        log = tmp_path / "vector.log"
        log.write_text(CONFIG_ERROR + LOAD_ABORTED)
        with pytest.raises(ReloadFailed) as failure:
            await wait_for_reload(log, 0, timeout=5)
        assert str(failure.value) == (
            "Vector rejected the reload: Configuration error. error=bad AGT_***"
        )

    @pytest.mark.anyio
    async def test_rate_limiter_notices_count_as_the_message(self, tmp_path: Path) -> None:
        """ "Internal log [X] is being suppressed…" confirms X, for success and failure alike."""
        notice = "Internal log [{}] is being suppressed to avoid flooding."
        log = tmp_path / "vector.log"
        log.write_text(f"{TS}  INFO vector: " + notice.format("Vector has started.") + "\n")
        with pytest.raises(ReloadFailed, match="did not confirm the reload"):
            await wait_for_reload(log, 0, timeout=0.1, poll=0.01)  # another message's notice
        offset = log_offset(log)
        append(log, f"{TS}  INFO vector: " + notice.format("Vector has reloaded.") + "\n")
        await wait_for_reload(log, offset, timeout=5)  # returns: the notice confirms it
        offset = log_offset(log)
        append(log, f"{TS} ERROR vector::x: " + notice.format("Reload was not successful.") + "\n")
        with pytest.raises(ReloadFailed, match="Vector rejected the reload"):
            await wait_for_reload(log, offset, timeout=5)

    @pytest.mark.anyio
    async def test_silence_and_death_fail_the_reload(self, tmp_path: Path) -> None:
        """No confirmation within the timeout, or a dead Vector, is a failed reload."""
        log = tmp_path / "vector.log"
        log.write_text("")
        with pytest.raises(ReloadFailed, match=r"did not confirm the reload within 0\.1s"):
            await wait_for_reload(log, 0, timeout=0.1, poll=0.01)
        append(log, CONFIG_ERROR)
        with pytest.raises(ReloadFailed, match="exited during the reload: Configuration error"):
            await wait_for_reload(log, 0, timeout=5, alive=lambda: False)


class TestRotation:
    def test_small_files_are_left_alone(self, tmp_path: Path) -> None:
        """Below the limit nothing happens."""
        log = tmp_path / "vector.log"
        log.write_text("x" * 10)
        assert not rotate_if_needed(log, max_bytes=10)
        assert not rotate_if_needed(tmp_path / "missing.log", max_bytes=10)
        assert log.read_text() == "x" * 10

    def test_rotates_by_copy_then_truncate_keeping_n_files(self, tmp_path: Path) -> None:
        """Over the limit, .1 gets the content, older ones shift, the oldest goes."""
        log = tmp_path / "vector.log"
        for generation in "abcd":
            log.write_text(generation * 20)
            assert rotate_if_needed(log, max_bytes=10, keep=3)
        assert log.read_text() == ""
        assert [(tmp_path / f"vector.log.{i}").read_text()[0] for i in (1, 2, 3)] == ["d", "c", "b"]
        assert not (tmp_path / "vector.log.4").exists()

    def test_an_append_writer_continues_into_the_emptied_file(self, tmp_path: Path) -> None:
        """Vector's O_APPEND descriptor writes at the new end after the truncate."""
        log = tmp_path / "vector.log"
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, b"before rotation\n" * 4)
            assert rotate_if_needed(log, max_bytes=10)
            os.write(fd, b"after\n")
        finally:
            os.close(fd)
        assert log.read_bytes() == b"after\n"
        assert (tmp_path / "vector.log.1").read_bytes() == b"before rotation\n" * 4
