"""The agent's side of upgrade probation: root's view, the promotion, the held result, status."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.cli import main
from logpulse_agent.controlplane.protocol import Heartbeat, HeartbeatReply
from logpulse_agent.daemon.compose import promotion
from logpulse_agent.errors import TransientError
from logpulse_agent.heartbeat.body import HeartbeatSnapshot
from logpulse_agent.heartbeat.loop import HeartbeatLoop
from logpulse_agent.settings import Settings
from logpulse_agent.state.layout import Layout
from logpulse_agent.status.report import render_text
from logpulse_agent.status.sections import AgentStatus, ConfigStatus, VectorStatus
from logpulse_agent.status.tracker import StatusTracker
from logpulse_agent.upgrade import probation
from logpulse_agent.upgrade.probation import (
    ProbationView,
    Promoter,
    parse_view,
    read_view,
    should_promote,
    status_line,
)
from logpulse_agent.upgrade.record import InFlightUpgrade
from logpulse_agent.upgrade.upgrader import Upgrader
from logpulse_agent.upgrade.verdict import (
    UPGRADE_UNIT,
    WAIT,
    Limits,
    Observation,
    Outcome,
    Verdict,
    verdict,
)

OLD, NEW = "0.1.0", "0.2.0"
UNTIL = 1_800_000_600  # 2027-01-15T08:10:00Z
VIEW = f"state=active\nid=3f2a-77\nversion={NEW}\nprevious={OLD}\nuntil={UNTIL}\nreason=\n"


def view(**changes: object) -> ProbationView:
    fields = {
        "state": "active",
        "probation_id": "3f2a-77",
        "version": NEW,
        "previous": OLD,
        "until": UNTIL,
        "reason": "",
    }
    fields.update(changes)
    return ProbationView(**fields)  # type: ignore[arg-type]


def tell(state_dir: Path, text: str) -> None:
    """What root does: write upgrade-probation into the agent's state directory."""
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "upgrade-probation").write_text(text)


def promoter(state_dir: Path, version: str = NEW) -> Promoter:
    return Promoter(state_dir / "upgrade-probation", state_dir / "upgrade-promoted", version)


class TestParseView:
    def test_reads_what_root_writes(self) -> None:
        assert parse_view(VIEW) == view()

    def test_a_rolled_back_view_carries_its_reason_on_one_line(self) -> None:
        text = VIEW.replace("state=active", "state=rolled-back").replace(
            "reason=\n", "reason=probation:   restarted\t5 times\n"
        )
        parsed = parse_view(text)
        assert parsed is not None and parsed.reason == "probation: restarted 5 times"

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "garbage",
            VIEW.replace("state=active", "state=sure"),
            VIEW.replace(f"version={NEW}", "version=$(reboot)"),
            VIEW.replace(f"previous={OLD}", "previous=v0.1.0"),
            VIEW.replace("id=3f2a-77", "id="),
            VIEW.replace("id=3f2a-77", "id=a b"),
            VIEW.replace(f"version={NEW}\n", ""),
        ],
    )
    def test_anything_else_is_no_view(self, text: str) -> None:
        """Unknown states, versions that are not versions, a missing field: no view at all."""
        assert parse_view(text) is None

    def test_unknown_keys_and_a_bad_until_do_not_hide_the_view(self) -> None:
        parsed = parse_view(VIEW.replace(f"until={UNTIL}", "until=soon") + "future=1\n")
        assert parsed is not None and parsed.until is None and parsed.version == NEW

    def test_a_missing_or_oversized_file_is_no_view(self, tmp_path: Path) -> None:
        assert read_view(tmp_path / "upgrade-probation") is None
        tell(tmp_path, VIEW + "x" * probation.MAX_VIEW_BYTES)
        assert read_view(tmp_path / "upgrade-probation") is None


