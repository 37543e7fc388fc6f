"""The root side of upgrade probation: systemd/logpulse-agent-probation, run as root.

Every decision is driven through the real script with an injected clock (uptime, boot id, wall
time in a file), a stand-in ``systemctl`` that records what it is asked and answers
``NRestarts``, and a host tree under a temporary root where ``nobody`` plays the agent user.
No test sleeps for a cadence: each ``check()`` is one step, as the timer would run it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.releases import REPO, UNIT_NAMES, world_traversable_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the watcher runs as root")

WATCHER = REPO / "systemd" / "logpulse-agent-probation"
NOBODY = 65534
OLD, NEW = "0.1.0", "0.2.0"
BOOT = "boot-one"
START = 1_800_000_000  # wall clock at the switch

SYSTEMCTL = """#!/bin/sh
echo "$*" >> "{fake}/calls"
case "$*" in
    *"show -p NRestarts --value"*) cat "{fake}/nrestarts" ;;
esac
exit 0
"""


class Host:
    """A host tree (opt, units, agent state and logs) and the knobs of the fake world."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.root = top / "root"
        self.opt = self.root / "opt/logpulse-agent"
        self.state = self.root / "var/lib/logpulse-agent"
        self.logs = self.root / "var/log/logpulse-agent"
        self.units = self.root / "etc/systemd/system"
        self.fake = top / "fake"
        for directory in (self.units, self.fake / "bin"):
            directory.mkdir(parents=True)
        for directory in (self.state, self.logs):
            directory.mkdir(parents=True, mode=0o750)
            os.chown(directory, NOBODY, NOBODY)
        for version in (OLD, NEW):
            units = self.opt / "versions" / version / "systemd"
            units.mkdir(parents=True)
            for name in UNIT_NAMES:
                (units / name).write_text(f"# {name} of {version}\n")
        (self.opt / "current").symlink_to(f"versions/{NEW}")
        (self.opt / "previous").symlink_to(f"versions/{OLD}")
        for name in UNIT_NAMES:
            (self.units / name).write_text(f"# {name} of {NEW}\n")
        systemctl = self.fake / "bin" / "systemctl"
        systemctl.write_text(SYSTEMCTL.format(fake=self.fake))
        systemctl.chmod(0o755)
        self.nrestarts(0)
        self.clock(1000, BOOT, START)

    # --- the fake world ---------------------------------------------------------------------

    def clock(self, uptime: int, boot: str, wall: int) -> None:
        (self.fake / "clock").write_text(f"{uptime} {boot} {wall}\n")

    def nrestarts(self, value: int) -> None:
        (self.fake / "nrestarts").write_text(f"{value}\n")

    def calls(self) -> list[str]:
        path = self.fake / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.fake / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
            "LOGPULSE_ROOT": str(self.root),
            "LOGPULSE_PROBATION_CLOCK": str(self.fake / "clock"),
            "LOGPULSE_PROBATION_TICK": "0.2",
        }
        return subprocess.run(
            ["sh", str(WATCHER), *args], env=env, capture_output=True, text=True, timeout=timeout
        )

    # --- the probation ----------------------------------------------------------------------

    def begin(
        self, seconds: int = 600, restarts: int = 5, mode: str = "systemd", pid: str = ""
    ) -> str:
        done = self.run(
            "begin", NEW, OLD, str(seconds), str(restarts), mode, str(NOBODY), str(NOBODY), pid
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return self.record()["id"]

    def check(self) -> subprocess.CompletedProcess[str]:
        done = self.run("check")
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def record(self) -> dict[str, str]:
        return dict(
            line.split("=", 1) for line in (self.opt / "probation").read_text().splitlines()
        )

    def told(self) -> dict[str, str]:
        """What the agent is told: upgrade-probation in its state directory."""
        return dict(
            line.split("=", 1)
            for line in (self.state / "upgrade-probation").read_text().splitlines()
        )

    def promote(self, text: str) -> None:
        """What the agent does: write upgrade-promoted as its own user."""
        marker = self.state / "upgrade-promoted"
        marker.write_text(text)
        os.chown(marker, NOBODY, NOBODY)

    def current(self) -> str:
        return os.readlink(self.opt / "current")

    def log(self) -> str:
        path = self.logs / "upgrade.log"
        return path.read_text() if path.exists() else ""

    def restarts_requested(self) -> int:
        return sum(call.endswith("restart logpulse-agent.service") for call in self.calls())


@pytest.fixture
def host() -> Iterator[Host]:
    top = world_traversable_dir("logpulse-probation-")
    try:
        yield Host(top)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def later(host: Host, seconds: int, *, boot: str = BOOT, uptime_base: int = 1000) -> None:
    host.clock(uptime_base + seconds, boot, START + seconds)


class TestBegin:
    def test_records_the_probation_for_root_and_tells_the_agent(self, host: Host) -> None:
        """begin writes root's record (root 0644) and the agent's view (the agent's file,
        state active, the window's end) and clears a promotion left from before."""
        host.promote(f"{NEW} an-old-probation-id\n")
        probation_id = host.begin(seconds=600)
        record = host.opt / "probation"
        st = record.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o644, 0)
        assert host.record()["version"] == NEW and host.record()["previous"] == OLD
        told = host.told()
        assert told == {
            "state": "active",
            "id": probation_id,
            "version": NEW,
            "previous": OLD,
            "until": str(START + 600),
            "reason": "",
        }
        assert (host.state / "upgrade-probation").stat().st_uid == NOBODY
        assert not (host.state / "upgrade-promoted").exists()

    @pytest.mark.parametrize(
        "args",
        [
            ("1.2.3; reboot", OLD, "600", "5", "systemd", "1", "1"),
            (NEW, OLD, "ten", "5", "systemd", "1", "1"),
            (NEW, OLD, "600", "5", "cron", "1", "1"),
            (NEW, OLD, "600"),
        ],
    )
    def test_refuses_arguments_that_are_not_a_probation(self, host: Host, args: tuple[str]) -> None:
        done = host.run("begin", *args)
        assert done.returncode == 2
        assert "error:" in done.stderr
        assert not (host.opt / "probation").exists()


