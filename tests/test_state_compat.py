"""An agent upgraded in place reads every file the previous release wrote.

``tests/fixtures/agent-0.1.0/`` is a state directory written by the 0.1.0 agent's own code
(see its README). Each test copies it and reads one file with the current code; a format change
that forgets the old files fails here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.actions.ledger import ActionLedger
from logpulse_agent.config.store import AppliedConfig, ConfigStore, RejectedConfig
from logpulse_agent.controlplane.identity import Identity, IdentityStore
from logpulse_agent.controlplane.protocol import ActionResult
from logpulse_agent.state.layout import Layout
from logpulse_agent.status.report import assess, load_snapshot, render_text
from logpulse_agent.upgrade.record import InFlightUpgrade
from logpulse_agent.upgrade.upgrader import Upgrader
from logpulse_agent.vector.process import PidRecord, read_pid_file

pytestmark = pytest.mark.anyio

FIXTURE = Path(__file__).parent / "fixtures" / "agent-0.1.0"
AGENT_ID = "7d0c595431ed427a9357791bdd7f60ff"


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    shutil.copytree(FIXTURE, tmp_path / "host")
    layout = Layout(tmp_path / "host" / "etc", tmp_path / "host" / "lib", tmp_path / "host" / "log")
    layout.ensure_dirs()
    return layout


def no_corrupt_files(layout: Layout) -> bool:
    return not list(layout.state_dir.glob("*.corrupt-*"))


def journal(layout: Layout) -> ActionJournal:
    """The journal as the daemon opens it: after the ledger, taking over its reported ids."""
    return ActionJournal(layout.outbox, legacy_reported=ActionLedger(layout.ledger).legacy_reported)


class TestEnrolment:
    def test_identity_and_token(self, layout: Layout) -> None:
        """The host stays enrolled as the same agent."""
        identities = IdentityStore(layout)
        assert identities.is_enrolled()
        assert identities.load() == Identity(
            AGENT_ID,
            "7fe03a05f8c840d786a47808face5060",
            "https://api.logpulse.example",
            "2026-11-29T19:49:40Z",
        )
        assert identities.load_token().startswith("AGT_")


class TestConfigRecords:
    def test_applied_and_last_known_good(self, layout: Layout) -> None:
        """Version 5 stays applied (the live file matches its etag), 4 last-known-good."""
        applied = ConfigStore(layout).load_applied()
        assert applied == AppliedConfig(
            version=5,
            etag="sha256:cc20e3398ff7f3125bef46170c7cdf784b5c424d6b2809a88d20743d7e7b4f76",
            lkg_version=4,
            lkg_etag="sha256:6af8cff56da9cf2ae9989439d5dba21a02d76d384630d02462ba927085a9c9a3",
        )
        assert no_corrupt_files(layout)

    def test_rejected(self, layout: Layout) -> None:
        """The rejected version is still not retried and still reported."""
        rejected = ConfigStore(layout).load_rejected()
        assert rejected == RejectedConfig(
            version=6,
            etag="sha256:" + "6" * 64,
            message="vector validate rejected the config: unknown component type 'nonsense'",
            at="2026-11-29T19:50:01Z",
        )
        assert no_corrupt_files(layout)


class TestActions:
    def test_results_waiting_in_the_outbox_are_delivered(self, layout: Layout) -> None:
        """Both undelivered results are pending, in order."""
        assert journal(layout).pending() == (
            ActionResult("act-done", "done", {"fromVersion": "0.0.9", "toVersion": "0.1.0"}),
            ActionResult("act-running", "running", {"fromVersion": "0.1.0", "toVersion": "0.2.0"}),
        )
        assert no_corrupt_files(layout)

    def test_ids_picked_up_are_never_run_again(self, layout: Layout) -> None:
        """Every id the old agent recorded is seen; the reported ones are known as reported,
        also after a restart (the journal took them over), and the interrupted one is not."""
        for _ in range(2):
            ledger = ActionLedger(layout.ledger)
            for action_id in ("act-done", "act-running", "act-acked", "act-interrupted"):
                assert ledger.seen(action_id)
            reported = journal(layout).reported
            assert [reported(i) for i in ("act-done", "act-acked", "act-interrupted")] == [
                True,
                True,
                False,
            ]
            ledger.record("act-new")  # the ledger now writes its own format
        assert no_corrupt_files(layout)

    def test_an_early_ledger_without_reported_ids_counts_them_all_as_reported(
        self, layout: Layout
    ) -> None:
        """Before 'reported' existed every recorded id had its result queued."""
        layout.ledger.write_text(json.dumps({"version": 1, "ids": ["old-1", "old-2"]}))
        layout.outbox.unlink()
        ledger = ActionLedger(layout.ledger)
        reported = journal(layout).reported
        assert ledger.seen("old-1") and reported("old-1") and reported("old-2")

    async def test_the_upgrade_in_flight_is_reconciled(self, layout: Layout) -> None:
        """The in-flight upgrade record reads back whole."""
        async with httpx.AsyncClient() as http:
            upgrader = Upgrader(
                install_url="https://get.logpulse.example", layout=layout, http=http
            )
            assert upgrader.inflight() == InFlightUpgrade(
                "act-running", "0.1.0", "0.2.0", "2026-11-29T19:51:00Z", 4242, 1796000000.25
            )
        assert no_corrupt_files(layout)


class TestVectorAndStatus:
    def test_the_vector_pid_file(self, layout: Layout) -> None:
        """The Vector the old agent spawned is still recognised (and stopped) at start-up."""
        assert read_pid_file(layout.vector_pid) == PidRecord(4300)

    def test_status_reads_the_old_snapshot(self, layout: Layout) -> None:
        """`status` run right after the upgrade shows what the old daemon last wrote."""
        snap = load_snapshot(layout.status)
        assert snap is not None
        health, reasons = assess(snap, 1_796_000_100.0, alive=lambda _: True)
        assert (health, reasons) == ("healthy", [])
        text = render_text(snap, health, reasons, 1_796_000_100.0)
        assert f"agent id:        {AGENT_ID}" in text
        assert "config applied:  5" in text
        assert "config error:    version 6: vector validate rejected the config" in text
        assert "vector:          RUNNING pid=4300" in text
        assert "upgrade:         0.1.0 -> 0.2.0 (action act-running" in text
