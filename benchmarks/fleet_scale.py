"""How far one reference server scales: N simulated agents at the default cadence (SPEC section 10).

    .venv/bin/python benchmarks/fleet_scale.py --agents 1000,5000,10000 --json fleet.json

For each N, against a fresh ``logpulse-server`` (its own SQLite file) on 127.0.0.1:

1. enrols N agents for real (``POST /api/v1/agents/enrol`` with one enrolment token of
   ``maxUses=N``);
2. runs them the way the agent does: a config poll every 10 s and a heartbeat every 30 s, each
   ±10 % jitter, the poll sending ``since=<applied version>`` and ``If-None-Match: <etag>``, a
   heartbeat reply whose ``configVersion`` is ahead of the applied one triggering a poll at once;
   start offsets are spread over one interval (a fleet in steady state, not a restart storm);
3. after ``--warmup`` seconds measures ``--duration`` seconds: achieved requests/s, latency per
   endpoint (p50/p99), errors, server CPU and RSS, the generator's own CPU and how late it sent
   requests (its schedule lag: when that grows, the generator, not the server, is the limit);
4. bumps the group's config through the admin API (PATCH of the input's index override) and
   reports the time until 50/90/99/100 % of the agents hold the new version, against the target
   of 99 % within one poll interval + 2 s.

The generator and the server share this machine's cores (2 on the reference machine), so
every figure is a lower bound of what the server does on cores of its own. All traffic goes to
127.0.0.1 and every phase is bounded in time; the run stops by itself.

Latency is measured two ways: ``latency`` from the moment the simulated agent meant to send
(its timer fired) to the full answer, which includes any queueing in the generator (no
coordinated omission), and ``service`` from writing the request on a connection to the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _rollout  # noqa: E402
from benchmarks._http import AGENT_VERSION, HttpxPool, RawPool  # noqa: E402
from benchmarks._server import BenchServer, machine, percentile  # noqa: E402
from benchmarks._slow_clients import SlowClients  # noqa: E402

POLL_INTERVAL = 10.0
HEARTBEAT_INTERVAL = 30.0
JITTER = 0.1
TARGET_P99_S = 0.100
ROLLOUT_TARGET_S = POLL_INTERVAL + 2.0
MIB = 1024 * 1024


@dataclass
class PhaseStats:
    """What one phase (steady, rollout) saw."""

    name: str
    started: float = 0.0
    ended: float = 0.0
    latency: dict[str, list[float]] = field(default_factory=dict)
    service: dict[str, list[float]] = field(default_factory=dict)
    lag: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    # per second of the phase: [answers completed, worst latency] (where stalls show up)
    timeline: dict[int, list[float]] = field(default_factory=dict)
    gc_pauses: list[float] = field(default_factory=list)  # the generator's own collections

    def record(self, endpoint: str, latency: float, service: float, lag: float) -> None:
        self.latency.setdefault(endpoint, []).append(latency)
        self.service.setdefault(endpoint, []).append(service)
        self.lag.append(lag)
        second = self.timeline.setdefault(int(time.monotonic() - self.started), [0, 0.0])
        second[0] += 1
        second[1] = max(second[1], latency)


class SimAgent:
    """One enrolled agent: identity, what it has applied, and a poke-able poll timer."""

    __slots__ = (
        "applied",
        "auth",
        "config_path",
        "etag",
        "heartbeat_path",
        "holds",
        "id",
        "poke_at",
        "pool",
        "started",
        "waiter",
    )

    def __init__(self, agent_id: str, token: str) -> None:
        self.id = agent_id
        self.auth = ("Authorization", f"Bearer {token}")
        self.config_path = f"/api/v1/agents/{agent_id}/config"
        self.heartbeat_path = f"/api/v1/agents/{agent_id}/heartbeat"
        self.applied = 0  # what it applied; the agent starts with none
        self.etag: str | None = None
        self.holds: dict[int, float] = {}  # version -> loop time it was received
        self.started = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self.poke_at: float | None = None
        self.pool: RawPool | HttpxPool | None = None  # its own connection (per-agent mode)


class Fleet:
    def __init__(self, pool: RawPool | HttpxPool, rng: random.Random) -> None:
        self.pool = pool
        self.rng = rng
        self.poll_interval = POLL_INTERVAL
        self.heartbeat_interval = HEARTBEAT_INTERVAL
        self.watch: _rollout.Watch | None = None  # the staged mode's per-agent bookkeeping
        self.agents: list[SimAgent] = []
        self.phase: PhaseStats | None = None
        self.stopping = False
        self.loop = asyncio.get_running_loop()

    def jittered(self, interval: float) -> float:
        return interval * (1.0 + self.rng.uniform(-JITTER, JITTER))

    # --- enrolment -----------------------------------------------------------------------
    async def enrol(self, token: str, count: int, concurrency: int) -> dict[str, Any]:
        errors: Counter[str] = Counter()
        latencies: list[float] = []
        numbers = iter(range(count))

        async def worker() -> None:
            for n in numbers:
                body = json.dumps(
                    {
                        "bootstrapToken": token,
                        "hostname": f"sim-{n:05d}",
                        "platform": "linux",
                        "os": "Debian GNU/Linux 12",
                        "kernel": "6.1.0-sim",
                        "agentVersion": AGENT_VERSION,
                        "vectorVersion": "0.40.0",
                    },
                    separators=(",", ":"),
                ).encode()
                start = time.monotonic()
                try:
                    answer = await self.pool.request("POST", "/api/v1/agents/enrol", [], body)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    errors[type(exc).__name__] += 1
                    continue
                latencies.append(time.monotonic() - start)
                if answer.status != 201:
                    errors[f"HTTP {answer.status}"] += 1
                    continue
                data = json.loads(answer.body)["data"]
                self.agents.append(SimAgent(data["agentId"], data["agentToken"]))

        start = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.monotonic() - start
        return {
            "enrolled": len(self.agents),
            "seconds": took,
            "per_second": count / took,
            "p50_ms": _ms(percentile(latencies, 50)),
            "p99_ms": _ms(percentile(latencies, 99)),
            "errors": dict(errors),
        }

    # --- the agent loops -----------------------------------------------------------------
    async def _sleep(self, agent: SimAgent, delay: float) -> float:
        """Sleep ``delay`` or until poked; return the time the poll was due."""
        due = time.monotonic() + delay
        waiter = self.loop.create_future()
        agent.waiter = waiter
        handle = self.loop.call_later(delay, _wake, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            agent.waiter = None
        if agent.poke_at is not None:
            due, agent.poke_at = agent.poke_at, None
        return due

    def poke(self, agent: SimAgent) -> None:
        if agent.waiter is not None and not agent.waiter.done():
            agent.poke_at = time.monotonic()
            agent.waiter.set_result(None)

    async def poll_loop(self, agent: SimAgent) -> None:
        delay = self.rng.uniform(0, self.poll_interval)
        while True:
            due = await self._sleep(agent, delay)
            if self.stopping:
                return
            await self.poll(agent, due)
            delay = self.jittered(self.poll_interval)

    async def heartbeat_loop(self, agent: SimAgent) -> None:
        await asyncio.sleep(self.rng.uniform(0, self.heartbeat_interval))
        agent.started = time.monotonic() - self.rng.uniform(60, 86400)
        due = time.monotonic()
        while not self.stopping:
            await self.heartbeat(agent, due)
            due += self.jittered(self.heartbeat_interval)
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def poll(self, agent: SimAgent, due: float) -> None:
        headers = [agent.auth]
        if agent.etag:
            headers.append(("If-None-Match", agent.etag))
        answer = await self._send(
            agent, "GET", f"{agent.config_path}?since={agent.applied}", headers, None, due, "config"
        )
        if answer is not None and answer.status == 200:
            version = int(answer.headers["x-config-version"])
            agent.applied, agent.etag = version, answer.headers["x-config-etag"]
            agent.holds.setdefault(version, time.monotonic())
            if self.watch is not None:
                _rollout.saw(self.watch, agent)

    async def heartbeat(self, agent: SimAgent, due: float) -> None:
        body = json.dumps(
            {
                "agentVersion": AGENT_VERSION,
                "vectorVersion": "0.40.0",
                "appliedConfigVersion": agent.applied,
                "vectorRunning": True,
                "vectorUptimeSeconds": int(time.monotonic() - agent.started),
                "configError": None,
                **(_rollout.beat_fields(self.watch, agent) if self.watch is not None else {}),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        answer = await self._send(
            agent, "POST", agent.heartbeat_path, [agent.auth], body, due, "heartbeat"
        )
        if answer is not None and answer.status == 200:
            version = json.loads(answer.body)["data"].get("configVersion")
            if isinstance(version, int) and version > agent.applied:
                self.poke(agent)

    async def _send(
        self,
        agent: SimAgent,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        due: float,
        endpoint: str,
    ) -> Any:
        start = time.monotonic()
        phase = self.phase
        try:
            answer = await (agent.pool or self.pool).request(method, path, headers, body)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if phase is not None:
                phase.errors[f"{endpoint} {type(exc).__name__}"] += 1
            return None
        end = time.monotonic()
        if phase is not None and phase is self.phase:
            key = f"{endpoint} {answer.status}"
            if answer.status >= 400:
                phase.errors[key] += 1
            phase.record(key, end - due, end - start, start - due)
        return answer


class GcWatch:
    """Times the generator's own garbage collections into the current phase."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.began = time.perf_counter()
        elif self.fleet.phase is not None:
            self.fleet.phase.gc_pauses.append(time.perf_counter() - self.began)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class Sampler:
    """CPU and RSS of the server, of this generator and of everything else, once a second.

    "Everything else" (all cores' busy time minus server and generator) tells how noisy the
    machine was: these machines are shared, and other work competes for the same two cores.
    """

    def __init__(self, server_pid: int) -> None:
        self.server = psutil.Process(server_pid)
        self.me = psutil.Process()
        # t, server cpu, generator cpu, server rss, machine busy cpu (all cores), softirq
        self.points: list[tuple[float, float, float, int, float, float]] = []

    def sample(self) -> None:
        s, m, allc = self.server.cpu_times(), self.me.cpu_times(), psutil.cpu_times()
        busy = allc.user + allc.nice + allc.system + allc.irq + allc.steal
        self.points.append(
            (
                time.monotonic(),
                s.user + s.system,
                m.user + m.system,
                self.server.memory_info().rss,
                busy,
                allc.softirq,
            )
        )

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(1.0)

    def between(self, start: float, end: float) -> dict[str, Any]:
        inside = [p for p in self.points if start <= p[0] <= end]
        if len(inside) < 2:
            return {}
        (t0, s0, g0, _, b0, q0), (t1, s1, g1, _, b1, q1) = inside[0], inside[-1]
        span = t1 - t0
        return {
            "server_cpu_pct": 100 * (s1 - s0) / span,
            "generator_cpu_pct": 100 * (g1 - g0) / span,
            # other processes on the machine (not softirq, where loopback traffic is counted)
            "other_cpu_pct": 100 * max(0.0, (b1 - b0) - (s1 - s0) - (g1 - g0)) / span,
            "softirq_cpu_pct": 100 * (q1 - q0) / span,
            "server_rss_mib_max": max(p[3] for p in inside) / MIB,
            "server_rss_mib_end": inside[-1][3] / MIB,
        }