class TestPromotion:
    def test_a_promoted_release_is_kept_when_the_window_ends(self, host: Host) -> None:
        """Promotion is recorded at once, but the release is kept only at the end of the window
        (a crash loop after the first heartbeat still counts until then); then the record goes,
        the agent is told 'promoted' and the timer stops. Nothing is switched or restarted."""
        probation_id = host.begin(seconds=600)
        later(host, 20)
        host.promote(f"{NEW} {probation_id}\n")
        host.check()
        assert host.record()["promoted"] == "1"
        assert host.told()["state"] == "active"
        later(host, 599)
        host.check()
        assert (host.opt / "probation").exists()
        later(host, 600)
        host.check()
        assert not (host.opt / "probation").exists()
        assert host.told()["state"] == "promoted"
        assert not (host.state / "upgrade-promoted").exists()
        assert host.current() == f"versions/{NEW}"
        assert host.restarts_requested() == 0
        assert "stop logpulse-agent-probation.timer" in " ".join(host.calls())
        assert f"logpulse-agent {NEW} promoted itself" in host.log()
        assert f"logpulse-agent {NEW} passed probation" in host.log()

    @pytest.mark.parametrize(
        "claim",
        ["wrong id", "other version", "stale id", "symlink to root's copy", "garbage"],
    )
    def test_only_this_probations_promotion_counts(self, host: Host, claim: str) -> None:
        """The agent can only promote this version in this probation: another id, another
        version, a leftover from an earlier probation, or a symlink to a root-only file holding
        the right words are no promotion, and the window ends in a rollback."""
        host.promote(f"{NEW} stale\n")  # removed by begin
        probation_id = host.begin(seconds=600)
        if claim == "wrong id":
            host.promote(f"{NEW} {probation_id}x\n")
        elif claim == "other version":
            host.promote(f"{OLD} {probation_id}\n")
        elif claim == "symlink to root's copy":
            secret = host.top / "root-only"
            secret.write_text(f"{NEW} {probation_id}\n")
            secret.chmod(0o600)
            (host.state / "upgrade-promoted").symlink_to(secret)
        elif claim == "garbage":
            host.promote("\x00" * 5000)
        later(host, 601)
        host.check()
        assert host.current() == f"versions/{OLD}"
        assert host.told()["state"] == "rolled-back"

    def test_a_fifo_for_a_promotion_cannot_stall_the_step(self, host: Host) -> None:
        """A FIFO where the promotion should be is given up on after a bounded wait."""
        host.begin(seconds=600)
        os.mkfifo(host.state / "upgrade-promoted")
        os.chown(host.state / "upgrade-promoted", NOBODY, NOBODY)
        later(host, 601)
        host.check()
        assert host.current() == f"versions/{OLD}"

    def test_what_the_agent_writes_into_its_own_view_decides_nothing(self, host: Host) -> None:
        """Rewriting upgrade-probation to say 'promoted' does not keep the release: root
        decides from its own record and the promotion alone."""
        probation_id = host.begin(seconds=600)
        view = host.state / "upgrade-probation"
        view.write_text(f"state=promoted\nid={probation_id}\nversion={NEW}\n")
        later(host, 601)
        host.check()
        assert host.current() == f"versions/{OLD}"
        assert host.told()["state"] == "rolled-back"


