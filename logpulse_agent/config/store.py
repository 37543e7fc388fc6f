"""The config files config sync keeps: the live, candidate and last-known-good Vector configs,
and the records of what is applied (``applied.json``) and what was rejected (``rejected.json``).

Both records are re-learned from the control plane when lost, so a corrupt one is set aside and
the agent starts without it (:class:`~logpulse_agent.state.records.Recovery` RELEARN). Every
write is atomic: a crash leaves the old file or the new one, never a torn one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from logpulse_agent.errors import StateError
from logpulse_agent.state import atomic
from logpulse_agent.state.layout import Layout
from logpulse_agent.state.records import DataclassCodec, RecordFile


def sha256_etag(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class AppliedConfig:
    """The config version the agent reports as applied; ``empty`` means the group sent ``{}``.

    On disk ``{"version", "etag", "empty", "lkgVersion", "lkgEtag"}``.
    """

    version: int = 0
    etag: str | None = None
    empty: bool = False
    lkg_version: int = 0
    lkg_etag: str | None = None


@dataclass(frozen=True)
class RejectedConfig:
    """A version that failed validation, reload or ran into a crash loop: never retried as is.

    On disk ``{"version", "etag", "message", "at"}``.
    """

    version: int
    etag: str
    message: str
    at: str


class ConfigStore:
    """Reads and writes the files of the module docstring, at the paths of ``layout``."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._applied = RecordFile(layout.applied, DataclassCodec(AppliedConfig, name="applied"))
        self._rejected = RecordFile(
            layout.rejected, DataclassCodec(RejectedConfig, name="rejected config")
        )

    # --- records -----------------------------------------------------------------------------
    def load_applied(self) -> AppliedConfig:
        """The applied record, reset to version 0 when the live file does not match its etag.

        A crash between the rename of a new config and the write of this record leaves the
        record one step behind the live file; re-fetching (since=0) heals it.
        """
        applied = self._applied.load() or AppliedConfig()
        if applied.empty or applied.etag is None:
            return applied
        live = self.read_live()
        if live is None or sha256_etag(live) != applied.etag:
            return AppliedConfig(lkg_version=applied.lkg_version, lkg_etag=applied.lkg_etag)
        return applied

    def save_applied(self, applied: AppliedConfig) -> None:
        self._applied.save(applied)

    def load_rejected(self) -> RejectedConfig | None:
        return self._rejected.load()

    def save_rejected(self, rejected: RejectedConfig | None) -> None:
        if rejected is None:
            self._rejected.remove()
        else:
            self._rejected.save(rejected)

    # --- config files ------------------------------------------------------------------------
    def read_live(self) -> bytes | None:
        return _read(self.layout.live_config)

    def read_lkg(self) -> bytes | None:
        return _read(self.layout.lkg_config)

    def write_candidate(self, body: bytes) -> Path:
        atomic.write_bytes(self.layout.candidate_config, body, mode=0o640)
        return self.layout.candidate_config

    def promote_candidate(self) -> None:
        """Swap the validated candidate in as the live config by rename (never a missing path)."""
        live = self.layout.live_config
        try:
            os.replace(self.layout.candidate_config, live)
        except OSError as exc:
            raise StateError(f"cannot install {live}: {exc.strerror or exc}") from exc
        atomic.fsync_dir(live.parent)

    def write_live(self, body: bytes) -> None:
        atomic.write_bytes(self.layout.live_config, body, mode=0o640)

    def save_lkg(self, body: bytes) -> None:
        atomic.write_bytes(self.layout.lkg_config, body, mode=0o640)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
