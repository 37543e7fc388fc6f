"""How long the server's event loop waits on SQLite commits: WAL checkpoints inline or on a thread.

    .venv/bin/python benchmarks/wal_stalls.py --agents 10000 --seconds 20

Runs the heartbeat's real write transaction (``agents.record_heartbeat`` through
``Store.write``) against a fresh database of N enrolled agents, at the rate N agents beat (one
per 30 s each), and times each transaction as the event loop would wait for it. Twice: with
SQLite's automatic checkpoint (every 1,000 WAL pages, inside whichever commit crossed it, with
its fsync) and with :class:`~logpulse_agent.server.checkpointer.Checkpointer` doing it on a
thread. Reports p50 / p99 / p99.9 / max and how many transactions took over 5 and 20 ms: those
stall every request queued behind them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._server import machine, percentile  # noqa: E402
from logpulse_agent.server import agents  # noqa: E402
from logpulse_agent.server.checkpointer import Checkpointer  # noqa: E402
from logpulse_agent.server.store import Store  # noqa: E402

BEAT = {
    "agentVersion": "0.1.0",
    "vectorVersion": "0.57.0",
    "appliedConfigVersion": 2,
    "vectorRunning": True,
    "vectorUptimeSeconds": 60,
    "configError": None,
}


def _fill(store: Store, n: int) -> list[agents.AgentContext]:
    now = time.time()
    with store.write() as conn:
        conn.execute(
            "INSERT INTO agent_groups (id, name, slug, config_version, created_at, updated_at)"
            " VALUES ('g', 'g', 'g', 2, ?, ?)",
            (now, now),
        )
        conn.executemany(
            "INSERT INTO agent_registrations (id, group_id, token_hash, hostname, platform,"
            " enrolled_at) VALUES (?, 'g', ?, ?, 'linux', ?)",
            [(f"{i:032x}", f"{i:064x}", f"sim-{i:05d}", now) for i in range(n)],
        )
    return [agents.AgentContext(f"{i:032x}", "g", "linux", 2, False) for i in range(n)]


def run(n: int, seconds: float, threaded: bool, workdir: Path) -> dict[str, Any]:
    store = Store(workdir / f"{'thread' if threaded else 'inline'}.db")
    fleet = _fill(store, n)
    wal = Checkpointer(store) if threaded else None
    if wal is not None:
        wal.start()
    rate = n / 30.0
    waits: list[float] = []
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        due = start + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        t = time.perf_counter()
        with store.write() as conn:
            agents.record_heartbeat(conn, fleet[i % n], BEAT, time.time())
        waits.append(time.perf_counter() - t)
        i += 1
    if wal is not None:
        wal.stop()
    store.close()
    ms = [w * 1000 for w in waits]
    return {
        "transactions": len(ms),
        "p50_ms": round(percentile(ms, 50) or 0, 3),
        "p99_ms": round(percentile(ms, 99) or 0, 3),
        "p999_ms": round(percentile(ms, 99.9) or 0, 3),
        "max_ms": round(max(ms), 3),
        "over_5ms": sum(m > 5 for m in ms),
        "over_20ms": sum(m > 20 for m in ms),
        "checkpoints_on_thread": wal.checkpoints if wal is not None else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating pairs (default 2)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {"inline": [], "thread": []}
    with tempfile.TemporaryDirectory(prefix="lp-wal-") as tmp:
        for r in range(args.rounds):
            for mode in ("inline", "thread"):
                workdir = Path(tmp) / str(r)
                workdir.mkdir(exist_ok=True)
                results[mode].append(run(args.agents, args.seconds, mode == "thread", workdir))
    print(f"machine: {machine()['nproc']} cores; {args.agents} agents beating every 30 s")
    for mode, runs in results.items():
        for res in runs:
            print(
                f"{mode:>7}: {res['transactions']} transactions, p50 {res['p50_ms']} ms,"
                f" p99 {res['p99_ms']} ms, p99.9 {res['p999_ms']} ms, max {res['max_ms']} ms,"
                f" >5 ms {res['over_5ms']}, >20 ms {res['over_20ms']}"
            )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
