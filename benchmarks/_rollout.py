"""The staged-rollout mode of ``fleet_scale.py --staged`` (SPEC §11.3, issue 13).

After the immediate change of the normal run, the same fleet gets the group's policy set to
``staged`` (``--phases``, ``--soak``, maxFailures 0) and two more changes:

1. a *healthy* change: every simulated agent keeps reporting ``health: healthy``. Measured: when
   each agent first held the new version (p50 / p99 / 100 %), when each phase passed, the total
   rollout time against the ideal (the sum of the soaks plus one poll interval per phase), and
   the server's latency per endpoint meanwhile;
2. a *bad* change: an agent holding it reports ``health: degraded`` (a sink failing) from its
   next heartbeat on. Measured: from that failing heartbeat to the rollout's ``halted`` (the
   generator watches the rollout's state every 0.1 s in the server's database, read-only: doing
   it through the admin API would cost the server what is measured), from the halt until every
   agent that got the bad version holds ``from`` again, and how many agents the rollout never
   admitted ever received the bad etag (must be 0), plus the latency per endpoint.

The simulated agents behave as the real one does: they poll ``since``/``If-None-Match`` every
poll interval, heartbeat every heartbeat interval, poll at once when a heartbeat answer is ahead
of what they hold, and take a lower version when served one (a rollback).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from typing import Any

from benchmarks._server import BenchServer, percentile

POLL_RESOLUTION = 0.1  # seconds between the generator's looks at the rollout's state


class Watch:
    """What the staged run needs to know per agent, beside the fleet's own ``SimAgent``."""

    def __init__(self) -> None:
        self.etags: dict[str, set[str]] = {}  # agent id -> every etag it was served
        self.bad_etag: str | None = None
        self.from_etag: str | None = None  # what the bad change's rollout rolls back to
        self.first_bad_beat: float | None = None  # loop time of the first degraded heartbeat
        self.back_on_from: dict[str, float] = {}  # agent id -> when it held `from` again


def beat_fields(watch: Watch, agent: Any) -> dict[str, Any]:
    """The health a simulated agent reports: degraded while it holds the bad change."""
    if watch.bad_etag is not None and agent.etag == watch.bad_etag:
        if watch.first_bad_beat is None:
            watch.first_bad_beat = time.monotonic()
        return {
            "health": {
                "state": "degraded",
                "reason": "sink out_bench: 41 request errors in 30 s (HTTP 403)",
                "since": "2026-01-01T00:00:00Z",
            }
        }
    return {"health": {"state": "healthy", "reason": None, "since": "2026-01-01T00:00:00Z"}}


def saw(watch: Watch, agent: Any) -> None:
    """After a 200: remember the etag, and when an agent that had the bad one is back."""
    seen = watch.etags.setdefault(agent.id, set())
    had_bad = watch.bad_etag is not None and watch.bad_etag in seen
    seen.add(agent.etag)
    if had_bad and agent.etag == watch.from_etag and agent.id not in watch.back_on_from:
        watch.back_on_from[agent.id] = time.monotonic()


async def _admin(pool: Any, server: BenchServer, method: str, path: str, body: Any = None) -> Any:
    headers = [("Authorization", f"Bearer {server.admin_token}"), ("X-LogPulse-Actor", "bench")]
    raw = None if body is None else json.dumps(body).encode()
    answer = await pool.request(method, "/api/v1/admin" + path, headers, raw)
    if answer.status >= 300:
        raise RuntimeError(f"{method} {path} answered HTTP {answer.status}: {answer.body[:200]!r}")
    return json.loads(answer.body)["data"] if answer.body else None


def _state(server: BenchServer, slug: str) -> str:
    """The group's latest rollout state, read from the server's database: watching it through
    the admin API ten times a second would cost the server what is being measured."""
    conn = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT r.state FROM rollouts r JOIN agent_groups g ON g.id = r.group_id"
            " WHERE g.slug = ? AND r.kind = 'config' ORDER BY r.created_at DESC LIMIT 1",
            (slug,),
        ).fetchone()
    finally:
        conn.close()
    return "" if row is None else str(row[0])


async def _wait_state(
    pool: Any,
    server: BenchServer,
    slug: str,
    states: tuple[str, ...],
    timeout: float,
) -> tuple[dict[str, Any], float]:
    """Wait for one of ``states``; then the rollout as the admin API shows it, and when."""
    deadline = time.monotonic() + timeout
    while _state(server, slug) not in states and time.monotonic() < deadline:
        await asyncio.sleep(POLL_RESOLUTION)
    seen = time.monotonic()
    return await _admin(pool, server, "GET", f"/groups/{slug}/rollout"), seen


def _seconds(stamp: str | None, t0_wall: float) -> float | None:
    if stamp is None:
        return None
    from datetime import datetime

    return round(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - t0_wall, 1)