class TestShouldPromote:
    @pytest.mark.parametrize(
        ("the_view", "running", "vector_running", "config_empty", "expected"),
        [
            (view(), NEW, True, False, True),
            (view(), f"v{NEW}", True, False, True),
            (view(), NEW, False, True, True),  # `{}`: Vector is stopped on purpose
            (view(), NEW, False, False, False),  # Vector should run and does not
            (view(), OLD, True, False, False),  # the old agent, before its restart
            (view(state="promoted"), NEW, True, False, False),
            (view(state="rolled-back"), NEW, True, False, False),
            (None, NEW, True, False, False),
        ],
    )
    def test_only_the_release_on_probation_with_vector_running(
        self,
        the_view: ProbationView | None,
        running: str,
        vector_running: bool,
        config_empty: bool,
        expected: bool,
    ) -> None:
        got = should_promote(
            the_view, running, vector_running=vector_running, config_empty=config_empty
        )
        assert got is expected


class TestPromoter:
    def test_writes_version_and_id_once(self, tmp_path: Path) -> None:
        """The first qualifying heartbeat writes 'VERSION ID' (0640); later ones change
        nothing (the file is not rewritten)."""
        tell(tmp_path, VIEW)
        promotes = promoter(tmp_path)
        assert promotes.after_heartbeat(vector_running=True, config_empty=False) is True
        marker = tmp_path / "upgrade-promoted"
        assert marker.read_text() == f"{NEW} 3f2a-77\n"
        assert marker.stat().st_mode & 0o777 == 0o640
        inode = marker.stat().st_ino
        assert promotes.after_heartbeat(vector_running=True, config_empty=False) is False
        assert marker.stat().st_ino == inode

    def test_nothing_without_vector_running(self, tmp_path: Path) -> None:
        tell(tmp_path, VIEW)
        assert promoter(tmp_path).after_heartbeat(vector_running=False, config_empty=False) is False
        assert not (tmp_path / "upgrade-promoted").exists()

    def test_a_new_probation_of_the_same_version_is_promoted_again(self, tmp_path: Path) -> None:
        """The id binds a promotion to one probation: after a rollback and a second try of the
        same version, the old line promotes nothing and a new one is written."""
        tell(tmp_path, VIEW)
        promotes = promoter(tmp_path)
        promotes.after_heartbeat(vector_running=True, config_empty=False)
        tell(tmp_path, VIEW.replace("id=3f2a-77", "id=9c1d-02"))
        assert promotes.after_heartbeat(vector_running=True, config_empty=False) is True
        assert (tmp_path / "upgrade-promoted").read_text() == f"{NEW} 9c1d-02\n"

    def test_an_unwritable_state_dir_is_logged_not_raised(self, tmp_path: Path) -> None:
        tell(tmp_path, VIEW)
        (tmp_path / "upgrade-promoted").mkdir()  # a directory where the file should be
        assert promoter(tmp_path).after_heartbeat(vector_running=True, config_empty=False) is False


LIMITS = Limits(
    max_age=timedelta(minutes=30), pickup_timeout=timedelta(minutes=2), settle=timedelta(0)
)


def observed(the_view: ProbationView | None, running: str) -> Observation:
    """An upgrade OLD → NEW whose installer is gone, seen by an agent running ``running``."""
    record = InFlightUpgrade("act-7", OLD, NEW, "2026-12-01T00:00:00Z", unit=UPGRADE_UNIT)
    return Observation(
        record=record,
        running_version=running,
        age=timedelta(minutes=5),
        exit_status=None,
        installer_alive=False,
        unclaimed=False,
        gone_for=timedelta(minutes=5),
        request_path=Path("/var/lib/logpulse-agent/upgrade-request"),
        probation=the_view,
    )