def summarize(phase: PhaseStats, resources: dict[str, Any]) -> dict[str, Any]:
    seconds = phase.ended - phase.started
    total = sum(len(v) for v in phase.latency.values())
    endpoints = {}
    for key in sorted(phase.latency):
        lat, svc = phase.latency[key], phase.service[key]
        endpoints[key] = {
            "count": len(lat),
            "per_second": len(lat) / seconds,
            "latency_p50_ms": _ms(percentile(lat, 50)),
            "latency_p99_ms": _ms(percentile(lat, 99)),
            "latency_max_ms": _ms(max(lat)),
            "service_p50_ms": _ms(percentile(svc, 50)),
            "service_p99_ms": _ms(percentile(svc, 99)),
        }
    all_lat = [x for v in phase.latency.values() for x in v]
    return {
        "seconds": seconds,
        "requests": total,
        "requests_per_second": total / seconds,
        "latency_p50_ms": _ms(percentile(all_lat, 50)),
        "latency_p99_ms": _ms(percentile(all_lat, 99)),
        "endpoints": endpoints,
        "errors": dict(phase.errors),
        "schedule_lag_p50_ms": _ms(percentile(phase.lag, 50)),
        "schedule_lag_p99_ms": _ms(percentile(phase.lag, 99)),
        "schedule_lag_max_ms": _ms(max(phase.lag) if phase.lag else None),
        "generator_gc_pauses": len(phase.gc_pauses),
        "generator_gc_max_ms": _ms(max(phase.gc_pauses) if phase.gc_pauses else None),
        "timeline": [
            [sec, int(n), _ms(worst)] for sec, (n, worst) in sorted(phase.timeline.items())
        ],
        **resources,
        "server_cpu_us_per_request": (
            resources["server_cpu_pct"] / 100 * seconds / total * 1e6
            if total and "server_cpu_pct" in resources
            else None
        ),
    }


