"""On-disk state: token mode, identity, applied record healing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from logpulse_agent.errors import NotEnrolled, StateError
from logpulse_agent.state.store import AppliedConfig, Identity, StateStore, sha256_etag

TOKEN = "AGT_" + "t" * 43


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore(tmp_path / "etc", tmp_path / "lib")
    s.ensure_dirs()
    return s


class TestEnrolment:
    def test_token_is_created_0600_and_read_back(self, store: StateStore) -> None:
        """The agent token file holds the token only, with mode 0600."""
        store.save_enrolment(Identity("a1", "g1", "https://cp", "t"), TOKEN)
        assert stat.S_IMODE(store.token_path.stat().st_mode) == 0o600
        assert store.token_path.read_text().strip() == TOKEN
        assert store.load_token() == TOKEN
        assert store.load_identity().agent_id == "a1"
        assert store.is_enrolled()

    def test_missing_identity_means_not_enrolled(self, store: StateStore) -> None:
        """Loading an identity that isn't there says 'not enrolled'."""
        with pytest.raises(NotEnrolled):
            store.load_identity()

    def test_token_without_prefix_is_refused(self, store: StateStore) -> None:
        """A garbage token from the server is not stored."""
        with pytest.raises(StateError):
            store.save_enrolment(Identity("a", "g", "u", "t"), "nope")
        assert not store.token_path.exists()

    def test_corrupt_identity_is_a_state_error(self, store: StateStore) -> None:
        """A half-edited identity.json is reported clearly."""
        store.identity_path.write_text('{"agentId": "x"}')
        with pytest.raises(StateError, match="missing"):
            store.load_identity()


class TestApplied:
    def test_record_round_trips_when_live_file_matches(self, store: StateStore) -> None:
        """The applied version survives a restart when the live file is what it says."""
        body = b"sources: {}\n"
        store.write_live(body)
        store.save_applied(AppliedConfig(version=5, etag=sha256_etag(body), lkg_version=4))
        assert store.load_applied().version == 5

    def test_record_heals_when_live_file_differs(self, store: StateStore) -> None:
        """A crash between rename and record write makes the agent fetch again (since=0)."""
        store.write_live(b"new content")
        store.save_applied(AppliedConfig(version=5, etag=sha256_etag(b"old"), lkg_version=4))
        applied = store.load_applied()
        assert applied.version == 0 and applied.etag is None and applied.lkg_version == 4

    def test_candidate_promotion_is_a_rename(self, store: StateStore) -> None:
        """The candidate replaces the live file and disappears."""
        store.write_live(b"old")
        store.write_candidate(b"new")
        store.promote_candidate()
        assert store.read_live() == b"new"
        assert not store.candidate_config.exists()


CORRUPT_RECORDS = {
    "not json": "{half",
    "not an object": "[1, 2]",
    "bad version": '{"version": "five", "etag": null}',
    "bad etag type": '{"version": 5, "etag": 7}',
}


class TestCorruptRecords:
    """applied.json and rejected.json are rebuilt from the control plane; a corrupt one must
    not stop the agent from starting (systemd would restart it into the same failure)."""

    @pytest.mark.parametrize("content", CORRUPT_RECORDS.values(), ids=list(CORRUPT_RECORDS))
    def test_a_corrupt_applied_record_is_set_aside(self, store: StateStore, content: str) -> None:
        store.applied_path.write_text(content)
        assert store.load_applied() == AppliedConfig()
        assert not store.applied_path.exists()
        [moved] = store.state_dir.glob("applied.json.corrupt-*")
        assert moved.read_text() == content

    @pytest.mark.parametrize(
        "content", ["{half", '{"version": 3}', '{"version": "x", "etag": "e", "message": "m"}']
    )
    def test_a_corrupt_rejected_record_is_set_aside(self, store: StateStore, content: str) -> None:
        store.rejected_path.write_text(content)
        assert store.load_rejected() is None
        assert [p.read_text() for p in store.state_dir.glob("rejected.json.corrupt-*")] == [content]