class TestWindow:
    def test_no_promotion_rolls_back_when_the_window_ends(self, host: Host) -> None:
        """At the end of the window without a promotion: current back to the previous release,
        its units back, daemon-reload, the agent restarted, the reason for the old agent."""
        host.begin(seconds=600)
        later(host, 300)
        host.check()
        assert host.current() == f"versions/{NEW}"
        later(host, 600)
        host.check()
        assert host.current() == f"versions/{OLD}"
        for name in UNIT_NAMES:
            assert (host.units / name).read_text() == f"# {name} of {OLD}\n"
        calls = host.calls()
        reload = calls.index("daemon-reload")
        assert calls.index("restart logpulse-agent.service") > reload
        told = host.told()
        assert told["state"] == "rolled-back"
        assert told["reason"] == "probation: no successful heartbeat within 600 s"
        assert not (host.opt / "probation").exists()
        assert f"rolling back {NEW} to {OLD}: probation: no successful heartbeat" in host.log()
        assert (host.logs / "upgrade.log").stat().st_uid == NOBODY

    def test_a_clock_jump_neither_ends_nor_stretches_the_window(self, host: Host) -> None:
        """The window counts uptime: the wall clock jumping a day ahead (NTP at boot on a host
        without an RTC) ends nothing; only time the host was up does."""
        host.begin(seconds=600)
        host.clock(1100, BOOT, START + 86400)
        host.check()
        assert host.current() == f"versions/{NEW}"
        assert host.record()["elapsed"] == "100"
        host.clock(1600, BOOT, START + 86400 + 500)
        host.check()
        assert host.current() == f"versions/{OLD}"

    def test_a_reboot_pauses_the_window(self, host: Host) -> None:
        """After a reboot (new boot id, uptime from 0) the window goes on where it was: the time
        the host was down does not count, the restart counter starts again from systemd's 0,
        and a promotion after the reboot keeps the release."""
        probation_id = host.begin(seconds=600)
        host.nrestarts(2)
        later(host, 200)
        host.check()
        assert host.record()["restarts"] == "2"
        # Down for an hour; back up with a new boot id, 15 s of uptime, counter reset.
        host.nrestarts(0)
        host.clock(15, "boot-two", START + 200 + 3600)
        host.check()
        record = host.record()
        assert (record["elapsed"], record["restarts"], record["boot_id"]) == (
            "200",
            "2",
            "boot-two",
        )
        assert "the host restarted during the probation" in host.log()
        host.promote(f"{NEW} {probation_id}\n")
        host.clock(15 + 399, "boot-two", START + 200 + 3600 + 399)
        host.check()
        assert host.current() == f"versions/{NEW}"
        assert (host.opt / "probation").exists()
        host.clock(15 + 400, "boot-two", START + 200 + 3600 + 400)
        host.check()
        assert host.told()["state"] == "promoted"
        assert host.current() == f"versions/{NEW}"

    def test_the_agent_is_told_the_new_end_after_a_reboot(self, host: Host) -> None:
        """'on probation until …' follows the pause: the agent's view gets the new end."""
        host.begin(seconds=600)
        later(host, 100)
        host.check()
        assert host.told()["until"] == str(START + 600)
        host.clock(10, "boot-two", START + 100 + 3600)
        host.check()
        assert host.told()["until"] == str(START + 100 + 3600 + 500)


