"""Time in one place: the UTC wall clock, RFC 3339 text, and reading that text back.

Wall-clock time is for what people and other programs read: timestamps in ``status.json``, in
records and in action results, always ``YYYY-MM-DDTHH:MM:SSZ``. Intervals and deadlines use the
monotonic clock (``time.monotonic``, the event loop's ``time()``), which a clock step cannot
move. Every component takes its clocks as parameters with these as defaults, so tests inject
them instead of waiting.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """The current wall-clock time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def rfc3339(when: datetime | float) -> str:
    """``when`` (an aware datetime or Unix seconds) as ``2026-01-01T12:00:00Z``, whole seconds."""
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(when, timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_rfc3339(value: object) -> datetime | None:
    """An RFC 3339 / ISO 8601 timestamp as an aware datetime (naive means UTC); None when
    ``value`` is not a string of that form."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
