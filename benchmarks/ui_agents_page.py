"""How long the fleet pages' Agents table takes with a large fleet (SPEC §11.5, issue 14).

    .venv/bin/python benchmarks/ui_agents_page.py --agents 1000,10000 --requests 40 --json ui.json

For each N, a fresh database is filled through the server's own domain functions (enrolment,
heartbeats, revocation: 3 groups, about 80 % online, 5 % revoked, 10 % behind on their config
with an error), then a real ``logpulse-server`` process serves it on 127.0.0.1 and a client that
signed in through the form requests each scenario ``--requests`` times, one at a time, after a
warm-up. Reported per scenario: wall time from sending the request to the last byte of the
answer (median, p95, max), the server process's CPU time per request (user + system: what the
page costs, less disturbed by other load than wall time) and the page size. Scenarios: the
first, a middle and the last page (50 rows), 200 rows per page, group + status filters, a host
search, the self-refresh fragment, and the bulk-upgrade review that resolves "every agent" on
the server.

Everything runs on this machine (client and server share its cores); figures are medians of a
run on a shared machine, to be compared with each other rather than read as absolutes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._server import BenchServer, machine, percentile  # noqa: E402
from logpulse_agent.server import agents, enrolment, groups, inputs  # noqa: E402
from logpulse_agent.server.agents import AgentContext  # noqa: E402
from logpulse_agent.server.store import Store  # noqa: E402

GROUPS = ("web", "db", "cache")
PER_PAGE = 50


def seed(db: Path, count: int, now: float) -> None:
    """``count`` agents in three groups, in the mix the module docstring describes."""
    store = Store(db)
    with store.write() as conn:
        ids = {}
        for slug in GROUPS:
            group = groups.create(conn, slug.title(), slug, now)
            demo = {"type": "demo_logs", "name": "demo", "options": {"format": "json"}}
            inputs.create(conn, group["id"], demo, now)
            ids[slug] = (group["id"], 2)
        _, raw = enrolment.mint_token(
            conn, "web", ttl_seconds=3600, max_uses=count, label="bench", now=now
        )
        for n in range(count):
            slug = GROUPS[n % len(GROUPS)]
            body = {
                "bootstrapToken": raw,
                "hostname": f"{slug}-{n:05d}.prod.example.com",
                "platform": "linux",
                "os": "Debian 12",
                "kernel": "6.1.0",
                "agentVersion": "0.4.1",
                "vectorVersion": "0.57.0",
                "groupSlug": slug,
            }
            enrolled = enrolment.enrol(conn, body, now)
            if n % 20 == 7:
                agents.revoke(conn, enrolled.agent_id, now)
                continue
            if n % 10 == 3:
                continue  # never sent a heartbeat: offline
            behind = n % 10 == 5
            version = ids[slug][1]
            error = {"configVersion": version, "message": "vector validate: bad", "at": None}
            beat = {
                "agentVersion": "0.4.1",
                "vectorVersion": "0.57.0",
                "appliedConfigVersion": version - 1 if behind else version,
                "vectorRunning": True,
                "vectorUptimeSeconds": 600,
                "configError": error if behind else None,
            }
            context = AgentContext(enrolled.agent_id, ids[slug][0], "linux", version, False)
            agents.record_heartbeat(conn, context, beat, now - (n % 60))
    store.close()


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU the server process has used (less sensitive to a busy machine than
    wall time: another process's load delays an answer but does not add to this)."""
    times = process.cpu_times()
    return float(times.user + times.system)


def sign_in(client: httpx.Client, token: str) -> str:
    form = client.get("/ui/signin").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    answer = client.post("/ui/signin", data={"csrf": csrf.group(1), "token": token})
    assert answer.status_code == 303, answer.text[:500]
    page = client.get("/ui/agents").text
    session = re.search(r'name="csrf" value="([^"]+)"', page)
    assert session
    return session.group(1)


def scenarios(count: int) -> list[tuple[str, str, str, dict[str, str] | None]]:
    """``(name, method, path, form)``; the page numbers follow the fleet size."""
    last = max(1, -(-count // PER_PAGE))
    return [
        ("first page", "GET", "/ui/agents", None),
        ("middle page", "GET", f"/ui/agents?page={max(1, last // 2)}", None),
        ("last page", "GET", f"/ui/agents?page={last}", None),
        ("200 per page", "GET", "/ui/agents?per=200", None),
        ("group + online", "GET", "/ui/agents?group=db&status=online", None),
        ("host search", "GET", "/ui/agents?host=00042", None),
        ("refresh fragment", "GET", "/ui/agents?fragment=1", None),
        ("bulk review, whole fleet", "POST", "/ui/upgrade/review", {"mode": "filter"}),
    ]


def run_one(count: int, requests: int, warmup: int, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    seed(workdir / "server.db", count, time.time())
    seeded = time.monotonic() - started
    server = BenchServer(workdir)
    process = psutil.Process(server.pid)
    try:
        with httpx.Client(base_url=server.url, timeout=60.0) as client:
            csrf = sign_in(client, server.admin_token)
            figures: dict[str, Any] = {}
            for name, method, path, form in scenarios(count):
                data = None if form is None else {**form, "csrf": csrf}
                times: list[float] = []
                size = 0
                cpu_before = 0.0
                for n in range(warmup + requests):
                    if n == warmup:
                        cpu_before = cpu_seconds(process)
                    begin = time.perf_counter()
                    answer = client.request(method, path, data=data)
                    elapsed = time.perf_counter() - begin
                    assert answer.status_code == 200, (name, answer.status_code, answer.text[:300])
                    size = len(answer.content)
                    if n >= warmup:
                        times.append(elapsed * 1000)
                cpu = (cpu_seconds(process) - cpu_before) / requests
                figures[name] = {
                    "server_cpu_ms": round(cpu * 1000, 2),
                    "median_ms": round(statistics.median(times), 2),
                    "p95_ms": round(percentile(times, 95) or 0.0, 2),
                    "max_ms": round(max(times), 2),
                    "bytes": size,
                }
    finally:
        server.stop()
    return {"agents": count, "seed_seconds": round(seeded, 1), "scenarios": figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="10000", help="comma-separated fleet sizes")
    parser.add_argument("--requests", type=int, default=40, help="measured requests per scenario")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sizes = [int(part) for part in args.agents.split(",") if part.strip()]
    results = []
    workdir = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    try:
        for count in sizes:
            result = run_one(count, args.requests, args.warmup, workdir / str(count))
            results.append(result)
            print(f"\n{count:,} agents (seeded in {result['seed_seconds']} s)")
            print(
                f"  {'scenario':<26} {'median':>9} {'p95':>9} {'max':>9}"
                f" {'server CPU':>11} {'size':>9}"
            )
            for name, f in result["scenarios"].items():
                print(
                    f"  {name:<26} {f['median_ms']:>7.1f}ms {f['p95_ms']:>7.1f}ms"
                    f" {f['max_ms']:>7.1f}ms {f['server_cpu_ms']:>9.1f}ms"
                    f" {f['bytes'] / 1024:>7.1f}KiB"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = {"machine": machine(), "requests": args.requests, "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
