"""The config files config sync keeps: the live, candidate and fallback Vector configs, and the
records of what is applied (``applied.json``) and what was rejected (``rejected.json``).

Two fallbacks, newest first when config sync rolls back a crash loop:

    vector.superseded.yaml  a config that ran without failing until a newer one replaced it
                            before its crash window ended (watched again when rolled back to)
    vector.lkg.yaml         the last config that ran a whole crash window (last-known-good)

Both records are re-learned from the control plane when lost, so a corrupt one is set aside and
the agent starts without it (:class:`~logpulse_agent.state.records.Recovery` RELEARN). Every
write is atomic: a crash leaves the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from logpulse_agent.controlplane.protocol import config_etag
from logpulse_agent.errors import StateError
from logpulse_agent.state import atomic
from logpulse_agent.state.layout import Layout
from logpulse_agent.state.records import DataclassCodec, RecordFile


@dataclass(frozen=True)
class AppliedConfig:
    """The config version the agent reports as applied; ``empty`` means the group sent ``{}``.

    ``lkg_*`` name the last-known-good config, ``superseded_*`` the newer fallback (module
    docstring); version 0 and etag None where there is none. On disk ``{"version", "etag",
    "empty", "lkgVersion", "lkgEtag", "supersededVersion", "supersededEtag"}`` (0.1.0 wrote
    none of the last two).
    """

    version: int = 0
    etag: str | None = None
    empty: bool = False
    lkg_version: int = 0
    lkg_etag: str | None = None
    superseded_version: int = 0
    superseded_etag: str | None = None


@dataclass(frozen=True)
class RejectedConfig:
    """A version that failed validation, reload or ran into a crash loop: never retried as is.

    It is the config the control plane served last, until it serves another one. A fallback
    that crash-looped after it was rolled back to adds its etag to ``crashed_etags`` (and a
    sentence to ``message``): it is never started again, not even from disk after a restart.
    On disk ``{"version", "etag", "message", "at", "crashedEtags"}`` (0.1.0 wrote no
    ``crashedEtags``).
    """

    version: int
    etag: str
    message: str
    at: str
    crashed_etags: tuple[str, ...] = ()

    def failed(self, etag: str) -> bool:
        """Whether the config with ``etag`` is this one or one of its crashed fallbacks."""
        return etag == self.etag or etag in self.crashed_etags


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
        if live is None or config_etag(live) != applied.etag:
            return replace(applied, version=0, etag=None)
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

    def read_superseded(self) -> bytes | None:
        return _read(self.layout.superseded_config)

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

    def save_superseded(self, body: bytes) -> None:
        atomic.write_bytes(self.layout.superseded_config, body, mode=0o640)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
