"""On-disk state: token mode, identity, applied record healing, corrupt records set aside."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from logpulse_agent.config.store import AppliedConfig, ConfigStore
from logpulse_agent.controlplane.identity import Identity, IdentityStore
from logpulse_agent.controlplane.protocol import config_etag
from logpulse_agent.errors import NotEnrolled, StateError
from logpulse_agent.state.layout import Layout

TOKEN = "AGT_" + "t" * 43


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "etc", tmp_path / "lib", tmp_path / "log")
    layout.ensure_dirs()
    return layout


@pytest.fixture
def identities(layout: Layout) -> IdentityStore:
    return IdentityStore(layout)


@pytest.fixture
def store(layout: Layout) -> ConfigStore:
    return ConfigStore(layout)


class TestEnrolment:
    def test_token_is_created_0600_and_read_back(self, identities: IdentityStore) -> None:
        """The agent token file holds the token only, with mode 0600."""
        identities.save(Identity("a1", "g1", "https://cp", "t"), TOKEN)
        token_path = identities.layout.token
        assert stat.S_IMODE(token_path.stat().st_mode) == 0o600
        assert token_path.read_text().strip() == TOKEN
        assert identities.load_token() == TOKEN
        assert identities.load().agent_id == "a1"
        assert identities.is_enrolled()

    def test_missing_identity_means_not_enrolled(self, identities: IdentityStore) -> None:
        """Loading an identity that isn't there says 'not enrolled'."""
        with pytest.raises(NotEnrolled):
            identities.load()

    def test_token_without_prefix_is_refused(self, identities: IdentityStore) -> None:
        """A garbage token from the server is not stored."""
        with pytest.raises(StateError):
            identities.save(Identity("a", "g", "u", "t"), "nope")
        assert not identities.layout.token.exists()

    def test_corrupt_identity_is_a_state_error(self, identities: IdentityStore) -> None:
        """A half-edited identity.json is reported clearly."""
        identities.layout.identity.write_text('{"agentId": "x"}')
        with pytest.raises(StateError, match="missing"):
            identities.load()


class TestApplied:
    def test_record_round_trips_when_live_file_matches(self, store: ConfigStore) -> None:
        """The applied version survives a restart when the live file is what it says."""
        body = b"sources: {}\n"
        store.write_live(body)
        store.save_applied(AppliedConfig(version=5, etag=config_etag(body), lkg_version=4))
        assert store.load_applied().version == 5

    def test_record_heals_when_live_file_differs(self, store: ConfigStore) -> None:
        """A crash between rename and record write makes the agent fetch again (since=0)."""
        store.write_live(b"new content")
        fallbacks = {"lkg_version": 4, "superseded_version": 3, "superseded_etag": "sha256:3"}
        store.save_applied(AppliedConfig(version=5, etag=config_etag(b"old"), **fallbacks))
        applied = store.load_applied()
        assert applied == AppliedConfig(**fallbacks), "the fallbacks are kept"

    def test_candidate_promotion_is_a_rename(self, store: ConfigStore) -> None:
        """The candidate replaces the live file and disappears."""
        store.write_live(b"old")
        store.write_candidate(b"new")
        store.promote_candidate()
        assert store.read_live() == b"new"
        assert not store.layout.candidate_config.exists()


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
    def test_a_corrupt_applied_record_is_set_aside(self, store: ConfigStore, content: str) -> None:
        store.layout.applied.write_text(content)
        assert store.load_applied() == AppliedConfig()
        assert not store.layout.applied.exists()
        [moved] = store.layout.state_dir.glob("applied.json.corrupt-*")
        assert moved.read_text() == content

    @pytest.mark.parametrize(
        "content", ["{half", '{"version": 3}', '{"version": "x", "etag": "e", "message": "m"}']
    )
    def test_a_corrupt_rejected_record_is_set_aside(self, store: ConfigStore, content: str) -> None:
        store.layout.rejected.write_text(content)
        assert store.load_rejected() is None
        moved = store.layout.state_dir.glob("rejected.json.corrupt-*")
        assert [p.read_text() for p in moved] == [content]
