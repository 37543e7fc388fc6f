"""Ingest throughput of one reference server: Vector-sized gzip batches from many agents (§11.2).

    .venv/bin/python benchmarks/ingest_throughput.py --agents 100 --json ingest.json

Against a fresh ``logpulse-server`` on 127.0.0.1 (its own SQLite file), with ``--agents``
agents enrolled for real, each sending with its own token and keep-alive connection what
Vector's ``splunk_hec_logs`` sink sends at full load: ``POST /services/collector/event``,
``Content-Encoding: gzip`` (level 6, flate2's default), a body of concatenated HEC event objects
of ``--batch-bytes`` uncompressed (1,000,000: the sink's default ``batch.max_bytes``). Events
are access-log-like JSON lines with varied fields (they compress about 5:1, like real logs, not
50:1 like repeated text); ``--variants`` distinct batches are built before the clock starts.

Two phases, after ``--warmup`` seconds each:

1. **saturation** (``--duration`` s): every agent sends its next batch as soon as the last one
   was answered. Reports accepted events/s, and events per second of *server CPU* — the
   "events/s per server core" figure, independent of how many cores the machine gave it.
2. **target rate** (``--duration`` s): the agents together offer ``--rate`` events/s (each one
   batch every ``agents * events per batch / rate`` s, start offsets spread), the load the
   target is stated for. Reports p50/p99 latency per batch (send to answer), server CPU.

Both report server RSS (max). The counts the server shows afterwards are checked against what
the agents had accepted. The generator shares the machine with the server (and, on shared
machines, with other work: ``other`` CPU), so wall-clock figures are lower bounds; the per-CPU
figure is the one to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._http import RawPool  # noqa: E402
from benchmarks._server import BenchServer, machine, percentile  # noqa: E402
from benchmarks.fleet_scale import Sampler  # noqa: E402

TARGET_EVENTS_PER_CORE = 50_000
TARGET_P99_MS = 250.0
PATH = "/services/collector/event"
WORDS = [
    "auth", "deploy", "etl", "scraper", "cron", "ingress", "egress", "alerter", "fwd", "cache",
    "user", "order", "cart", "login", "payment", "search", "api", "gateway", "worker", "queue",
]  # fmt: skip


def event_line(rng: random.Random, n: int) -> bytes:
    """One HEC event object as Vector's encoder writes it, with realistic variety."""
    message = {
        "host": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "user-identifier": f"{rng.choice(WORDS)}_{rng.randrange(10_000)}",
        "datetime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(1.75e9 + n)),
        "method": rng.choice(("GET", "POST", "PUT", "DELETE")),
        "request": f"/{rng.choice(WORDS)}/{rng.choice(WORDS)}/{rng.getrandbits(128):032x}",
        "protocol": "HTTP/1.1",
        "status": str(rng.choice((200, 200, 200, 201, 301, 404, 500, 503))),
        "bytes": rng.randrange(100, 50_000),
        "referer": f"https://{rng.choice(WORDS)}.example.com/{rng.randrange(1000)}",
        "latency_ms": round(rng.random() * 900, 3),
    }
    envelope = {
        "event": {
            "message": json.dumps(message, separators=(",", ":")),
            "service": "vector",
            "source_type": "demo_logs",
        },
        "fields": {},
        "time": round(1.75e9 + n / 1000, 3),
        "index": "main",
        "source": "logpulse-agent",
        "sourcetype": "agent_demo_logs",
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def build_batch(rng: random.Random, size: int) -> tuple[bytes, int, int]:
    """(gzip body, events, uncompressed bytes) of one batch closed at ``size`` bytes, as the
    sink's batcher closes it (the event that would cross the limit opens the next batch)."""
    parts, total, n = [], 0, 0
    while True:
        line = event_line(rng, n)
        if total + len(line) > size and parts:
            break
        parts.append(line)
        total += len(line)
        n += 1
    return gzip.compress(b"".join(parts), compresslevel=6), n, total


class Sender:
    """One agent: its token, its own connection, and what it saw."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.pool = RawPool(host, port, 1)
        self.headers = [
            ("Authorization", f"Splunk {token}"),
            ("Content-Encoding", "gzip"),
            ("X-Splunk-Request-Channel", str(uuid.uuid4())),
        ]
        self.latencies: list[float] = []
        self.events = 0
        self.errors: dict[str, int] = {}

    async def send(self, body: bytes, events: int, measure: bool) -> None:
        start = time.monotonic()
        try:
            answer = await self.pool.request("POST", PATH, self.headers, body)
            status = answer.status
        except (OSError, asyncio.IncompleteReadError) as exc:
            status, key = 0, type(exc).__name__
        else:
            key = str(status)
        if not measure:
            return
        if status == 200:
            self.latencies.append(time.monotonic() - start)
            self.events += events
        else:
            self.errors[key] = self.errors.get(key, 0) + 1


async def run_phase(
    senders: list[Sender],
    batches: list[tuple[bytes, int, int]],
    *,
    warmup: float,
    duration: float,
    period: float | None,
    seed: int,
) -> tuple[float, float]:
    """Run the agents for ``warmup`` + ``duration`` s; measure only the second part. With a
    ``period`` each agent sends one batch per period (open loop), else back to back."""
    rng = random.Random(seed)
    start = time.monotonic()
    measured_from, stop_at = start + warmup, start + warmup + duration

    async def agent(sender: Sender, index: int) -> None:
        turn = rng.randrange(len(batches))
        next_at = start + (rng.random() * period if period else 0.0)
        while True:
            if period:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += period
            now = time.monotonic()
            if now >= stop_at:
                return
            body, events, _ = batches[turn % len(batches)]
            turn += 1
            await sender.send(body, events, measure=now >= measured_from)

    await asyncio.gather(*(agent(s, i) for i, s in enumerate(senders)))
    return measured_from, stop_at


def phase_result(
    name: str, senders: list[Sender], window: tuple[float, float], sampler: Sampler
) -> dict[str, Any]:
    seconds = window[1] - window[0]
    latencies = [x for s in senders for x in s.latencies]
    events = sum(s.events for s in senders)
    errors: dict[str, int] = {}
    for s in senders:
        for key, count in s.errors.items():
            errors[key] = errors.get(key, 0) + count
    resources = sampler.between(*window)
    cpu = resources.get("server_cpu_pct", 0.0) / 100 * seconds
    for s in senders:
        s.latencies, s.events, s.errors = [], 0, {}
    return {
        "phase": name,
        "seconds": round(seconds, 1),
        "batches": len(latencies),
        "events": events,
        "events_per_second": round(events / seconds),
        "server_cpu_seconds": round(cpu, 2),
        "events_per_server_cpu_second": round(events / cpu) if cpu else None,
        "batch_latency_p50_ms": _ms(percentile(latencies, 50)),
        "batch_latency_p99_ms": _ms(percentile(latencies, 99)),
        "batch_latency_max_ms": _ms(max(latencies) if latencies else None),
        "errors": errors,
        **{k: round(v, 1) for k, v in resources.items()},
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def enrol(server: BenchServer, agents: int) -> list[str]:
    _, _, token = server.setup_group("ingest", max_uses=agents)
    tokens = []
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as client:
        for n in range(agents):
            body = {"bootstrapToken": token, "hostname": f"bench-{n}", "platform": "linux",
                    "agentVersion": "0.1.0"}  # fmt: skip
            answer = client.post("/api/v1/agents/enrol", json=body)
            answer.raise_for_status()
            tokens.append(answer.json()["data"]["agentToken"])
    return tokens


async def main_async(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    built = time.monotonic()
    batches = [build_batch(rng, args.batch_bytes) for _ in range(args.variants)]
    built = time.monotonic() - built
    per_batch = sum(b[1] for b in batches) / len(batches)
    server = BenchServer(workdir / "server")
    sampler = Sampler(server.pid)
    sampling = asyncio.get_running_loop().create_task(sampler.run())
    try:
        tokens = enrol(server, args.agents)
        url = urlsplit(server.url)
        assert url.hostname is not None and url.port is not None
        senders = [Sender(url.hostname, url.port, t) for t in tokens]
        results = []
        window = await run_phase(senders, batches, warmup=args.warmup, duration=args.duration,
                                 period=None, seed=args.seed)  # fmt: skip
        results.append(phase_result("saturation", senders, window, sampler))
        period = args.agents * per_batch / args.rate
        window = await run_phase(senders, batches, warmup=args.warmup, duration=args.duration,
                                 period=period, seed=args.seed + 1)  # fmt: skip
        results.append(phase_result("target rate", senders, window, sampler))
        results[-1]["offered_events_per_second"] = args.rate
        counted = sum(r["events"] for r in server.admin("GET", "/ingest/totals"))
        for s in senders:
            await s.pool.close()
    finally:
        sampling.cancel()
        server.stop()
    saturation, target = results
    return {
        "machine": machine(),
        "agents": args.agents,
        "batch": {
            "uncompressed_bytes": round(sum(b[2] for b in batches) / len(batches)),
            "gzip_bytes": round(sum(len(b[0]) for b in batches) / len(batches)),
            "events": round(per_batch),
            "built_in_s": round(built, 1),
        },
        "phases": results,
        "server_counted_events": counted,
        "targets": {
            "events_per_server_cpu_second_ge_50000": (
                saturation["events_per_server_cpu_second"] or 0
            )
            >= TARGET_EVENTS_PER_CORE,
            "p99_batch_lt_250_ms_at_target_rate": (
                target["batch_latency_p99_ms"] is not None
                and target["batch_latency_p99_ms"] < TARGET_P99_MS
            ),
        },
    }


def report(result: dict[str, Any]) -> str:
    b = result["batch"]
    lines = [
        f"{result['agents']} agents, batches of {b['events']} events = {b['uncompressed_bytes']} B"
        f" ({b['gzip_bytes']} B gzip)",
        f"{'phase':<12} {'events/s':>9} {'per srv CPU s':>13} {'srv CPU':>7} {'p50 ms':>7}"
        f" {'p99 ms':>7} {'RSS MiB':>7} {'other':>6}  errors",
    ]
    for p in result["phases"]:
        lines.append(
            f"{p['phase']:<12} {p['events_per_second']:>9} "
            f"{p['events_per_server_cpu_second'] or '-':>13} {p.get('server_cpu_pct', 0):>6}% "
            f"{p['batch_latency_p50_ms'] or '-':>7} {p['batch_latency_p99_ms'] or '-':>7} "
            f"{p.get('server_rss_mib_max', 0):>7} {p.get('other_cpu_pct', 0):>5}%  "
            f"{p['errors'] or '-'}"
        )
    lines.append(f"server counted {result['server_counted_events']} events in all")
    lines.append("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}"
                                         for k, v in result["targets"].items()))  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=TARGET_EVENTS_PER_CORE,
        help="events/s the agents offer together in the target-rate phase",
    )
    parser.add_argument("--batch-bytes", type=int, default=1_000_000)
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    if args.duration + args.warmup > 600:
        parser.error("each phase must stay under 10 minutes")
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        result = asyncio.run(main_async(args, Path(tmp)))
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