class TestVerdict:
    @pytest.mark.parametrize(
        ("the_view", "running", "expected"),
        [
            (None, NEW, Verdict(Outcome.DONE)),
            (view(), NEW, WAIT),  # on probation: done waits for root
            (view(state="promoted"), NEW, Verdict(Outcome.DONE)),  # kept
            (view(state="rolled-back", reason="probation: restarted 5 times"), NEW, WAIT),
            (
                view(state="rolled-back", reason="probation: restarted 5 times"),
                OLD,
                Verdict(
                    Outcome.FAILED,
                    f"probation: restarted 5 times; rolled back from {NEW} to {OLD}",
                ),
            ),
            (
                view(state="kept", reason="probation: x; 0.2.0 was kept"),
                NEW,
                Verdict(Outcome.FAILED, "probation: x; 0.2.0 was kept"),
            ),
            # Another version's probation says nothing about this upgrade.
            (view(version="0.3.0"), NEW, Verdict(Outcome.DONE)),
            (
                view(version="0.3.0", state="rolled-back"),
                OLD,
                Verdict(
                    Outcome.FAILED, f"upgrade to {NEW} did not take effect: agent still runs {OLD}"
                ),
            ),
        ],
    )
    def test_root_decides_before_the_running_version_does(
        self, the_view: ProbationView | None, running: str, expected: Verdict
    ) -> None:
        assert verdict(observed(the_view, running), LIMITS) == expected

    def test_the_old_agent_while_the_installer_runs_keeps_the_usual_rules(self) -> None:
        """Probation already begun (root sets it up before the switch), the old agent still
        running while the installer works: wait for the installer, as without probation."""
        o = replace(observed(view(), OLD), installer_alive=True, gone_for=timedelta(0))
        assert verdict(o, LIMITS) == WAIT


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def upgrader(tmp_path: Path, http: httpx.AsyncClient) -> Upgrader:
    return Upgrader(
        install_url="https://get.example/install.sh",
        layout=Layout(tmp_path / "etc", tmp_path / "state", tmp_path / "log"),
        http=http,
        systemd_pid1=lambda: True,
        unit_active=lambda unit: False,
    )


RECORD = InFlightUpgrade("act-7", OLD, NEW, "2026-12-01T00:00:00Z", unit=UPGRADE_UNIT)