class TestRestarts:
    def test_restarting_n_times_rolls_back_before_the_window_ends(self, host: Host) -> None:
        """Each automatic restart (systemd's NRestarts) counts, promoted or not; the fifth
        rolls back at once with the reason the old agent reports."""
        probation_id = host.begin(seconds=600, restarts=5)
        host.promote(f"{NEW} {probation_id}\n")
        for n in range(1, 5):
            host.nrestarts(n)
            later(host, 10 * n)
            host.check()
            assert host.current() == f"versions/{NEW}"
        host.nrestarts(5)
        later(host, 50)
        host.check()
        assert host.current() == f"versions/{OLD}"
        assert host.told()["reason"] == "probation: restarted 5 times"
        assert "restarted (4 of 5 allowed restarts)" in host.log()

    def test_a_manual_restart_resetting_the_counter_loses_no_restart(self, host: Host) -> None:
        """`systemctl restart` sets NRestarts back to 0: restarts after it add to those before."""
        host.nrestarts(7)  # the old agent's count, before the installer's restart
        host.begin(seconds=600, restarts=5)
        assert host.record()["nrestarts_seen"] == "7"
        host.nrestarts(3)  # reset by the installer's restart, then three crashes
        later(host, 30)
        host.check()
        assert host.record()["restarts"] == "3"
        host.nrestarts(0)  # an operator restarted it
        later(host, 40)
        host.check()
        host.nrestarts(2)
        later(host, 50)
        host.check()
        assert host.current() == f"versions/{OLD}"
        assert host.told()["reason"] == "probation: restarted 5 times"

    def test_an_agent_killed_once_is_still_kept(self, host: Host) -> None:
        """SIGKILLed during probation: one restart, the restarted agent promotes, the window
        ends with the release kept; no rollback, and later steps do nothing more."""
        probation_id = host.begin(seconds=600)
        host.nrestarts(1)
        later(host, 100)
        host.check()
        host.promote(f"{NEW} {probation_id}\n")
        later(host, 600)
        host.check()
        later(host, 700)
        host.check()
        assert host.current() == f"versions/{NEW}"
        assert host.told()["state"] == "promoted"
        assert host.restarts_requested() == 0
        assert "rolling back" not in host.log()


class TestRollbackIsIdempotent:
    def test_a_rollback_interrupted_half_way_resumes_once(self, host: Host) -> None:
        """Killed after switching current back but before the restart: the next step finishes
        the same rollback (never further back than the previous release), and the one after
        finds nothing to do."""
        host.begin(seconds=600)
        record = host.opt / "probation"
        text = record.read_text().replace("state=active", "state=rolling-back")
        record.write_text(text.replace("reason=\n", "reason=probation: restarted 5 times\n"))
        (host.opt / "current").unlink()
        (host.opt / "current").symlink_to(f"versions/{OLD}")
        later(host, 30)
        host.check()
        assert host.current() == f"versions/{OLD}"
        assert host.told()["reason"] == "probation: restarted 5 times"
        assert host.restarts_requested() == 1
        host.check()
        host.check()
        assert host.restarts_requested() == 1
        assert host.current() == f"versions/{OLD}"

    def test_the_installers_rollback_ends_the_probation_with_its_reason(self, host: Host) -> None:
        """A release that does not start: the installer rolls back through the watcher, which
        records its one-line reason for the old agent."""
        host.begin(seconds=600)
        done = host.run("rollback", "logpulse-agent 0.2.0 did not start\n(journalctl)")
        assert done.returncode == 0, done.stderr
        assert host.current() == f"versions/{OLD}"
        assert host.told()["reason"] == "logpulse-agent 0.2.0 did not start (journalctl)"
        assert not (host.opt / "probation").exists()
        host.check()
        assert host.restarts_requested() == 1

    def test_a_missing_previous_release_keeps_the_new_one_and_says_so(self, host: Host) -> None:
        host.begin(seconds=600)
        shutil.rmtree(host.opt / "versions" / OLD)
        later(host, 600)
        host.check()
        assert host.current() == f"versions/{NEW}"
        assert host.told()["state"] == "kept"
        assert f"the previous release {OLD} is gone" in host.told()["reason"]
        assert not (host.opt / "probation").exists()


