"""The typed record layer: JSON in and out, strict types, schema versions, corrupt files."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from logpulse_agent.errors import StateError
from logpulse_agent.state.records import (
    Corrupt,
    DataclassCodec,
    RecordFile,
    Recovery,
    camel,
)


@dataclass(frozen=True)
class Sample:
    action_id: str
    count: int
    ratio: float = 0.5
    note: str | None = None
    ids: tuple[str, ...] = ()
    flag: bool = False


CODEC = DataclassCodec(Sample, name="sample record")


def fixed_clock() -> datetime:
    return datetime(2024, 5, 1, 12, 30, 0, tzinfo=timezone.utc)


class TestCodec:
    def test_fields_are_camel_case_keys(self) -> None:
        """Field names become camelCase JSON keys; tuples become lists."""
        doc = CODEC.encode(Sample("a1", 3, ids=("x",)))
        assert doc == {
            "actionId": "a1",
            "count": 3,
            "ratio": 0.5,
            "note": None,
            "ids": ["x"],
            "flag": False,
        }
        assert CODEC.decode(doc) == Sample("a1", 3, ids=("x",))
        assert camel("pid_create_time") == "pidCreateTime"

    def test_missing_fields_take_their_defaults_and_unknown_keys_are_ignored(self) -> None:
        """A file from before a field existed, or from a newer agent, still reads."""
        doc = {"actionId": "a1", "count": 3, "addedLater": {"x": 1}}
        assert CODEC.decode(doc) == Sample("a1", 3)

    def test_an_integer_is_a_valid_float(self) -> None:
        """JSON has one number type: 1 is a fine ratio."""
        assert CODEC.decode({"actionId": "a", "count": 1, "ratio": 1}).ratio == 1.0

    @pytest.mark.parametrize(
        ("doc", "problem"),
        [
            ([1, 2], "expected a JSON object, got a list"),
            ({"count": 1}, "field 'actionId' is missing"),
            ({"actionId": 5, "count": 1}, "field 'actionId' must be a string, got a number"),
            ({"actionId": "a", "count": True}, "field 'count' must be an integer, got true"),
            ({"actionId": "a", "count": None}, "field 'count' must be an integer, got null"),
            ({"actionId": "a", "count": 1.5}, "must be an integer"),
            ({"actionId": "a", "count": 1, "note": 3}, "must be a string or null"),
            ({"actionId": "a", "count": 1, "ids": ["a", 1]}, "must be a list of strings"),
            ({"actionId": "a", "count": 1, "flag": "yes"}, "must be true or false"),
        ],
    )
    def test_mistyped_documents_are_corrupt_with_a_one_line_reason(
        self, doc: object, problem: str
    ) -> None:
        """Types are checked strictly and the message names the field, never its value."""
        with pytest.raises(Corrupt, match=r"^sample record: ") as info:
            CODEC.decode(doc)
        assert problem in str(info.value)
        assert "\n" not in str(info.value)


class TestRecordFile:
    def test_round_trip_atomically_with_the_mode(self, tmp_path: Path) -> None:
        """save() writes sorted, indented JSON with the record's mode; load() reads it back."""
        record = RecordFile(tmp_path / "r.json", CODEC, mode=0o600)
        assert record.load() is None
        record.save(Sample("a1", 2))
        assert record.load() == Sample("a1", 2)
        assert stat.S_IMODE(record.path.stat().st_mode) == 0o600
        text = record.path.read_text()
        assert text.startswith('{\n  "actionId"') and text.endswith("}\n")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
        record.remove()
        assert record.load() is None

    @pytest.mark.parametrize("recovery", [Recovery.RELEARN, Recovery.SALVAGE])
    def test_a_corrupt_file_is_set_aside_and_logged(
        self, tmp_path: Path, recovery: Recovery
    ) -> None:
        """A torn file is moved to <name>.corrupt-<UTC time>, logged once, and gives None."""
        path = tmp_path / "r.json"
        path.write_text('{"actionId": "a1", "cou')
        record = RecordFile(
            path,
            CODEC,
            recovery=recovery,
            event="sample.corrupt",
            hint="re-learned later",
            now=fixed_clock,
        )
        with capture_logs() as logs:
            assert record.load() is None
        moved = tmp_path / "r.json.corrupt-20240501T123000Z"
        assert moved.read_text() == '{"actionId": "a1", "cou'
        assert not path.exists()
        [event] = logs
        assert event["event"] == "sample.corrupt" and event["log_level"] == "error"
        assert event["moved_to"] == str(moved) and event["hint"] == "re-learned later"
        assert event["problem"].startswith("not JSON")

    def test_a_required_record_that_is_corrupt_is_a_state_error(self, tmp_path: Path) -> None:
        """Nothing sensible to start from: the error names the file and stays in place."""
        path = tmp_path / "r.json"
        path.write_text('{"count": 1}')
        record = RecordFile(path, CODEC, recovery=Recovery.REQUIRED)
        with pytest.raises(StateError, match=r"r\.json is corrupt: .*'actionId' is missing"):
            record.load()
        assert path.exists()

    def test_an_unreadable_file_is_set_aside_only_when_it_can_be_relearned(
        self, tmp_path: Path
    ) -> None:
        """A path that cannot be read raises unless its content is re-learned anyway."""
        path = tmp_path / "r.json"
        path.mkdir()
        for recovery in (Recovery.SALVAGE, Recovery.REQUIRED):
            with pytest.raises(StateError, match="cannot read"):
                RecordFile(path, CODEC, recovery=recovery).load()
        assert RecordFile(path, CODEC, recovery=Recovery.RELEARN).load() is None
        assert not path.exists() and list(tmp_path.glob("r.json.corrupt-*"))

    def test_a_salvaged_part_is_kept_and_written_back(self, tmp_path: Path) -> None:
        """A codec that can keep part of a damaged file gets that part saved in its place."""

        class Lenient:
            def decode(self, doc: object) -> Sample:
                raise Corrupt("one entry was bad", salvage=Sample("kept", 1), kept=1)

            def encode(self, value: Sample) -> dict[str, object]:
                return CODEC.encode(value)

        path = tmp_path / "r.json"
        path.write_text('{"whatever": true}')
        record = RecordFile(path, Lenient(), recovery=Recovery.SALVAGE)
        with capture_logs() as logs:
            assert record.load() == Sample("kept", 1)
        assert json.loads(path.read_text())["actionId"] == "kept"
        assert logs[0]["kept"] == 1 and logs[0]["problem"] == "one entry was bad"
