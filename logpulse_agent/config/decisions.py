"""Pure decisions of config sync: what to do with an update, when a crash loop calls for rollback.

No I/O here; :mod:`logpulse_agent.config.sync` performs what these functions decide.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from logpulse_agent.config.store import AppliedConfig, RejectedConfig

# A new config is judged by how Vector behaves during this many poll intervals after it was
# applied (60 s at the default 10 s poll): CRASH_LOOP_EXITS unrequested exits inside the window
# roll it back; surviving the window makes it the last-known-good config.
CRASH_WINDOW_POLLS = 6.0
CRASH_WINDOW_MIN = 5.0  # never shorter: three Vector start-ups must fit into it
CRASH_LOOP_EXITS = 3


class Plan(enum.Enum):
    """What to do with a config the control plane sent."""

    SKIP_REJECTED = "skip-rejected"  # this exact version/etag already failed: don't retry it
    RECORD_ONLY = "record-only"  # same bytes under a new version number: nothing to reload
    STOP = "stop"  # body is `{}`: stop Vector, record the version as applied
    APPLY = "apply"  # validate, swap, reload/restart


def plan_update(
    version: int,
    etag: str,
    is_empty: bool,
    applied: AppliedConfig,
    rejected: RejectedConfig | None,
) -> Plan:
    """Decide what to do with config ``version``/``etag`` given what is applied and rejected."""
    if rejected is not None and rejected.etag == etag and rejected.version == version:
        return Plan.SKIP_REJECTED
    if is_empty:
        return Plan.STOP
    if applied.etag == etag and not applied.empty:
        return Plan.RECORD_ONLY
    return Plan.APPLY


@dataclass(frozen=True)
class Watch:
    """A freshly applied config under observation."""

    version: int
    etag: str
    since: float  # monotonic clock when it was applied


def crash_window(poll_interval: float) -> float:
    """How long a new config is watched: 60 s at the default poll, never under 5 s."""
    return max(CRASH_WINDOW_MIN, CRASH_WINDOW_POLLS * poll_interval)


def crash_loop(exits_since_apply: int) -> bool:
    """True when Vector exited often enough after an apply to blame the new config."""
    return exits_since_apply >= CRASH_LOOP_EXITS


def survived(watch: Watch, now: float, window: float, exits_since_apply: int) -> bool:
    """True when the watched config ran the whole window without a crash loop."""
    return now - watch.since >= window and not crash_loop(exits_since_apply)


class Standing(enum.Enum):
    """What a watched config is worth as a fallback once a newer config replaces it."""

    PROVEN = "proven"  # ran its whole window: the last-known-good config
    CLEAN = "clean"  # replaced inside its window, running and never exited: a fallback too
    FAILED = "failed"  # exited (or never came up) since it was applied: never returned to


def standing(
    watch: Watch, now: float, window: float, exits_since_apply: int, running: bool
) -> Standing:
    """Judge the watched config at the moment a newer one replaces it.

    A config that ran and never failed until it was replaced is a valid fallback, however
    short its run: the new config, not it, is what changed. One that Vector exited on even
    once, or that Vector is not running on, failed.
    """
    if survived(watch, now, window, exits_since_apply):
        return Standing.PROVEN
    if exits_since_apply == 0 and running:
        return Standing.CLEAN
    return Standing.FAILED


def retry_ceiling(poll_interval: float) -> float:
    """The longest wait between retries: 5 minutes at the default 10 s poll interval.

    Scaled with the poll interval so test and demo runs with short intervals back off
    proportionally instead of waiting real minutes.
    """
    return min(300.0, 30.0 * poll_interval)


def poll_cursor(applied: AppliedConfig, rejected: RejectedConfig | None) -> tuple[int, str | None]:
    """The ``since`` version and ``If-None-Match`` etag a poll sends (SPEC §5).

    Normally the applied config's. After a rejection, the rejected config's: it is the one the
    control plane served last, and the server answers 204 only while ``since`` is at least its
    current version *and* the etag matches, i.e. exactly while it still serves the rejected
    config, which would only be skipped again. Anything else it serves (a newer version, the
    previous one again after a rollout halted, another group's after a move) has another etag
    and comes as a 200.
    """
    if rejected is not None:
        return rejected.version, rejected.etag
    return applied.version, applied.etag


def should_poll_now(heartbeat_version: int | None, cursor_version: int) -> bool:
    """A heartbeat saying the group is ahead of the version we poll with (the applied one, or
    the rejected one) triggers an immediate poll."""
    return heartbeat_version is not None and heartbeat_version > cursor_version


def rejection_withdrawn(
    served_version: int | None, applied: AppliedConfig, rejected: RejectedConfig | None
) -> bool:
    """The control plane no longer offers the version we rejected: it serves (in its heartbeat
    answer) the version we hold, and that is another one. A staged rollout that halted, was
    aborted or replaced serves its agents the previous version again (SPEC §11.3); the error
    about the withdrawn version is then no longer pending."""
    return (
        rejected is not None
        and served_version is not None
        and served_version == applied.version
        and served_version != rejected.version
    )
