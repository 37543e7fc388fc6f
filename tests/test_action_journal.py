"""The action journal (outbox.json): durable, replacing, exact on acknowledgement, safe when
corrupt, and the memory of which actions ever had a result."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.controlplane.protocol import ActionResult
from logpulse_agent.errors import StateError

RUNNING = ActionResult("a1", "running", {"fromVersion": "0.1.0", "toVersion": "0.2.0"})
DONE = ActionResult("a1", "done", {"fromVersion": "0.1.0", "toVersion": "0.2.0"})
FAILED = ActionResult("a1", "failed", {"error": "boom", "fromVersion": "0.1.0"})
OTHER = ActionResult("b2", "failed", {"error": "unsupported action type 'reboot'"})


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.json"


def fixed_clock() -> datetime:
    return datetime(2024, 5, 1, 12, 30, 0, tzinfo=timezone.utc)


class TestDurability:
    def test_starts_empty_without_a_file(self, path: Path) -> None:
        """A missing file is an empty outbox; nothing is written until a result arrives."""
        assert ActionJournal(path).pending() == ()
        assert not path.exists()

    def test_results_survive_reopening(self, path: Path) -> None:
        """Results added before a restart are pending again after it, in insertion order."""
        outbox = ActionJournal(path)
        outbox.add(RUNNING)
        outbox.add(OTHER)
        assert ActionJournal(path).pending() == (RUNNING, OTHER)

    def test_add_is_on_disk_when_it_returns(self, path: Path) -> None:
        """The file holds the result in the documented format as soon as add returns."""
        ActionJournal(path).add(OTHER)
        doc = json.loads(path.read_text())
        assert doc == {"version": 2, "results": [OTHER.to_json()], "reported": ["b2"]}
        assert path.stat().st_mode & 0o777 == 0o600

    def test_tokens_never_reach_the_file(self, path: Path) -> None:
        """A token inside a result is masked on disk."""
        ActionJournal(path).add(ActionResult("a1", "failed", {"error": "bad AGT_secret123 token"}))
        assert "AGT_secret123" not in path.read_text()


class TestReplacement:
    def test_later_result_replaces_earlier_in_place(self, path: Path) -> None:
        """``done`` replaces ``running`` for the same id and keeps its position."""
        outbox = ActionJournal(path)
        outbox.add(RUNNING)
        outbox.add(OTHER)
        outbox.add(DONE)
        assert outbox.pending() == (DONE, OTHER)
        assert ActionJournal(path).pending() == (DONE, OTHER)

    @pytest.mark.parametrize("terminal", [DONE, FAILED])
    def test_running_never_replaces_a_terminal_result(
        self, path: Path, terminal: ActionResult
    ) -> None:
        """A late ``running`` does not regress ``done``/``failed``."""
        outbox = ActionJournal(path)
        outbox.add(terminal)
        outbox.add(RUNNING)
        assert outbox.pending() == (terminal,)
        assert ActionJournal(path).pending() == (terminal,)


class TestAcknowledge:
    def test_removes_exactly_what_was_sent(self, path: Path) -> None:
        """Acknowledged results leave the outbox, on disk too; others stay."""
        outbox = ActionJournal(path)
        outbox.add(RUNNING)
        outbox.add(OTHER)
        outbox.acknowledge([OTHER])
        assert outbox.pending() == (RUNNING,)
        assert ActionJournal(path).pending() == (RUNNING,)

    def test_keeps_a_result_that_replaced_the_sent_one(self, path: Path) -> None:
        """``running`` was sent, ``done`` arrived meanwhile: the ack leaves ``done`` pending."""
        outbox = ActionJournal(path)
        outbox.add(RUNNING)
        sent = outbox.pending()
        outbox.add(DONE)
        outbox.acknowledge(sent)
        assert outbox.pending() == (DONE,)
        assert ActionJournal(path).pending() == (DONE,)

    def test_acknowledging_unknown_or_nothing_changes_nothing(self, path: Path) -> None:
        """An empty or foreign acknowledgement leaves the outbox as it was."""
        outbox = ActionJournal(path)
        outbox.add(RUNNING)
        outbox.acknowledge([])
        outbox.acknowledge([OTHER])
        assert outbox.pending() == (RUNNING,)

    def test_reopened_results_can_be_acknowledged(self, path: Path) -> None:
        """Results loaded from disk after a restart compare equal to what the heartbeat sends."""
        ActionJournal(path).add(FAILED)
        reopened = ActionJournal(path)
        reopened.acknowledge(reopened.pending())
        assert ActionJournal(path).pending() == ()


class TestCorruptFile:
    def test_garbage_is_moved_aside_and_logged(self, path: Path) -> None:
        """A file that is not JSON is kept as ``.corrupt-<ts>``, an error is logged, and the
        outbox starts empty and usable."""
        path.write_bytes(b'{"version": 1, "results": [{"actionId": "a1", "sta')
        with capture_logs() as logs:
            outbox = ActionJournal(path, now=fixed_clock)
        moved = path.with_name("outbox.json.corrupt-20240501T123000Z")
        assert moved.read_bytes().startswith(b'{"version": 1')
        assert outbox.pending() == ()
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["outbox.corrupt"]
        outbox.add(OTHER)
        assert ActionJournal(path).pending() == (OTHER,)

    def test_parsable_entries_of_a_damaged_file_are_kept(self, path: Path) -> None:
        """Only the broken entries are dropped; the good ones stay pending, the original is kept."""
        path.write_text(
            json.dumps(
                {"version": 1, "results": [OTHER.to_json(), {"actionId": "x", "status": "bogus"}]}
            )
        )
        with capture_logs() as logs:
            outbox = ActionJournal(path, now=fixed_clock)
        assert outbox.pending() == (OTHER,)
        assert ActionJournal(path).pending() == (OTHER,)
        assert "bogus" in path.with_name("outbox.json.corrupt-20240501T123000Z").read_text()
        assert logs[0]["kept"] == 1

    def test_repeated_corruption_never_overwrites_an_earlier_copy(self, path: Path) -> None:
        """Two corrupt files in the same second are both kept."""
        path.write_text("[]")
        ActionJournal(path, now=fixed_clock)
        path.write_text("null")
        ActionJournal(path, now=fixed_clock)
        copies = sorted(p.name for p in path.parent.glob("outbox.json.corrupt-*"))
        assert copies == [
            "outbox.json.corrupt-20240501T123000Z",
            "outbox.json.corrupt-20240501T123000Z-2",
        ]

    def test_unreadable_file_is_an_error_not_an_empty_outbox(self, path: Path) -> None:
        """A path that cannot be read raises StateError instead of silently dropping results."""
        path.mkdir()
        with pytest.raises(StateError, match="cannot read"):
            ActionJournal(path)


class TestReported:
    def test_an_id_stays_reported_after_its_result_was_delivered(self, path: Path) -> None:
        """Acknowledged results leave; that their action had a result is remembered on disk."""
        journal = ActionJournal(path)
        assert not journal.reported("a1")
        journal.add(RUNNING)
        journal.acknowledge(journal.pending())
        reopened = ActionJournal(path)
        assert reopened.pending() == () and reopened.reported("a1")
        assert not reopened.reported("b2")

    def test_the_reported_ids_are_bounded(self, path: Path) -> None:
        """Only the newest ids are kept, like the ledger's."""
        journal = ActionJournal(path, size=2)
        for action_id in ("a", "b", "c"):
            journal.add(ActionResult(action_id, "failed", {"error": "x"}))
        reopened = ActionJournal(path, size=2)
        assert [reopened.reported(i) for i in ("a", "b", "c")] == [False, True, True]