async def run_fleet(n: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = {}
    if args.server_src is not None:  # A/B runs: the server's package from another checkout
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(args.server_src), os.environ.get("PYTHONPATH", "")) if p
        )
    extra = ["--keep-alive", str(args.server_keep_alive)] if args.server_keep_alive else []
    extra += ["--heartbeat-interval", str(args.heartbeat_interval)]
    server = BenchServer(workdir / f"server-{n}", env=env, cwd=args.server_src, extra_args=extra)
    sampler = Sampler(server.pid)
    sampler_task = asyncio.get_running_loop().create_task(sampler.run())
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    pool_cls = RawPool if args.client == "raw" else HttpxPool
    pool = pool_cls(
        url.hostname, url.port, args.connections, per_request=args.connection_mode == "per-request"
    )
    own_pools: list[RawPool | HttpxPool] = []
    tasks: list[asyncio.Task[None]] = []
    gc_watch: GcWatch | None = None
    slow: SlowClients | None = None
    result: dict[str, Any] = {"agents": n}
    try:
        group, source, token = server.setup_group(f"fleet-{n}", max_uses=n)
        fleet = Fleet(pool, random.Random(args.seed))
        fleet.poll_interval, fleet.heartbeat_interval = args.poll_interval, args.heartbeat_interval
        result["enrolment"] = await fleet.enrol(token, n, args.enrol_concurrency)
        if args.connection_mode == "per-agent":  # each agent keeps its own connection, as agents do
            for agent in fleet.agents:
                agent.pool = pool_cls(url.hostname, url.port, 1)
                own_pools.append(agent.pool)
        if len(fleet.agents) != n:
            raise RuntimeError(
                f"only {len(fleet.agents)} of {n} agents enrolled: {result['enrolment']['errors']}"
            )
        version = server.admin("GET", f"/groups/{group['id']}")["configVersion"]
        if args.slow_clients:  # held from before the warm-up to the end of the rollout
            idle, trickle = args.slow_clients
            slow = SlowClients(url.hostname, url.port, idle=idle, trickle=trickle)
            await slow.start()
        for agent in fleet.agents:
            tasks.append(asyncio.create_task(fleet.poll_loop(agent)))
            tasks.append(asyncio.create_task(fleet.heartbeat_loop(agent)))
        # The generator's own garbage collections would stall its event loop and show up as
        # server latency: freeze the fleet's long-lived objects (agents, tasks) and collect no
        # more while measuring (the run is bounded; what cycles it leaves are freed at the end).
        gc.collect()
        gc.freeze()
        gc.disable()
        gc_watch = GcWatch(fleet)
        gc.callbacks.append(gc_watch)
        await asyncio.sleep(args.warmup)

        steady = PhaseStats("steady", started=time.monotonic())
        fleet.phase = steady
        await asyncio.sleep(args.duration)
        steady.ended = time.monotonic()
        sampler.sample()
        result["steady"] = summarize(steady, sampler.between(steady.started, steady.ended))
        result["steady"]["holding_current_version_before_bump"] = sum(
            a.applied == version for a in fleet.agents
        )

        rollout = PhaseStats("rollout")
        fleet.phase = rollout
        rollout.started = time.monotonic()
        t0 = time.monotonic()
        # Through the generator's own pool: a blocking admin client would stall its loop.
        admin = [("Authorization", f"Bearer {server.admin_token}")]
        patch = json.dumps({"indexOverride": f"fleet_v{version + 1}"}).encode()
        answer = await pool.request("PATCH", f"/api/v1/admin/inputs/{source['id']}", admin, patch)
        patched = time.monotonic() - t0
        if answer.status != 200:
            raise RuntimeError(f"PATCH of the input answered HTTP {answer.status}")
        group_now = await pool.request("GET", f"/api/v1/admin/groups/{group['id']}", admin)
        new = json.loads(group_now.body)["data"]
        target = int(new["configVersion"])
        deadline = t0 + args.rollout_timeout
        while time.monotonic() < deadline and not all(target in a.holds for a in fleet.agents):
            await asyncio.sleep(0.1)
        rollout.ended = time.monotonic()
        sampler.sample()
        times = sorted(a.holds[target] - t0 for a in fleet.agents if target in a.holds)
        result["rollout"] = {
            "from_version": version,
            "to_version": target,
            "patch_ms": patched * 1000,
            "reached": len(times),
            "of": n,
            **{f"t{p}_s": _rollout_time(times, n, p) for p in (50, 90, 99, 100)},
            "target_s": ROLLOUT_TARGET_S,
            "within_target_pct": 100 * sum(t <= ROLLOUT_TARGET_S for t in times) / n,
            "traffic": summarize(rollout, sampler.between(rollout.started, rollout.ended)),
        }
        if args.staged:
            fleet.watch = _rollout.Watch()

            def measure(name: str) -> Any:
                phase = PhaseStats(name, started=time.monotonic())
                fleet.phase = phase

                def close() -> dict[str, Any]:
                    phase.ended = time.monotonic()
                    sampler.sample()
                    return summarize(phase, sampler.between(phase.started, phase.ended))

                return close

            result["staged"] = await _rollout.run_staged(
                fleet, server, pool, group, source, fleet.watch, args, measure
            )
        fleet.stopping = True
        for agent in fleet.agents:
            fleet.poke(agent)
    finally:
        if gc_watch is not None:
            gc.callbacks.remove(gc_watch)
        gc.unfreeze()
        gc.enable()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sampler_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler_task
        if slow is not None:
            result["slow_clients"] = slow.stats()
            await slow.stop()
        for own in [pool, *own_pools]:
            await own.close()
        server.stop()
    result["pool"] = {
        "connections_opened": sum(p.stats.connects for p in [pool, *own_pools]),
        "reconnects_after_server_idle_close": sum(p.stats.reconnects for p in [pool, *own_pools]),
    }
    result["db_mib"] = sum(p.stat().st_size for p in server.db.parent.glob("server.db*")) / MIB
    steady_res = result["steady"]
    result["verdict"] = {
        "p99_lt_100ms": all(
            (e["latency_p99_ms"] or 0) < TARGET_P99_S * 1000
            for e in steady_res["endpoints"].values()
        ),
        "rollout_99pct_within_12s": (result["rollout"]["t99_s"] or 1e9) <= ROLLOUT_TARGET_S,
        "no_errors": not steady_res["errors"] and not result["rollout"]["traffic"]["errors"],
        "generator_saturated": steady_res.get("generator_cpu_pct", 0) > 90
        or (steady_res["schedule_lag_p99_ms"] or 0) > 20,
    }
    return result