class TestEdges:
    def test_a_release_switched_by_hand_ends_the_probation_quietly(self, host: Host) -> None:
        """An operator pointed current elsewhere: nothing is rolled back or restarted, the
        probation and the agent's view of it are gone."""
        host.begin(seconds=600)
        (host.opt / "current").unlink()
        (host.opt / "current").symlink_to(f"versions/{OLD}")
        host.check()
        assert not (host.opt / "probation").exists()
        assert not (host.state / "upgrade-probation").exists()
        assert host.restarts_requested() == 0

    def test_a_step_waits_while_the_installer_holds_its_lock(self, host: Host) -> None:
        """The installer holds $OPT/.install.lock while it runs: a step then does nothing."""
        host.begin(seconds=600)
        later(host, 601)
        with (host.opt / ".install.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            host.check()
            assert host.current() == f"versions/{NEW}"
        host.check()
        assert host.current() == f"versions/{OLD}"

    def test_a_record_that_is_not_one_is_removed(self, host: Host) -> None:
        (host.opt / "probation").write_text("version=$(reboot)\n")
        host.check()
        assert not (host.opt / "probation").exists()
        assert host.restarts_requested() == 0
        assert host.current() == f"versions/{NEW}"

    def test_no_probation_stops_the_timer(self, host: Host) -> None:
        host.check()
        assert "--no-block stop logpulse-agent-probation.timer" in host.calls()


# A stand-in `logpulse-agent run` (sh: the agent user cannot run this checkout's Python).
FAKE_DAEMON = """#!/bin/sh
trap 'exit 0' TERM
echo ready
while :; do sleep 0.1; done
"""


class TestWithoutSystemd:
    def test_the_detached_watcher_applies_the_same_rules(self, host: Host) -> None:
        """Without systemd the installer leaves `watch` running: restarts are new daemon pids
        in status.json (the first one, onto the new release, is not a failure); after N of them
        it rolls back, SIGTERMs the running agent for its supervisor, and exits."""
        script = host.top / "bin" / "logpulse-agent"
        script.parent.mkdir()
        script.write_text(FAKE_DAEMON)
        script.chmod(0o755)
        daemons: list[subprocess.Popen[str]] = []

        def start_daemon() -> subprocess.Popen[str]:
            proc = subprocess.Popen(
                [str(script), "run"],
                user=NOBODY,
                group=NOBODY,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            proc.stdout.close()
            status = host.state / "status.json"
            status.write_text(f'{{\n  "agentVersion": "x",\n  "pid": {proc.pid},\n  "z": 1\n}}\n')
            os.chown(status, NOBODY, NOBODY)
            daemons.append(proc)
            return proc

        try:
            old = start_daemon()
            host.begin(seconds=600, restarts=2, mode="detached", pid=str(old.pid))
            env_clock = host.fake / "clock"
            watch = subprocess.Popen(
                ["sh", str(WATCHER), "watch"],
                env={
                    "PATH": f"{host.fake / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
                    "LOGPULSE_ROOT": str(host.root),
                    "LOGPULSE_PROBATION_CLOCK": str(env_clock),
                    "LOGPULSE_PROBATION_TICK": "0.1",
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            old.terminate()  # what the installer does, for the supervisor to restart it
            old.wait(10)
            for _ in range(2):  # the restart onto the new release, then a crash
                start_daemon()
                wait_for_record(host, "last_pid", str(daemons[-1].pid))
                daemons[-1].kill()
                daemons[-1].wait(10)
            start_daemon()  # the second crash's restart: two restarts, the rollback
            watch.wait(30)
            assert host.current() == f"versions/{OLD}"
            assert host.told()["reason"] == "probation: restarted 2 times"
            last = daemons[-1]
            assert last.wait(10) == 0  # it got the SIGTERM
            assert host.calls() == []  # no systemctl without systemd
        finally:
            for proc in daemons:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)


def wait_for_record(host: Host, field: str, value: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = host.opt / "probation"
        if not record.exists():
            return
        try:
            if host.record().get(field) == value:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"the record never had {field}={value}")


def test_restart_signal_is_only_sent_to_the_agent_named_in_status(host: Host) -> None:
    """status.json is the agent's file: a pid there that is not a `logpulse-agent run` of the
    agent's user (here: a process of root) is never signalled by root's rollback."""
    victim = subprocess.Popen(["sleep", "60"])
    try:
        status = host.state / "status.json"
        status.write_text(f'{{\n  "pid": {victim.pid}\n}}\n')
        os.chown(status, NOBODY, NOBODY)
        host.begin(seconds=600, mode="detached", pid="")
        later(host, 601)
        host.check()
        assert host.current() == f"versions/{OLD}"
        assert victim.poll() is None
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