class TestUpgradeFrom010:
    """0.1.0 kept the reported ids in actions-seen.json and wrote outbox.json as version 1."""

    def test_a_version_1_outbox_takes_the_ledgers_reported_ids_and_is_rewritten(
        self, path: Path
    ) -> None:
        """The old set is adopted (with the ids of queued results) and written as version 2
        at once, so the ledger may forget it."""
        path.write_text(json.dumps({"version": 1, "results": [RUNNING.to_json()]}))
        journal = ActionJournal(path, legacy_reported=["old-1", "old-2"])
        assert journal.pending() == (RUNNING,)
        assert all(journal.reported(i) for i in ("old-1", "old-2", "a1"))
        doc = json.loads(path.read_text())
        assert doc["version"] == 2 and doc["reported"] == ["old-1", "old-2", "a1"]
        assert ActionJournal(path).reported("old-1")

    def test_nothing_to_adopt_writes_nothing(self, path: Path) -> None:
        """A fresh host gets no file until the first result."""
        ActionJournal(path, legacy_reported=[])
        assert not path.exists()

    def test_a_mistyped_reported_list_is_set_aside_keeping_the_results(self, path: Path) -> None:
        """A damaged 'reported' costs the list, never the results waiting for delivery."""
        path.write_text(json.dumps({"version": 2, "results": [OTHER.to_json()], "reported": "b2"}))
        journal = ActionJournal(path, now=fixed_clock)
        assert journal.pending() == (OTHER,) and journal.reported("b2")
        assert path.with_name("outbox.json.corrupt-20240501T123000Z").exists()
