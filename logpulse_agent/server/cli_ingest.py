"""``logpulse-server`` commands for the HEC ingest: ``tail GROUP`` and ``ingest …``."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from logpulse_agent.server.admin_client import (
    Session,
    admin_command,
    parse_duration,
    printable,
    table,
)


def event_line(e: dict[str, Any]) -> str:
    """One recent event as a line: when, from where, routed how, and the event itself (control
    characters shown escaped: an event cannot drive the terminal)."""
    event = e["event"]
    body = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
    who = e["host"] or e["agentId"][:8]
    where = f"{e['index']}/{e['sourcetype']}/{e['source']}"
    return printable(f"{e['receivedAt']} {who} {where} {body}")


@admin_command(None, "tail")
@click.argument("group_ref", metavar="GROUP")
@click.option("-n", "--lines", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events (Ctrl-C stops).")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.1))
@click.option("--polls", type=click.IntRange(min=1), hidden=True)  # tests: stop after N polls
def tail(
    s: Session, group_ref: str, lines: int, follow: bool, interval: float, polls: int | None
) -> None:
    """The group's most recent events as the ingest received them (the server keeps the last
    200 per group in memory). --json prints one JSON object per line."""
    after, done = 0, 0
    try:
        while True:
            events = s.call("GET", f"/groups/{group_ref}/events", after=after, limit=lines)
            for e in events:
                click.echo(json.dumps(e, ensure_ascii=False) if s.as_json else event_line(e))
            if events:
                after = events[-1]["seq"]
            done += 1
            if not follow or (polls is not None and done >= polls):
                break
            lines = 1000
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


@click.group()
def ingest() -> None:
    """The HEC ingest: status, pause/resume, totals."""


def _status_text(st: dict[str, Any]) -> str:
    refused = ", ".join(f"{k}={v}" for k, v in st["requests"]["refused"].items()) or "none"
    state = f"paused until {st['pausedUntil']} (answering 503)" if st["paused"] else "accepting"
    return f"ingest {state}; {st['requests']['accepted']} requests accepted; refused: {refused}"


@admin_command(ingest, "status")
def ingest_status(s: Session) -> None:
    st = s.call("GET", "/ingest")
    s.emit(st, _status_text(st))


@admin_command(ingest, "pause")
@click.option("--for", "duration", default="60s", show_default=True, help="30s, 5m, 1h (≤ 1 day).")
def ingest_pause(s: Session, duration: str) -> None:
    """Answer 503 "Server is busy" to every sink for a while: Vector retries, nothing is lost."""
    seconds = parse_duration(duration)
    if not 0 < seconds <= 86400:
        raise click.BadParameter("must be between 1 second and 1 day", param_hint="--for")
    st = s.call("POST", "/ingest/pause", {"seconds": seconds})
    s.emit(st, _status_text(st))


@admin_command(ingest, "resume")
def ingest_resume(s: Session) -> None:
    st = s.call("POST", "/ingest/resume")
    s.emit(st, _status_text(st))


@admin_command(ingest, "totals")
@click.option("--by", default="index,sourcetype,source", show_default=True,
              help="Comma-separated: group, agent, index, sourcetype, source.")  # fmt: skip
@click.option("--group", "group_ref", help="Only this group (id or slug).")
@click.option("--agent", "agent_id", help="Only this agent.")
def ingest_totals(s: Session, by: str, group_ref: str | None, agent_id: str | None) -> None:
    """Events and bytes (uncompressed) counted, most events first."""
    rows = s.call("GET", "/ingest/totals", by=by, group=group_ref, agent=agent_id)
    dims = [d for d in by.split(",") if d]
    keys = {"group": "groupId", "agent": "agentId"}
    headers = [d.upper() for d in dims] + ["EVENTS", "BYTES", "LAST EVENT"]
    lines = [[r.get(keys.get(d, d)) for d in dims] + [r["events"], r["bytes"], r["lastEventAt"]]
             for r in rows]  # fmt: skip
    s.emit(rows, table(headers, lines) if rows else "no events counted")