def _rollout_time(times: list[float], n: int, pct: int) -> float | None:
    """Seconds until ``pct`` % of all ``n`` agents held the version (None: not reached)."""
    needed = max(1, -(-n * pct // 100))
    return round(times[needed - 1], 3) if len(times) >= needed else None


def render(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    out = [
        f"machine: {machine()['nproc']} cores ({machine()['cpu']}), Python "
        f"{machine()['python']}; server and generator share these cores.",
        f"client: {args.client}, {args.connection_mode} connections (pool of "
        f"{args.connections}); warm-up {args.warmup:.0f} s, measured {args.duration:.0f} s per N",
        "",
    ]
    head = (
        f"{'N':>6} {'req/s':>7} {'cfg p50/p99 ms':>15} {'hb p50/p99 ms':>15} {'errors':>6} "
        f"{'srv CPU':>7} {'srv RSS':>8} {'gen CPU':>7} {'other':>6} {'lag p99':>8}  "
        "rollout 50/90/99/100 % (s)"
    )
    out.append(head)
    for r in results:
        s = r["steady"]
        cfg = _merge(s["endpoints"], "config")
        hb = _merge(s["endpoints"], "heartbeat")
        ro = r["rollout"]
        rollout = "/".join(
            "-" if ro[f"t{p}_s"] is None else f"{ro[f't{p}_s']:.1f}" for p in (50, 90, 99, 100)
        )
        out.append(
            f"{r['agents']:>6} {s['requests_per_second']:>7.0f} {cfg:>15} {hb:>15} "
            f"{sum(s['errors'].values()):>6} {s.get('server_cpu_pct', 0):>6.0f}% "
            f"{s.get('server_rss_mib_max', 0):>5.0f}MiB {s.get('generator_cpu_pct', 0):>6.0f}% "
            f"{s.get('other_cpu_pct', 0):>5.0f}% "
            f"{s['schedule_lag_p99_ms'] or 0:>6.1f}ms  {rollout}"
        )
    out.append("")
    for r in results:
        v, e = r["verdict"], r["enrolment"]
        out.append(
            f"N={r['agents']}: enrolled in {e['seconds']:.1f} s ({e['per_second']:.0f}/s); "
            f"p99<100ms {'yes' if v['p99_lt_100ms'] else 'NO'}; 99 % within "
            f"{ROLLOUT_TARGET_S:.0f} s {'yes' if v['rollout_99pct_within_12s'] else 'NO'}; "
            f"errors {'none' if v['no_errors'] else 'YES'}; generator saturated "
            f"{'YES' if v['generator_saturated'] else 'no'}"
        )
        for key, ep in r["steady"]["endpoints"].items():
            out.append(
                f"    {key:<15} {ep['per_second']:7.1f}/s  latency p50 {ep['latency_p50_ms']}"
                f" p99 {ep['latency_p99_ms']} max {ep['latency_max_ms']} ms; service p50 "
                f"{ep['service_p50_ms']} p99 {ep['service_p99_ms']} ms"
            )
        if "slow_clients" in r:
            out.append(f"    slow clients: {r['slow_clients']}")
        t = r["rollout"]["traffic"]
        out.append(
            f"    rollout phase: {t['requests_per_second']:.0f} req/s, latency p99 "
            f"{t['latency_p99_ms']} ms, server CPU {t.get('server_cpu_pct', 0):.0f}%"
        )
        if "staged" in r:
            out += _rollout.render(r["staged"])
    return "\n".join(out)


def _merge(endpoints: dict[str, Any], prefix: str) -> str:
    """p50/p99 of the busiest status of an endpoint (config: 204 in steady state)."""
    mine = [e for k, e in endpoints.items() if k.startswith(prefix)]
    if not mine:
        return "-"
    top = max(mine, key=lambda e: e["count"])
    return f"{top['latency_p50_ms']:.1f}/{top['latency_p99_ms']:.1f}"


async def main_async(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    results = []
    for n in args.agents:
        print(f"... N={n}", file=sys.stderr, flush=True)
        results.append(await run_fleet(n, args, workdir))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--agents",
        default="1000,5000,10000",
        type=lambda s: [int(x) for x in s.split(",")],
        help="comma-separated fleet sizes (default 1000,5000,10000)",
    )
    parser.add_argument(
        "--duration", type=float, default=60.0, help="measured steady seconds per N (default 60)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=15.0,
        help="seconds before measuring: every agent has polled once (default 15)",
    )
    parser.add_argument("--rollout-timeout", type=float, default=40.0)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument(
        "--connection-mode",
        choices=("pool", "per-request", "per-agent"),
        default="pool",
        help="pool: shared keep-alive pool (as behind a pooling proxy); per-request: a new "
        "connection each time; per-agent: one keep-alive connection per agent (pair with "
        "--server-keep-alive above the poll interval)",
    )
    parser.add_argument(
        "--server-keep-alive",
        type=int,
        default=None,
        help="pass --keep-alive SECONDS to the server (default: the server's own, 5 s)",
    )
    parser.add_argument("--connections", type=int, default=64, help="pool size (default 64)")
    parser.add_argument(
        "--slow-clients",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=None,
        metavar="IDLE,TRICKLE",
        help="also hold IDLE silent and TRICKLE header-trickling connections, reopened when the "
        "server cuts them (e.g. 1000,100; see benchmarks/_slow_clients.py)",
    )
    parser.add_argument("--enrol-concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the generator on uvloop when installed (default yes)",
    )
    parser.add_argument(
        "--server-src",
        type=Path,
        default=None,
        help="run the server from this source tree (a git worktree) to compare two versions",
    )
    parser.add_argument(
        "--staged",
        action="store_true",
        help="then a staged rollout of a healthy and of a bad change (benchmarks/_rollout.py)",
    )
    parser.add_argument("--phases", default="1,1%,10%,50%,100%", help="staged phases")
    parser.add_argument("--soak", type=float, default=30.0, help="staged soak seconds")
    parser.add_argument(
        "--poll-interval", type=float, default=POLL_INTERVAL, help="agents' (default 10 s)"
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=HEARTBEAT_INTERVAL,
        help="agents' (default 30 s; the server is told the same)",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.duration > 600 or args.warmup > 300 or args.rollout_timeout > 300:
        parser.error("phases are bounded: --duration <= 600, --warmup/--rollout-timeout <= 300")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lp-fleet-"))
    runner: Any = asyncio.run
    if args.uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            runner = uvloop.run
    try:
        results = runner(main_async(args, workdir))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render(results, args))
    if args.json:
        report = {
            "machine": machine(),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "note": "server and generator share the machine's cores",
            "results": results,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
