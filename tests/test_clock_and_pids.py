"""The shared helpers: RFC 3339 time in and out, and whether a pid still runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import psutil
import pytest

from logpulse_agent.clock import parse_rfc3339, rfc3339, utc_now
from logpulse_agent.pids import pid_alive


class TestClock:
    def test_rfc3339_is_utc_whole_seconds_with_z(self) -> None:
        """Datetimes in any zone and Unix seconds print as UTC with a Z, no fraction."""
        cest = timezone(timedelta(hours=2))
        assert rfc3339(datetime(2026, 1, 1, 14, 0, 5, 999_999, tzinfo=cest)) == (
            "2026-01-01T12:00:05Z"
        )
        assert rfc3339(1_800_000_000.7) == "2027-01-15T08:00:00Z"

    def test_parsing_reads_z_offsets_and_naive_as_utc(self) -> None:
        """What rfc3339 writes reads back; a naive timestamp is taken as UTC; junk is None."""
        now = utc_now().replace(microsecond=0)
        assert parse_rfc3339(rfc3339(now)) == now
        assert parse_rfc3339("2026-01-01T12:00:00+02:00") == datetime(
            2026, 1, 1, 10, 0, tzinfo=timezone.utc
        )
        assert parse_rfc3339("2026-01-01T12:00:00") == datetime(
            2026, 1, 1, 12, 0, tzinfo=timezone.utc
        )
        for junk in ("", "yesterday", None, 5):
            assert parse_rfc3339(junk) is None


class TestPidAlive:
    def test_this_process_runs(self) -> None:
        """Our own pid is alive, with or without its create time."""
        me = psutil.Process().create_time()
        assert pid_alive(os.getpid()) and pid_alive(os.getpid(), me)

    def test_a_reused_pid_is_not_the_recorded_process(self) -> None:
        """A live pid whose create time differs from the recorded one is another process."""
        assert not pid_alive(os.getpid(), 12345.0)

    @pytest.mark.parametrize("pid", [None, "1", True, 0, -5, 1.5])
    def test_anything_but_a_positive_int_is_no_pid(self, pid: object) -> None:
        """Whatever a corrupt file held, it is never taken for a running process."""
        assert not pid_alive(pid)

    def test_an_exited_process_is_not_alive_even_as_a_zombie(self) -> None:
        """A child that exited but was not reaped yet no longer runs."""
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        try:
            deadline = time.monotonic() + 10
            while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert not pid_alive(child.pid)
        finally:
            child.wait()
        assert not pid_alive(child.pid)
