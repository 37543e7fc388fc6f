"""The agent's side of upgrade probation: root's view, the promotion, the held result, status."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from logpulse_agent import probation
from logpulse_agent.cli import main
from logpulse_agent.heartbeat import HeartbeatLoop
from logpulse_agent.outbox import Outbox
from logpulse_agent.probation import (
    WAIT,
    ProbationView,
    Promoter,
    parse_view,
    read_view,
    should_promote,
    status_line,
    verdict,
)
from logpulse_agent.protocol import ActionResult, Heartbeat, HeartbeatReply
from logpulse_agent.status import StatusTracker, render_text
from logpulse_agent.upgrade import UPGRADE_UNIT, InFlightUpgrade, Upgrader

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
    (state_dir / probation.VIEW_FILE).write_text(text)


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
        assert read_view(tmp_path) is None
        tell(tmp_path, VIEW + "x" * probation.MAX_VIEW_BYTES)
        assert read_view(tmp_path) is None


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
        promoter = Promoter(tmp_path, NEW)
        assert promoter.after_heartbeat(vector_running=True, config_empty=False) is True
        marker = tmp_path / probation.PROMOTION_FILE
        assert marker.read_text() == f"{NEW} 3f2a-77\n"
        assert marker.stat().st_mode & 0o777 == 0o640
        inode = marker.stat().st_ino
        assert promoter.after_heartbeat(vector_running=True, config_empty=False) is False
        assert marker.stat().st_ino == inode

    def test_nothing_without_vector_running(self, tmp_path: Path) -> None:
        tell(tmp_path, VIEW)
        assert (
            Promoter(tmp_path, NEW).after_heartbeat(vector_running=False, config_empty=False)
            is False
        )
        assert not (tmp_path / probation.PROMOTION_FILE).exists()

    def test_a_new_probation_of_the_same_version_is_promoted_again(self, tmp_path: Path) -> None:
        """The id binds a promotion to one probation: after a rollback and a second try of the
        same version, the old line promotes nothing and a new one is written."""
        tell(tmp_path, VIEW)
        promoter = Promoter(tmp_path, NEW)
        promoter.after_heartbeat(vector_running=True, config_empty=False)
        tell(tmp_path, VIEW.replace("id=3f2a-77", "id=9c1d-02"))
        assert promoter.after_heartbeat(vector_running=True, config_empty=False) is True
        assert (tmp_path / probation.PROMOTION_FILE).read_text() == f"{NEW} 9c1d-02\n"

    def test_an_unwritable_state_dir_is_logged_not_raised(self, tmp_path: Path) -> None:
        tell(tmp_path, VIEW)
        (tmp_path / probation.PROMOTION_FILE).mkdir()  # a directory where the file should be
        assert (
            Promoter(tmp_path, NEW).after_heartbeat(vector_running=True, config_empty=False)
            is False
        )


class TestVerdict:
    @pytest.mark.parametrize(
        ("the_view", "running", "expected"),
        [
            (None, NEW, None),
            (view(), NEW, WAIT),  # on probation: done waits for root
            (view(), OLD, None),  # the old agent while the installer runs: the usual rules
            (view(state="promoted"), NEW, None),  # kept: the usual rules say done
            (view(state="rolled-back", reason="probation: restarted 5 times"), NEW, WAIT),
            (
                view(state="rolled-back", reason="probation: restarted 5 times"),
                OLD,
                f"probation: restarted 5 times; rolled back from {NEW} to {OLD}",
            ),
            (
                view(state="kept", reason="probation: x; 0.2.0 was kept"),
                NEW,
                "probation: x; 0.2.0 was kept",
            ),
            (view(version="0.3.0", state="rolled-back"), OLD, None),  # another upgrade's
        ],
    )
    def test_decides_for_the_upgrade_to_that_version_only(
        self, the_view: ProbationView | None, running: str, expected: object
    ) -> None:
        assert verdict(the_view, NEW, running) == expected


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def upgrader(tmp_path: Path, http: httpx.AsyncClient) -> Upgrader:
    return Upgrader(
        install_url="https://get.example/install.sh",
        state_dir=tmp_path / "state",
        log_dir=tmp_path / "log",
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
        tell(up.state_dir, VIEW)
        assert up.reconcile(NEW) is None
        tell(up.state_dir, VIEW.replace("state=active", "state=promoted"))
        result = up.reconcile(NEW)
        assert result is not None and result.status == "done"
        up.clear_inflight()
        assert not (up.state_dir / probation.VIEW_FILE).exists()

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
        tell(up.state_dir, rolled_back.replace("reason=\n", f"reason={reason}\n"))
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
        tell(up.state_dir, VIEW.replace("state=active", "state=rolled-back"))
        up.begin(RECORD)
        assert not (up.state_dir / probation.VIEW_FILE).exists()
        result = up.reconcile(OLD)
        assert result is not None
        assert "probation" not in result.result["error"]

    async def test_a_probation_in_progress_is_not_forgotten(
        self, tmp_path: Path, http: httpx.AsyncClient
    ) -> None:
        up = upgrader(tmp_path, http)
        tell(up.state_dir, VIEW)
        up.begin(RECORD)
        up.clear_inflight()
        assert read_view(up.state_dir) == view()


@pytest.mark.anyio
async def test_a_successful_heartbeat_is_handed_to_the_promotion(tmp_path: Path) -> None:
    """HeartbeatLoop calls on_success with the body a 2xx answered, never after a failure."""
    seen: list[Heartbeat] = []
    replies: list[HeartbeatReply | Exception] = [RuntimeError("down"), HeartbeatReply((), 1)]

    async def send(body: Heartbeat) -> HeartbeatReply:
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            from logpulse_agent.errors import TransientError

            raise TransientError(str(reply))
        return reply

    def build(results: tuple[ActionResult, ...]) -> Heartbeat:
        return Heartbeat(NEW, "0.57.0", 1, True, 3, None, results)

    loop = HeartbeatLoop(
        send=send,
        build=build,
        outbox=Outbox(tmp_path / "outbox.json"),
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
    assert [body.vector_running for body in seen] == [True]


class TestStatus:
    def test_the_line_names_version_end_and_fallback(self) -> None:
        line = status_line({"version": NEW, "previous": OLD, "until": "2027-01-15T08:10:00Z"})
        assert (
            line == f"upgrade to {NEW} on probation until 2027-01-15T08:10:00Z (else back to {OLD})"
        )
        assert status_line(None) is None

    def test_render_shows_it_while_the_probation_lasts(self, tmp_path: Path) -> None:
        snap = StatusTracker(tmp_path / "status.json", NEW).snapshot()
        snap["probation"] = probation.status_fields(tmp_path)
        assert "probation:" not in render_text(snap, "healthy", [], 0)
        tell(tmp_path, VIEW)
        snap["probation"] = probation.status_fields(tmp_path)
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
