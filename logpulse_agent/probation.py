"""The agent's side of upgrade probation (SPEC 11.4): promote itself, report the outcome.

After a switch of ``/opt/logpulse-agent/current`` the root watcher
(``systemd/logpulse-agent-probation``) keeps the new release on probation and tells the agent
about it in ``state_dir/upgrade-probation``, a file root writes with the agent's own uid::

    state=active|promoted|rolled-back|kept
    id=<probation id>
    version=<the release on probation, X.Y.Z>
    previous=<the release a rollback returns to>
    until=<unix seconds: the window's end as root last estimated it>
    reason=<one line: why it was rolled back (or kept) — empty otherwise>

The agent answers with one thing, ``state_dir/upgrade-promoted``: the line ``VERSION ID``,
written once the agent running that version has had a ``2xx`` heartbeat reporting Vector
running (or its config is ``{}``). That is a promotion and nothing more: root decides at the end
of the window, and a release that keeps restarting is rolled back promoted or not. Nothing the
agent writes makes root run anything.

The in-flight upgrade's result waits for root's verdict (:func:`verdict`): the new agent holds
its ``done`` while the release is on probation; the old agent, restarted by a rollback, reports
``failed`` with root's reason. Everything here but :class:`Promoter` and the two small readers
is pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

import structlog

from logpulse_agent import atomic
from logpulse_agent.errors import StateError

log = structlog.get_logger(__name__)

VIEW_FILE = "upgrade-probation"
PROMOTION_FILE = "upgrade-promoted"
STATES = frozenset({"active", "promoted", "rolled-back", "kept"})
MAX_VIEW_BYTES = 4096
_VERSION = re.compile(r"\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?", re.ASCII)
_ID = re.compile(r"[0-9A-Za-z-]{1,64}", re.ASCII)
_UNTIL = re.compile(r"\d{1,12}", re.ASCII)


@dataclass(frozen=True)
class ProbationView:
    """What root told the agent about the probation of ``version`` (see the module docstring)."""

    state: str
    probation_id: str
    version: str
    previous: str
    until: int | None
    reason: str

    def promotion(self) -> str:
        """The line the agent writes to promote this release in this probation."""
        return f"{self.version} {self.probation_id}\n"


def parse_view(text: str) -> ProbationView | None:
    """The view in ``text``; None unless it is exactly the documented shape (unknown keys are
    ignored, a known one with a bad value makes the whole view unknown)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key not in fields:
            fields[key] = value
    state, version, previous = fields.get("state"), fields.get("version"), fields.get("previous")
    probation_id, until = fields.get("id", ""), fields.get("until", "")
    if state not in STATES or not _ID.fullmatch(probation_id):
        return None
    if version is None or previous is None:
        return None
    if not _VERSION.fullmatch(version) or not _VERSION.fullmatch(previous):
        return None
    reason = " ".join(fields.get("reason", "").split())[:300]
    return ProbationView(
        state=state,
        probation_id=probation_id,
        version=version,
        previous=previous,
        until=int(until) if _UNTIL.fullmatch(until) else None,
        reason=reason,
    )


def read_view(state_dir: Path) -> ProbationView | None:
    """The view in ``state_dir``, or None when there is none (or it cannot be read)."""
    try:
        raw = atomic.read_bytes(Path(state_dir) / VIEW_FILE)
    except StateError:
        return None
    if raw is None or len(raw) > MAX_VIEW_BYTES:
        return None
    return parse_view(raw.decode("utf-8", errors="replace"))


# --- promotion ----------------------------------------------------------------------------------


def should_promote(
    view: ProbationView | None,
    running_version: str,
    *,
    vector_running: bool,
    config_empty: bool,
) -> bool:
    """Promote after a ``2xx`` heartbeat? Only the release on probation (this probation still
    active) does, and only with Vector running unless the group's config is ``{}``."""
    if view is None or view.state != "active":
        return False
    if running_version.removeprefix("v") != view.version:
        return False
    return vector_running or config_empty


class Promoter:
    """Writes ``upgrade-promoted`` once per probation, after a heartbeat that qualifies."""

    def __init__(self, state_dir: Path, running_version: str) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / PROMOTION_FILE
        self.running_version = running_version

    def after_heartbeat(self, *, vector_running: bool, config_empty: bool) -> bool:
        """Called after each ``2xx`` heartbeat; True when this call promoted the release.

        Never raises: a promotion that cannot be written is logged and tried again at the next
        heartbeat (without one, root rolls back at the end of the window).
        """
        try:
            view = read_view(self.state_dir)
            if view is None or not should_promote(
                view, self.running_version, vector_running=vector_running, config_empty=config_empty
            ):
                return False
            line = view.promotion()
            if atomic.read_bytes(self.path) == line.encode():
                return False
            atomic.write_text(self.path, line, mode=0o640)
        except (StateError, OSError) as exc:
            log.warning("upgrade.promotion_failed", error=str(exc))
            return False
        log.info(
            "upgrade.promoted",
            version=view.version,
            probation_id=view.probation_id,
            until=_iso(view.until),
        )
        return True


# --- the in-flight upgrade's result --------------------------------------------------------------


class _Wait:
    def __repr__(self) -> str:
        return "WAIT"


WAIT: Final = _Wait()


def verdict(
    view: ProbationView | None, to_version: str, running_version: str
) -> _Wait | str | None:
    """What probation says about an in-flight upgrade to ``to_version``.

    :data:`WAIT` while the agent runs that release and root has not decided (or has rolled
    back and the restart onto the old release is still to come); the error of a ``failed``
    result once root rolled back (or had to keep a release that failed); None when probation
    has nothing to say (no probation of that version, or it passed): the usual rules apply.
    """
    running = running_version.removeprefix("v")
    if view is None or view.version != to_version.removeprefix("v"):
        return None
    if view.state == "active":
        return WAIT if running == view.version else None
    if view.state == "rolled-back":
        if running == view.version:
            return WAIT
        return f"{view.reason or 'probation failed'}; rolled back from {view.version} to {running}"
    if view.state == "kept":
        return view.reason or f"probation of {view.version} failed"
    return None


def forget_finished(state_dir: Path) -> None:
    """Remove a view whose probation is over (its outcome was reported, or a new upgrade
    starts): a stale outcome must never be read as the outcome of a later upgrade."""
    view = read_view(state_dir)
    if view is None or view.state != "active":
        try:
            atomic.remove(Path(state_dir) / VIEW_FILE)
        except StateError as exc:
            log.warning("upgrade.probation_view_unremovable", error=str(exc))


# --- status -------------------------------------------------------------------------------------


def status_fields(state_dir: Path) -> dict[str, Any] | None:
    """The probation in progress for ``status --json``, or None."""
    view = read_view(state_dir)
    if view is None or view.state != "active":
        return None
    return {"version": view.version, "previous": view.previous, "until": _iso(view.until)}


def status_line(fields: dict[str, Any] | None) -> str | None:
    """The line ``status`` prints for :func:`status_fields`."""
    if not fields:
        return None
    until = fields.get("until") or "the end of its window"
    return (
        f"upgrade to {fields.get('version')} on probation until {until} "
        f"(else back to {fields.get('previous')})"
    )


def _iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    try:
        moment = datetime.fromtimestamp(ts, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


__all__ = [
    "PROMOTION_FILE",
    "VIEW_FILE",
    "WAIT",
    "ProbationView",
    "Promoter",
    "forget_finished",
    "parse_view",
    "read_view",
    "should_promote",
    "status_fields",
    "status_line",
    "verdict",
]
