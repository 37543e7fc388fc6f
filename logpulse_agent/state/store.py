"""What the agent keeps on disk between runs: identity, token, and the applied Vector config.

Layout (``config_dir`` and ``state_dir`` come from the settings):

    config_dir/agent-token        the AGT_ token, mode 0600, nothing else
    state_dir/identity.json       agentId, groupId, apiUrl, enrolledAt
    state_dir/vector.yaml         the live Vector config (replaced only by rename)
    state_dir/vector.next.yaml    the candidate being validated
    state_dir/vector.lkg.yaml     the last config that ran stably (last-known-good)
    state_dir/vector-globals.yaml the agent-owned global options (data_dir, secret backend)
    state_dir/applied.json        version/etag of the live config and of the last-known-good one
    state_dir/rejected.json       the last version/etag that failed, so it is not retried every poll

Every write goes through :mod:`.atomic`, so a crash leaves old or new, never torn.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog

from logpulse_agent.errors import NotEnrolled, StateError
from logpulse_agent.state import atomic

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "AGT_"  # noqa: S105 (a prefix, not a secret)


def sha256_etag(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Identity:
    """Who this host is to the control plane."""

    agent_id: str
    group_id: str
    api_url: str
    enrolled_at: str


@dataclass(frozen=True)
class AppliedConfig:
    """The config version the agent reports as applied; ``empty`` means the group sent ``{}``."""

    version: int = 0
    etag: str | None = None
    empty: bool = False
    lkg_version: int = 0
    lkg_etag: str | None = None


@dataclass(frozen=True)
class RejectedConfig:
    """A version that failed validation, reload or ran into a crash loop: never retried as is."""

    version: int
    etag: str
    message: str
    at: str


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected a string or null, got {type(value).__name__}")


def _require_dict(path: Path, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise StateError(f"{path} is corrupt: expected a JSON object")
    return data


class StateStore:
    """Reads and writes the files listed in the module docstring."""

    def __init__(self, config_dir: Path, state_dir: Path) -> None:
        self.config_dir = Path(config_dir)
        self.state_dir = Path(state_dir)
        self.token_path = self.config_dir / "agent-token"
        self.identity_path = self.state_dir / "identity.json"
        self.live_config = self.state_dir / "vector.yaml"
        self.candidate_config = self.state_dir / "vector.next.yaml"
        self.lkg_config = self.state_dir / "vector.lkg.yaml"
        self.globals_config = self.state_dir / "vector-globals.yaml"
        self.applied_path = self.state_dir / "applied.json"
        self.rejected_path = self.state_dir / "rejected.json"
        self.vector_data_dir = self.state_dir / "vector-data"
        self.status_path = self.state_dir / "status.json"
        self.outbox_path = self.state_dir / "outbox.json"
        self.ledger_path = self.state_dir / "actions-seen.json"
        self.vector_pid_path = self.state_dir / "vector.pid"

    # --- directories -------------------------------------------------------------------------
    def ensure_dirs(self) -> None:
        """Create the state and config directories (0750) and check they are writable."""
        for directory in (self.config_dir, self.state_dir, self.vector_data_dir):
            try:
                directory.mkdir(mode=0o750, parents=True, exist_ok=True)
            except OSError as exc:
                raise StateError(f"cannot create {directory}: {exc.strerror or exc}") from exc
            if not os.access(directory, os.W_OK | os.X_OK):
                raise StateError(f"{directory} is not writable by this user")
        for directory in (self.config_dir, self.state_dir):
            atomic.remove_stale_temps(directory)

    # --- identity and token ------------------------------------------------------------------
    def is_enrolled(self) -> bool:
        return self.identity_path.exists() and self.token_path.exists()

    def load_identity(self) -> Identity:
        data = atomic.read_json(self.identity_path)
        if data is None:
            raise NotEnrolled(f"not enrolled: {self.identity_path} does not exist")
        data = _require_dict(self.identity_path, data)
        try:
            return Identity(
                agent_id=str(data["agentId"]),
                group_id=str(data["groupId"]),
                api_url=str(data["apiUrl"]),
                enrolled_at=str(data.get("enrolledAt", "")),
            )
        except KeyError as exc:
            raise StateError(f"{self.identity_path} is corrupt: missing {exc.args[0]}") from None

    def save_enrolment(self, identity: Identity, token: str) -> None:
        """Store the token (0600, created with that mode) and then the identity."""
        if not token.startswith(TOKEN_PREFIX):
            raise StateError("the control plane returned an agent token without the AGT_ prefix")
        atomic.write_text(self.token_path, token + "\n", mode=0o600)
        atomic.write_json(
            self.identity_path,
            {
                "agentId": identity.agent_id,
                "groupId": identity.group_id,
                "apiUrl": identity.api_url,
                "enrolledAt": identity.enrolled_at,
            },
            mode=0o640,
        )

    def load_token(self) -> str:
        try:
            token = self.token_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise NotEnrolled(f"not enrolled: {self.token_path} does not exist") from None
        except OSError as exc:
            raise StateError(f"cannot read {self.token_path}: {exc.strerror or exc}") from exc
        if not token.startswith(TOKEN_PREFIX):
            raise StateError(f"{self.token_path} does not hold an AGT_ token")
        return token

    # --- applied config ----------------------------------------------------------------------
    def load_applied(self) -> AppliedConfig:
        """The applied record, reset to version 0 when the live file does not match its etag.

        A crash between the rename of a new config and the write of this record leaves the
        record one step behind the live file; re-fetching (since=0) heals it.
        """
        try:
            data = atomic.read_json(self.applied_path)
            if data is None:
                return AppliedConfig()
            data = _require_dict(self.applied_path, data)
            applied = AppliedConfig(
                version=int(data.get("version", 0)),
                etag=_optional_str(data.get("etag")),
                empty=bool(data.get("empty", False)),
                lkg_version=int(data.get("lkgVersion", 0)),
                lkg_etag=_optional_str(data.get("lkgEtag")),
            )
        except (StateError, ValueError, TypeError) as exc:
            self._set_aside(self.applied_path, exc)
            return AppliedConfig()
        if applied.empty or applied.etag is None:
            return applied
        live = self.read_live()
        if live is None or sha256_etag(live) != applied.etag:
            return AppliedConfig(lkg_version=applied.lkg_version, lkg_etag=applied.lkg_etag)
        return applied

    def save_applied(self, applied: AppliedConfig) -> None:
        atomic.write_json(
            self.applied_path,
            {
                "version": applied.version,
                "etag": applied.etag,
                "empty": applied.empty,
                "lkgVersion": applied.lkg_version,
                "lkgEtag": applied.lkg_etag,
            },
            mode=0o640,
        )

    def read_live(self) -> bytes | None:
        try:
            return self.live_config.read_bytes()
        except FileNotFoundError:
            return None

    def read_lkg(self) -> bytes | None:
        try:
            return self.lkg_config.read_bytes()
        except FileNotFoundError:
            return None

    def write_candidate(self, body: bytes) -> Path:
        atomic.write_bytes(self.candidate_config, body, mode=0o640)
        return self.candidate_config

    def promote_candidate(self) -> None:
        """Swap the validated candidate in as the live config by rename (never a missing path)."""
        try:
            os.replace(self.candidate_config, self.live_config)
        except OSError as exc:
            raise StateError(f"cannot install {self.live_config}: {exc.strerror or exc}") from exc
        atomic.fsync_dir(self.state_dir)

    def write_live(self, body: bytes) -> None:
        atomic.write_bytes(self.live_config, body, mode=0o640)

    def save_lkg(self, body: bytes) -> None:
        atomic.write_bytes(self.lkg_config, body, mode=0o640)

    # --- rejected config ---------------------------------------------------------------------
    def load_rejected(self) -> RejectedConfig | None:
        try:
            data = atomic.read_json(self.rejected_path)
            if data is None:
                return None
            data = _require_dict(self.rejected_path, data)
            return RejectedConfig(
                version=int(data["version"]),
                etag=str(data["etag"]),
                message=str(data["message"]),
                at=str(data["at"]),
            )
        except (StateError, KeyError, ValueError, TypeError) as exc:
            self._set_aside(self.rejected_path, exc)
            return None

    def _set_aside(self, path: Path, exc: Exception) -> None:
        """A corrupt record must not keep the agent from starting (systemd would restart it
        into the same failure forever): moved aside, logged, and started afresh. What it
        recorded is re-learned from the control plane on the next poll."""
        moved = atomic.quarantine(path)
        log.error("state.corrupt", path=str(path), moved_to=str(moved), error=str(exc))

    def save_rejected(self, rejected: RejectedConfig | None) -> None:
        if rejected is None:
            atomic.remove(self.rejected_path)
            return
        fields = asdict(rejected)
        atomic.write_json(self.rejected_path, fields, mode=0o640)
