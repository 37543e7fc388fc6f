"""The agent's side of upgrade probation (SPEC 11.4): root's view of it, and the promotion.

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
written by :class:`Promoter` once the agent running that version has had a ``2xx`` heartbeat
reporting Vector running (or its config is ``{}``). That is a promotion and nothing more: root
decides at the end of the window, and a release that keeps restarting is rolled back promoted
or not. Nothing the agent writes makes root run anything.

What the view means for an in-flight upgrade's result is one line of :mod:`.verdict`; the view
also feeds ``logpulse-agent status`` (:func:`status_fields`, :func:`status_line`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from logpulse_agent.clock import rfc3339
from logpulse_agent.errors import StateError
from logpulse_agent.state import atomic

log = structlog.get_logger(__name__)

STATES = frozenset({"active", "promoted", "rolled-back", "kept"})
MAX_VIEW_BYTES = 4096
_VERSION = re.compile(r"\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?", re.ASCII)
_ID = re.compile(r"[0-9A-Za-z-]{1,64}", re.ASCII)
_UNTIL = re.compile(r"\d{1,11}", re.ASCII)  # unix seconds before the year 5000


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
    return ProbationView(
        state=state,
        probation_id=probation_id,
        version=version,
        previous=previous,
        until=int(until) if _UNTIL.fullmatch(until) else None,
        reason=" ".join(fields.get("reason", "").split())[:300],
    )


def read_view(path: Path) -> ProbationView | None:
    """The view in ``path`` (``Layout.upgrade_probation``); None when there is none or it
    cannot be read."""
    try:
        raw = atomic.read_bytes(path)
    except StateError:
        return None
    if raw is None or len(raw) > MAX_VIEW_BYTES:
        return None
    return parse_view(raw.decode("utf-8", errors="replace"))


def forget_finished(path: Path) -> None:
    """Remove a view whose probation is over (its outcome was reported, or a new upgrade
    starts): a stale outcome must never be read as the outcome of a later upgrade."""
    view = read_view(path)
    if view is None or view.state != "active":
        try:
            atomic.remove(path)
        except StateError as exc:
            log.warning("upgrade.probation_view_unremovable", error=str(exc))


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

    def __init__(self, view_path: Path, promotion_path: Path, running_version: str) -> None:
        self.view_path = Path(view_path)
        self.path = Path(promotion_path)
        self.running_version = running_version

    def after_heartbeat(self, *, vector_running: bool, config_empty: bool) -> bool:
        """Called after each ``2xx`` heartbeat; True when this call promoted the release.

        Never raises: a promotion that cannot be written is logged and tried again at the next
        heartbeat (without one, root rolls back at the end of the window).
        """
        try:
            view = read_view(self.view_path)
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


# --- status -------------------------------------------------------------------------------------


def status_fields(path: Path) -> dict[str, Any] | None:
    """The probation in progress for ``status --json``, or None."""
    view = read_view(path)
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
    return None if ts is None else rfc3339(ts)
