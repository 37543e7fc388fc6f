"""Where every file of the agent lives (the README's "Files" table), in one place.

config_dir/agent-token          the AGT_ token, mode 0600, nothing else
config_dir/bootstrap-token      a provisioned EBT_ token ``run`` enrols with
state_dir/identity.json         agentId, groupId, apiUrl, enrolledAt
state_dir/vector.yaml           the live Vector config (replaced only by rename)
state_dir/vector.next.yaml      the candidate being validated
state_dir/vector.lkg.yaml       the last config that ran stably (last-known-good)
state_dir/vector-globals.yaml   the agent-owned global options (data_dir, secret backend)
state_dir/applied.json          version/etag of the live config and of the last-known-good
state_dir/rejected.json         the last version/etag that failed, not retried every poll
state_dir/outbox.json           the action journal: results not yet delivered, ids reported
state_dir/actions-seen.json     action ids ever picked up (at-most-once)
state_dir/upgrade-inflight.json the upgrade in progress
state_dir/upgrade-request       the version asked of the root upgrade service
state_dir/upgrade/              the downloaded install script
state_dir/status.json           the snapshot ``status`` prints
state_dir/vector.pid            the Vector the agent spawned last
state_dir/vector-data/          Vector's data_dir
log_dir/vector.log, upgrade.log Vector's own output, the installer's
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from logpulse_agent.errors import StateError
from logpulse_agent.state import atomic


@dataclass(frozen=True)
class Layout:
    """The agent's paths under ``config_dir``, ``state_dir`` and ``log_dir``."""

    config_dir: Path
    state_dir: Path
    log_dir: Path

    @property
    def token(self) -> Path:
        return self.config_dir / "agent-token"

    @property
    def bootstrap_token(self) -> Path:
        return self.config_dir / "bootstrap-token"

    @property
    def identity(self) -> Path:
        return self.state_dir / "identity.json"

    @property
    def live_config(self) -> Path:
        return self.state_dir / "vector.yaml"

    @property
    def candidate_config(self) -> Path:
        return self.state_dir / "vector.next.yaml"

    @property
    def lkg_config(self) -> Path:
        return self.state_dir / "vector.lkg.yaml"

    @property
    def globals_config(self) -> Path:
        return self.state_dir / "vector-globals.yaml"

    @property
    def applied(self) -> Path:
        return self.state_dir / "applied.json"

    @property
    def rejected(self) -> Path:
        return self.state_dir / "rejected.json"

    @property
    def outbox(self) -> Path:
        return self.state_dir / "outbox.json"

    @property
    def ledger(self) -> Path:
        return self.state_dir / "actions-seen.json"

    @property
    def upgrade_inflight(self) -> Path:
        return self.state_dir / "upgrade-inflight.json"

    @property
    def upgrade_request(self) -> Path:
        return self.state_dir / "upgrade-request"

    @property
    def upgrade_scripts(self) -> Path:
        return self.state_dir / "upgrade"

    @property
    def status(self) -> Path:
        return self.state_dir / "status.json"

    @property
    def vector_pid(self) -> Path:
        return self.state_dir / "vector.pid"

    @property
    def vector_data(self) -> Path:
        return self.state_dir / "vector-data"

    @property
    def vector_log(self) -> Path:
        return self.log_dir / "vector.log"

    @property
    def upgrade_log(self) -> Path:
        return self.log_dir / "upgrade.log"

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