async def run_staged(
    fleet: Any,
    server: BenchServer,
    pool: Any,
    group: dict[str, Any],
    source: dict[str, Any],
    watch: Watch,
    args: Any,
    measure: Any,
) -> dict[str, Any]:
    """The two staged changes on a running fleet; ``measure(name)`` opens a stats phase and
    returns a function that closes it and gives its summary."""
    slug = group["slug"]
    phases = [int(p) if p.isdigit() else p for p in args.phases.split(",")]
    policy = {"strategy": "staged", "phases": phases, "soakSeconds": args.soak, "maxFailures": 0}
    await _admin(pool, server, "PATCH", f"/groups/{slug}", {"rollout": policy})
    n = len(fleet.agents)
    result: dict[str, Any] = {"phases": phases, "soak_s": args.soak}

    # --- 1. the healthy change ------------------------------------------------------------
    close = measure("staged healthy")
    t0, t0_wall = time.monotonic(), time.time()
    await _admin(pool, server, "PATCH", f"/inputs/{source['id']}", {"indexOverride": "staged_ok"})
    rollout = await _admin(pool, server, "GET", f"/groups/{slug}/rollout")
    to = rollout["toVersion"]
    ideal = len(phases) * (args.soak + fleet.poll_interval)
    rollout, done = await _wait_state(pool, server, slug, ("completed", "halted"), ideal * 3 + 120)
    while time.monotonic() < done + fleet.poll_interval * 1.2 and not all(
        to in a.holds for a in fleet.agents
    ):
        await asyncio.sleep(POLL_RESOLUTION)
    times = sorted(a.holds[to] - t0 for a in fleet.agents if to in a.holds)
    result["healthy"] = {
        "state": rollout["state"],
        "to_version": to,
        "reached": len(times),
        "of": n,
        **{f"t{p}_s": _at(times, n, p) for p in (50, 99, 100)},
        "total_s": round(done - t0, 1),
        "ideal_s": ideal,
        "phase_passed_s": [_seconds(p["passedAt"], t0_wall) for p in rollout["phaseResults"]],
        "traffic": close(),
    }

    # --- 2. the bad change ----------------------------------------------------------------
    watch.from_etag = next(iter(a.etag for a in fleet.agents if a.applied == to), None)
    close = measure("staged bad")
    bad_t0 = time.monotonic()
    await _admin(pool, server, "PATCH", f"/inputs/{source['id']}", {"indexOverride": "staged_bad"})
    rollout = await _admin(pool, server, "GET", f"/groups/{slug}/rollout")
    bad_version = rollout["toVersion"]
    preview = await pool.request(
        "GET",
        f"/api/v1/admin/groups/{slug}/preview",
        [("Authorization", f"Bearer {server.admin_token}")],
    )
    watch.bad_etag = preview.headers["x-config-etag"]
    rollout, halted_at = await _wait_state(pool, server, slug, ("halted",), args.soak * 4 + 120)
    got_bad = [a.id for a in fleet.agents if watch.bad_etag in watch.etags.get(a.id, set())]
    deadline = time.monotonic() + fleet.poll_interval * 3
    while time.monotonic() < deadline and not all(i in watch.back_on_from for i in got_bad):
        await asyncio.sleep(POLL_RESOLUTION)
    back = [watch.back_on_from[i] - halted_at for i in got_bad if i in watch.back_on_from]
    admitted = rollout["counts"]["admitted"]
    failing = watch.first_bad_beat
    result["bad"] = {
        "state": rollout["state"],
        "to_version": bad_version,
        "reason": rollout["reason"],
        "admitted": admitted,
        "failing_heartbeat_to_halted_ms": (
            None if failing is None else round((halted_at - failing) * 1000, 1)
        ),
        "change_to_halted_s": round(halted_at - bad_t0, 2),
        "got_bad_version": len(got_bad),
        "back_on_from": len(back),
        "back_on_from_max_s": round(max(back), 2) if back else None,
        "back_on_from_p50_s": _round(percentile(back, 50)),
        "non_admitted_saw_bad_etag": len(set(got_bad) - _admitted(server, rollout["id"])),
        "traffic": close(),
    }
    return result


def _admitted(server: BenchServer, rollout_id: str) -> set[str]:
    """The agents the rollout admitted, read from the server's database (WAL: a reader beside
    the running server is fine)."""
    conn = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT agent_id FROM rollout_agents WHERE rollout_id = ? AND admitted_at IS NOT NULL",
            (rollout_id,),
        ).fetchall()
    finally:
        conn.close()
    return {row[0] for row in rows}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _at(times: list[float], n: int, pct: int) -> float | None:
    needed = max(1, -(-n * pct // 100))
    return round(times[needed - 1], 1) if len(times) >= needed else None


def render(staged: dict[str, Any]) -> list[str]:
    """The staged lines of ``fleet_scale.py``'s report."""
    h, b = staged["healthy"], staged["bad"]
    out = [
        f"    staged healthy change (phases {staged['phases']}, soak {staged['soak_s']} s):"
        f" {h['state']}; agents on the new version p50 {h['t50_s']} s, p99 {h['t99_s']} s,"
        f" 100 % {h['t100_s']} s; total {h['total_s']} s vs ideal {h['ideal_s']} s;"
        f" phases passed at {h['phase_passed_s']} s",
        _traffic_line("      during it", h["traffic"]),
        f"    staged bad change: {b['state']} {b['failing_heartbeat_to_halted_ms']} ms after the"
        f" failing heartbeat; {b['back_on_from']}/{b['got_bad_version']} admitted agent(s) back"
        f" on `from` within {b['back_on_from_max_s']} s of the halt; non-admitted agents that"
        f" saw the bad etag: {b['non_admitted_saw_bad_etag']}",
        _traffic_line("      during it", b["traffic"]),
    ]
    return out


def _traffic_line(label: str, traffic: dict[str, Any]) -> str:
    parts = [
        f"{key} p99 {ep['latency_p99_ms']} ms"
        for key, ep in sorted(traffic["endpoints"].items())
        if not key.startswith(("PATCH", "GET /api/v1/admin"))
    ]
    return f"{label}: {traffic['requests_per_second']:.0f} req/s; " + ", ".join(parts)
