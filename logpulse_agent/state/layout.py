"""Where every file of the agent lives (the README's "Files" table), in one place.

config_dir/agent-token            the AGT_ token, mode 0600, nothing else
config_dir/bootstrap-token        a provisioned EBT_ token ``run`` enrols with
state_dir/identity.json           agentId, groupId, apiUrl, enrolledAt
state_dir/vector.yaml             the live Vector config (replaced only by rename)
state_dir/vector.next.yaml        the candidate being validated
state_dir/vector.lkg.yaml         the last config that ran a whole crash window (last-known-good)
state_dir/vector.superseded.yaml  a newer one that ran without failing until replaced sooner
state_dir/vector-globals.yaml     the agent-owned global options (data_dir, secret backend)
state_dir/applied.json            version/etag of the live config and of both fallbacks
state_dir/rejected.json           the last version/etag that failed, not retried every poll
state_dir/outbox.json             the action journal: results not yet delivered, ids reported
state_dir/actions-seen.json       action ids ever picked up (at-most-once)
state_dir/upgrade-inflight.json   the upgrade in progress
state_dir/upgrade-request         the version asked of the root upgrade service
state_dir/upgrade-probation       root's view of an upgrade probation (written by root as the agent)
state_dir/upgrade-promoted        the agent's promotion of the release on probation: "VERSION ID"
state_dir/upgrade/                the downloaded install script
state_dir/status.json             the snapshot ``status`` prints
state_dir/vector.pid              the Vector the agent spawned last
state_dir/vector-data/            Vector's data_dir
log_dir/agent.log                 the agent's own events as JSON lines (size-rotated)
log_dir/vector.log                Vector's own output
log_dir/upgrade.log               the installer's output
"""

from __future__ import annotations

import os
from pathlib import Path

from logpulse_agent.errors import StateError
from logpulse_agent.state import atomic


class Layout:
    """The agent's paths under ``config_dir``, ``state_dir`` and ``log_dir`` (plain attributes:
    one table, as the module docstring lists them)."""

    def __init__(self, config_dir: Path, state_dir: Path, log_dir: Path) -> None:
        self.config_dir = Path(config_dir)
        self.state_dir = Path(state_dir)
        self.log_dir = Path(log_dir)
        self.token = self.config_dir / "agent-token"
        self.bootstrap_token = self.config_dir / "bootstrap-token"
        self.identity = self.state_dir / "identity.json"
        self.live_config = self.state_dir / "vector.yaml"
        self.candidate_config = self.state_dir / "vector.next.yaml"
        self.lkg_config = self.state_dir / "vector.lkg.yaml"
        self.superseded_config = self.state_dir / "vector.superseded.yaml"
        self.globals_config = self.state_dir / "vector-globals.yaml"
        self.applied = self.state_dir / "applied.json"
        self.rejected = self.state_dir / "rejected.json"
        self.outbox = self.state_dir / "outbox.json"
        self.ledger = self.state_dir / "actions-seen.json"
        self.upgrade_inflight = self.state_dir / "upgrade-inflight.json"
        self.upgrade_request = self.state_dir / "upgrade-request"
        self.upgrade_probation = self.state_dir / "upgrade-probation"
        self.upgrade_promoted = self.state_dir / "upgrade-promoted"
        self.upgrade_scripts = self.state_dir / "upgrade"
        self.status = self.state_dir / "status.json"
        self.vector_pid = self.state_dir / "vector.pid"
        self.vector_data = self.state_dir / "vector-data"
        self.agent_log = self.log_dir / "agent.log"
        self.vector_log = self.log_dir / "vector.log"
        self.upgrade_log = self.log_dir / "upgrade.log"

    def __repr__(self) -> str:
        return f"Layout({self.config_dir!r}, {self.state_dir!r}, {self.log_dir!r})"

    def ensure_dirs(self) -> None:
        """Create the config and state directories (0750), check they are writable, and
        remove temp files that writers killed mid-write left behind."""
        for directory in (self.config_dir, self.state_dir, self.vector_data):
            try:
                directory.mkdir(mode=0o750, parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(f"cannot create {directory}: {exc.strerror or exc}") from exc
            if not os.access(directory, os.W_OK | os.X_OK):
                raise StateError(f"{directory} is not writable by this user")
        for directory in (self.config_dir, self.state_dir):
            atomic.remove_stale_temps(directory)
