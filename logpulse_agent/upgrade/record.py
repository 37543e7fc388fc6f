"""What an upgrade is on disk and on the wire: the target version, and the in-flight record.

On disk, ``state_dir/upgrade-inflight.json`` (mode 0600)::

    {"actionId", "fromVersion", "toVersion", "startedAt", "pid", "pidCreateTime", "unit"}

``pid``/``pidCreateTime`` identify a detached installer (a reused pid is not mistaken for it),
``unit`` a systemd one; all three are null until the installer has been launched. A corrupt
record is moved aside and logged (``upgrade.inflight_corrupt``): the upgrade's result is then
left to the server's deadline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from logpulse_agent.clock import utc_now
from logpulse_agent.errors import ActionError
from logpulse_agent.redact import redact
from logpulse_agent.state.records import DataclassCodec, RecordFile

# The SPEC's pattern, used with fullmatch and ASCII-only \d: a trailing newline or non-ASCII
# digits do not slip through ``$``/``\d`` the way they would with re.match.
VERSION_RE = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$", re.ASCII)
MAX_VERSION_LEN = 64


def parse_target_version(payload: object) -> str:
    """The ``targetVersion`` of an ``upgrade_agent`` payload without its leading ``v``.

    Raises :class:`ActionError` with a one-line message when the payload is not an object, the
    field is missing or not a string, or the string is not strictly ``[v]X.Y.Z[-pre][+build]``:
    the value reaches a shell, so nothing else gets through.
    """
    if not isinstance(payload, dict):
        raise ActionError("upgrade_agent payload must be an object with a 'targetVersion'")
    if "targetVersion" not in payload:
        raise ActionError("upgrade_agent payload has no 'targetVersion'")
    value = payload["targetVersion"]
    if not isinstance(value, str):
        raise ActionError("'targetVersion' must be a string such as \"0.4.2\"")
    if len(value) > MAX_VERSION_LEN or not VERSION_RE.fullmatch(value):
        shown = redact(value[:40]) + ("…" if len(value) > 40 else "")
        raise ActionError(f"'targetVersion' {shown!r} is not a version such as 0.4.2")
    return normalize_version(value)


def normalize_version(version: str) -> str:
    """``version`` without one leading ``v``: ``v0.4.2`` and ``0.4.2`` compare equal."""
    return version[1:] if version.startswith("v") else version


@dataclass(frozen=True)
class InFlightUpgrade:
    """An upgrade that was started and has no final result yet (versions without ``v``)."""

    action_id: str
    from_version: str
    to_version: str
    started_at: str  # RFC 3339 UTC
    pid: int | None = None
    pid_create_time: float | None = None
    unit: str | None = None


def inflight_file(path: Path, now: Callable[[], datetime] = utc_now) -> RecordFile[InFlightUpgrade]:
    """The in-flight record at ``path`` (``Layout.upgrade_inflight``)."""
    return RecordFile(
        path,
        DataclassCodec(InFlightUpgrade, name="in-flight upgrade record"),
        mode=0o600,
        event="upgrade.inflight_corrupt",
        now=now,
    )