@pytest.mark.anyio
class TestHeldResult:
    async def test_the_new_agent_holds_done_until_root_keeps_its_release(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """Running the target version is not done while it is on probation; it is once root
        says 'promoted', and reporting it clears root's finished view."""
        up = upgrader(tmp_path, http)
        up.begin(RECORD)
        tell(up.layout.state_dir, VIEW)
        assert up.reconcile(NEW) is None
        tell(up.layout.state_dir, VIEW.replace("state=active", "state=promoted"))
        result = up.reconcile(NEW)
        assert result is not None and result.status == "done"
        up.clear_inflight()
        assert not up.layout.upgrade_probation.exists()

    async def test_the_old_agent_reports_the_rollback_with_reason_and_log(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """Restarted by root's rollback, the old agent reports failed with root's reason and
        the upgrade log's tail, at start-up (no settling), never 'running'."""
        up = upgrader(tmp_path, http)
        up.begin(RECORD)
        up.log_path.parent.mkdir(parents=True)
        up.log_path.write_text(
            "=== t logpulse-agent upgrade action act-7: 0.1.0 -> v0.2.0 ===\n"
            "logpulse-agent-probation: rolling back 0.2.0 to 0.1.0: probation: no successful "
            "heartbeat within 600 s\n"
        )
        reason = "probation: no successful heartbeat within 600 s"
        rolled_back = VIEW.replace("state=active", "state=rolled-back")
        tell(up.layout.state_dir, rolled_back.replace("reason=\n", f"reason={reason}\n"))
        result = up.reconcile(OLD)
        assert result is not None
        assert result.to_json() == {
            "actionId": "act-7",
            "status": "failed",
            "result": {
                "error": f"{reason}; rolled back from {NEW} to {OLD}",
                "fromVersion": OLD,
                "log": "logpulse-agent-probation: rolling back 0.2.0 to 0.1.0: probation: no "
                "successful heartbeat within 600 s",
            },
        }

    async def test_a_stale_outcome_never_answers_a_later_upgrade(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        """A rolled-back view of 0.2.0 left behind (an install by hand, no action) must not be
        read as the outcome of the next upgrade to 0.2.0: starting an upgrade forgets it."""
        up = upgrader(tmp_path, http)
        tell(up.layout.state_dir, VIEW.replace("state=active", "state=rolled-back"))
        up.begin(RECORD)
        assert not up.layout.upgrade_probation.exists()
        result = up.reconcile(OLD)
        assert result is not None
        assert "probation" not in result.result["error"]

    async def test_a_probation_in_progress_is_not_forgotten(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        up = upgrader(tmp_path, http)
        tell(up.layout.state_dir, VIEW)
        up.begin(RECORD)
        up.clear_inflight()
        assert read_view(up.layout.upgrade_probation) == view()


def snapshot(*, vector_running: bool = True, empty: bool = False) -> HeartbeatSnapshot:
    vector = VectorStatus("RUNNING", 42, vector_running, True, "2026-01-01T00:00:00Z", "0.57.0")
    status = AgentStatus(config=ConfigStatus(applied_version=3, empty=empty), vector=vector)
    return HeartbeatSnapshot(NEW, status, vector_uptime_seconds=12)


@pytest.mark.anyio
async def test_a_successful_heartbeat_is_handed_to_the_promotion(tmp_path: Path) -> None:
    """HeartbeatLoop calls on_success with the snapshot a 2xx answered, never after a failure."""
    seen: list[HeartbeatSnapshot] = []
    replies: list[HeartbeatReply | Exception] = [TransientError("down"), HeartbeatReply((), 1)]

    async def send(body: Heartbeat) -> HeartbeatReply:
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    loop = HeartbeatLoop(
        send=send,
        snapshot=lambda results: snapshot(),
        journal=ActionJournal(tmp_path / "outbox.json"),
        on_actions=lambda actions: None,
        on_config_version=lambda version: None,
        status=StatusTracker(tmp_path / "status.json", NEW),
        interval=30.0,
        poll_interval=10.0,
        on_success=seen.append,
    )
    await loop.beat_once()
    assert seen == []
    await loop.beat_once()
    assert seen == [snapshot()]


@pytest.mark.parametrize(
    ("vector_running", "empty", "promoted"),
    [(True, False, True), (False, False, False), (False, True, True)],
)
def test_the_daemon_promotes_from_the_heartbeat_snapshot(
    tmp_path: Path, vector_running: bool, empty: bool, promoted: bool
) -> None:
    """The composition root's hook reads Vector and the config from the sections the heartbeat
    reported (the version is this build's, so the view names it)."""
    from logpulse_agent import __version__

    settings = Settings(config_dir=tmp_path / "etc", state_dir=tmp_path / "state", log_dir=tmp_path)
    tell(settings.state_dir, VIEW.replace(f"version={NEW}", f"version={__version__}"))
    hook = promotion(settings)
    assert hook(snapshot(vector_running=vector_running, empty=empty)) is promoted
    assert settings.layout.upgrade_promoted.exists() is promoted


class TestStatus:
    def test_the_line_names_version_end_and_fallback(self) -> None:
        line = status_line({"version": NEW, "previous": OLD, "until": "2027-01-15T08:10:00Z"})
        assert (
            line == f"upgrade to {NEW} on probation until 2027-01-15T08:10:00Z (else back to {OLD})"
        )
        assert status_line(None) is None

    def test_render_shows_it_while_the_probation_lasts(self, tmp_path: Path) -> None:
        snap: dict[str, object] = {"agentVersion": NEW}
        snap["probation"] = probation.status_fields(tmp_path / "upgrade-probation")
        assert "probation:" not in render_text(snap, "healthy", [], 0)
        tell(tmp_path, VIEW)
        snap["probation"] = probation.status_fields(tmp_path / "upgrade-probation")
        text = render_text(snap, "healthy", [], 0)
        assert f"probation:       upgrade to {NEW} on probation until 2027-01-15T08:10:00Z" in text

    def test_status_command_reads_roots_view_live(self, tmp_path: Path) -> None:
        """`logpulse-agent status` (text and --json) shows the probation even with no daemon."""
        state, config = tmp_path / "state", tmp_path / "etc"
        config.mkdir()
        (config / "agent-token").write_text("AGT_probation_test\n")
        state.mkdir()
        (state / "identity.json").write_text(
            json.dumps({"agentId": "a1", "groupId": "g1", "apiUrl": "https://api.example"})
        )
        tell(state, VIEW)
        args = ["--config-dir", str(config), "--state-dir", str(state), "--log-dir", str(tmp_path)]
        env = {"LOGPULSE_CONFIG": os.devnull}
        text = CliRunner().invoke(main, ["status", *args], env=env)
        assert f"upgrade to {NEW} on probation until 2027-01-15T08:10:00Z" in text.output
        as_json = CliRunner().invoke(main, ["status", "--json", *args], env=env)
        assert json.loads(as_json.output)["probation"] == {
            "version": NEW,
            "previous": OLD,
            "until": "2027-01-15T08:10:00Z",
        }
