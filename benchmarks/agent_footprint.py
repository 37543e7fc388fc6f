"""What ``logpulse-agent run`` costs on an idle host, at the default intervals (SPEC section 10).

    .venv/bin/python benchmarks/agent_footprint.py --minutes 5 --json footprint.json
    .venv/bin/python benchmarks/agent_footprint.py --release --minutes 5   # the bundle hosts run

Starts a real reference server on 127.0.0.1 (with its access log), enrols a real agent with the
Vector stand-in, runs ``logpulse-agent run`` with the default 10 s poll and 30 s heartbeat for
``--minutes``, and samples the agent process (not Vector) with psutil every second:

- RSS at start (first heartbeat delivered), steady (median after the warm-up) and max, plus the
  USS/PSS (memory the agent does not share with other processes), and the RSS trend after the
  warm-up in KiB per minute (growth);
- CPU seconds per hour and % of one core, user + system of the agent process only;
- threads and open file descriptors;
- requests per hour, counted from the server's access log (uvicorn lines on its stdout);
- wall time of ``logpulse-agent --version`` and ``logpulse-agent status`` (median of several runs).

Targets: <= 30 MiB RSS idle, <= 0.1 % of one core, no growth. The agent runs with every path under
a temporary directory (kept with ``--keep``), so nothing on the host is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._server import BenchServer, machine  # noqa: E402
from tests.standin import install_standin  # noqa: E402

MIB = 1024 * 1024
TARGET_RSS_MIB = 30.0
TARGET_CPU_PCT = 0.1
ACCESS_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def agent_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).with_name("logpulse-agent")
    return [str(script)] if script.exists() else [sys.executable, "-m", "logpulse_agent"]


class Host:
    """One agent host under ``root``: config, state, log directories and the stand-in Vector."""

    def __init__(
        self,
        root: Path,
        api_url: str,
        intervals: dict[str, str],
        command: list[str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.config_dir, self.state_dir, self.log_dir = root / "etc", root / "lib", root / "log"
        for d in (self.config_dir, self.state_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "agent.yaml").write_text("# benchmark host\n")
        self.env = {
            **os.environ,
            "LOGPULSE_CONFIG": str(self.config_dir / "agent.yaml"),
            "LOGPULSE_CONFIG_DIR": str(self.config_dir),
            "LOGPULSE_STATE_DIR": str(self.state_dir),
            "LOGPULSE_LOG_DIR": str(self.log_dir),
            "LOGPULSE_VECTOR_BIN": str(install_standin(root / "bin")),
            "LOGPULSE_API_URL": api_url,
            "STANDIN_EVENTS": str(root / "vector-events.jsonl"),
            **intervals,
            **(extra_env or {}),
        }
        for name in ("LOGPULSE_POLL_INTERVAL", "LOGPULSE_HEARTBEAT_INTERVAL"):
            if name not in intervals:
                self.env.pop(name, None)  # the defaults (10 s, 30 s) are what is measured
        self.command = command or agent_command()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self) -> subprocess.Popen[bytes]:
        with (self.root / "agent-run.out").open("wb") as sink:
            return subprocess.Popen(
                [*self.command, "run"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def snapshot(self) -> dict[str, Any]:
        try:
            data = json.loads((self.state_dir / "status.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def time_command(host: Host, args: list[str], runs: int) -> dict[str, Any]:
    """Wall time of ``logpulse-agent ARGS`` over ``runs`` runs (after one warm-up run)."""
    host.cli(*args)
    walls, codes = [], set()
    for _ in range(runs):
        start = time.perf_counter()
        done = host.cli(*args)
        walls.append(time.perf_counter() - start)
        codes.add(done.returncode)
    return {
        "median_s": statistics.median(walls),
        "min_s": min(walls),
        "max_s": max(walls),
        "runs": runs,
        "exit_codes": sorted(codes),
    }


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, value)`` points, in value units per minute."""
    if len(points) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    num = sum((t - mean_t) * (v - mean_v) for t, v in points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return 60.0 * num / den if den else 0.0


def host_ready(host: Host) -> bool:
    """First heartbeat delivered, the group's config applied and Vector running."""
    snap = host.snapshot()
    beat = (snap.get("controlPlane") or {}).get("lastHeartbeatAt")
    applied = (snap.get("config") or {}).get("appliedVersion") or 0
    return bool(beat and applied >= 1 and (snap.get("vector") or {}).get("running"))


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def build_release_bundle(work: Path) -> Path:
    """The self-contained bundle hosts install (``packaging/build_release.py``); its executable."""
    from tests.system.releases import build_release

    work.mkdir(parents=True)
    print("building the release bundle (about 30 s) ...", file=sys.stderr, flush=True)
    return build_release().build_agent("0.1.0", work) / "logpulse-agent"


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    server = BenchServer(workdir / "server", access_log=True)
    proc: subprocess.Popen[bytes] | None = None
    try:
        group, _, token = server.setup_group("footprint", max_uses=1)
        intervals = {}
        if args.poll_interval is not None:
            intervals["LOGPULSE_POLL_INTERVAL"] = str(args.poll_interval)
        if args.heartbeat_interval is not None:
            intervals["LOGPULSE_HEARTBEAT_INTERVAL"] = str(args.heartbeat_interval)
        extra_env = dict(item.split("=", 1) for item in args.agent_env)
        command = shlex.split(args.agent_command) if args.agent_command else None
        if args.release:
            command = [str(build_release_bundle(workdir / "release"))]
        host = Host(workdir / "host", server.url, intervals, command, extra_env)
        enrolled = host.cli("enrol", "--api-url", server.url, "--token", token)
        if enrolled.returncode != 0:
            raise RuntimeError(f"enrol failed: {enrolled.stderr.strip()}")

        proc = host.start()
        launched = time.monotonic()
        agent = psutil.Process(proc.pid)
        wait_for(
            lambda: host_ready(host) or proc.poll() is not None,
            90,
            "the first heartbeat, the config applied and Vector running",
        )
        if proc.poll() is not None:
            raise RuntimeError(
                f"agent exited with {proc.returncode}; see {host.root}/agent-run.out"
            )
        started = time.monotonic()
        rss_start = agent.memory_info().rss
        startup_cpu = sum(agent.cpu_times()[:2])

        samples: list[dict[str, float]] = []
        deadline = started + args.minutes * 60
        next_full = started
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"agent exited with {proc.returncode} during the run")
            now = time.monotonic()
            with agent.oneshot():
                times = agent.cpu_times()
                sample = {
                    "t": now - started,
                    "rss": agent.memory_info().rss,
                    "cpu": times.user + times.system,
                    "threads": agent.num_threads(),
                    "fds": agent.num_fds(),
                }
            if now >= next_full:  # USS/PSS read smaps: every 10 s is plenty
                full = agent.memory_full_info()
                sample.update(uss=full.uss, pss=full.pss)
                next_full = now + 10
            samples.append(sample)
            time.sleep(max(0.0, args.sample_interval - (time.monotonic() - now)))
        ended = time.monotonic()
        vector_rss = sum(c.memory_info().rss for c in agent.children(recursive=True))

        timings = {
            "version": time_command(host, ["--version"], args.cli_runs),
            "status": time_command(host, ["status"], args.cli_runs),
            "status_json": time_command(host, ["status", "--json"], args.cli_runs),
        }

        stop_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        exit_code = proc.wait(90)
        stop_s = time.monotonic() - stop_at
        snapshot = host.snapshot()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        server.stop()

    warm = [s for s in samples if s["t"] >= args.warmup]
    if len(warm) < 2:
        raise RuntimeError("run too short for the warm-up: raise --minutes or lower --warmup")
    window = warm[-1]["t"] - warm[0]["t"]
    cpu_window = warm[-1]["cpu"] - warm[0]["cpu"]
    all_cpu = samples[-1]["cpu"] - samples[0]["cpu"]
    requests = count_requests(server.lines(), started + warm[0]["t"], started + warm[-1]["t"])
    whole = count_requests(server.lines(), launched, ended)
    per_hour = 3600.0 / window
    result = {
        "machine": machine(),
        "settings": {
            "minutes": args.minutes,
            "warmup_s": args.warmup,
            "poll_interval": args.poll_interval or "default (10 s)",
            "heartbeat_interval": args.heartbeat_interval or "default (30 s)",
            "sample_interval_s": args.sample_interval,
            "agent_env": args.agent_env,
            "command": host.command,
            "agent": "release bundle" if args.release else "as installed in this Python",
        },
        "rss_mib": {
            "start": rss_start / MIB,
            "steady_median": statistics.median(s["rss"] for s in warm) / MIB,
            "max": max(s["rss"] for s in samples) / MIB,
            "growth_kib_per_min": slope_per_minute([(s["t"], s["rss"] / 1024) for s in warm]),
            "first_minute_median": statistics.median(
                s["rss"] for s in warm if s["t"] < warm[0]["t"] + 60
            )
            / MIB,
            "last_minute_median": statistics.median(
                s["rss"] for s in warm if s["t"] >= warm[-1]["t"] - 60
            )
            / MIB,
        },
        "uss_mib_steady_median": _median_mib(warm, "uss"),
        "pss_mib_steady_median": _median_mib(warm, "pss"),
        "cpu": {
            "startup_s": startup_cpu,
            "seconds_per_hour": cpu_window * per_hour,
            "pct_of_one_core": 100.0 * cpu_window / window,
            "pct_of_one_core_incl_warmup": 100.0 * all_cpu / (samples[-1]["t"] - samples[0]["t"]),
        },
        "threads": {
            "max": max(s["threads"] for s in samples),
            "steady": statistics.median(s["threads"] for s in warm),
        },
        "fds": {"max": max(s["fds"] for s in samples)},
        "requests": {
            "window_s": window,
            "per_hour": sum(requests.values()) * per_hour,
            "per_hour_by_endpoint": {k: v * per_hour for k, v in requests.items()},
            "whole_run_by_endpoint": whole,
        },
        "vector_standin_rss_mib": vector_rss / MIB,
        "cli_wall_s": timings,
        "shutdown": {"exit_code": exit_code, "seconds": stop_s},
        "final_status": {k: snapshot.get(k) for k in ("controlPlane", "config", "vector")},
        "group_config_version": group["configVersion"],
        "samples": samples if args.samples else len(samples),
    }
    result["targets"] = {
        "rss_steady_le_30_mib": result["rss_mib"]["steady_median"] <= TARGET_RSS_MIB,
        "cpu_le_0.1_pct": result["cpu"]["pct_of_one_core"] <= TARGET_CPU_PCT,
    }
    return result


def _median_mib(samples: list[dict[str, float]], key: str) -> float | None:
    values = [s[key] for s in samples if key in s]
    return statistics.median(values) / MIB if values else None


def count_requests(lines: list[tuple[float, str]], start: float, end: float) -> dict[str, int]:
    """Access-log lines read between ``start`` and ``end``, by ``METHOD endpoint status``."""
    counts: dict[str, int] = {}
    for at, line in lines:
        match = ACCESS_RE.search(line)
        if match is None or not start <= at <= end:
            continue
        path = match["path"].split("?", 1)[0]
        endpoint = path.rsplit("/", 1)[-1] if path.startswith("/api/v1/agents/") else path
        key = f"{match['method']} {endpoint} {match['status']}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def render(result: dict[str, Any]) -> str:
    rss, cpu, req = result["rss_mib"], result["cpu"], result["requests"]
    t = result["cli_wall_s"]
    ok = {True: "ok", False: "OVER"}
    rows = [
        (
            "machine",
            f"{result['machine']['nproc']} cores, {result['machine']['cpu']}, "
            f"Python {result['machine']['python']}",
            "",
        ),
        ("agent measured", result["settings"]["agent"], ""),
        ("RSS at start (first heartbeat)", f"{rss['start']:.1f} MiB", ""),
        (
            "RSS steady (median after warm-up)",
            f"{rss['steady_median']:.1f} MiB",
            f"target <= 30 MiB: {ok[result['targets']['rss_steady_le_30_mib']]}",
        ),
        ("RSS max", f"{rss['max']:.1f} MiB", ""),
        (
            "RSS trend after warm-up",
            f"{rss['growth_kib_per_min']:+.1f} KiB/min",
            f"first/last minute {rss['first_minute_median']:.2f}"
            f"/{rss['last_minute_median']:.2f} MiB",
        ),
        (
            "USS / PSS steady",
            f"{result['uss_mib_steady_median']:.1f} / {result['pss_mib_steady_median']:.1f} MiB",
            "not shared with others",
        ),
        (
            "CPU",
            f"{cpu['seconds_per_hour']:.1f} s/h = {cpu['pct_of_one_core']:.3f} % of one core",
            f"target <= 0.1 %: {ok[result['targets']['cpu_le_0.1_pct']]}",
        ),
        ("CPU at start-up", f"{cpu['startup_s']:.2f} s", ""),
        (
            "threads (steady / max)",
            f"{result['threads']['steady']:.0f} / {result['threads']['max']}",
            f"fds max {result['fds']['max']}",
        ),
        (
            "requests",
            f"{req['per_hour']:.0f} /h",
            ", ".join(f"{k}: {v:.0f}/h" for k, v in sorted(req["per_hour_by_endpoint"].items())),
        ),
        (
            "`logpulse-agent --version`",
            f"{t['version']['median_s'] * 1000:.0f} ms",
            f"median of {t['version']['runs']}",
        ),
        (
            "`logpulse-agent status`",
            f"{t['status']['median_s'] * 1000:.0f} ms",
            f"median of {t['status']['runs']}, exit {t['status']['exit_codes']}",
        ),
        ("`logpulse-agent status --json`", f"{t['status_json']['median_s'] * 1000:.0f} ms", ""),
        (
            "shutdown on SIGTERM",
            f"{result['shutdown']['seconds']:.2f} s",
            f"exit {result['shutdown']['exit_code']}",
        ),
        ("Vector stand-in RSS (not counted)", f"{result['vector_standin_rss_mib']:.1f} MiB", ""),
    ]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b:<{vwidth}}  {c}".rstrip() for a, b, c in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="sampled duration (default 5)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=60.0,
        help="seconds after the first heartbeat left out of steady figures",
    )
    parser.add_argument("--sample-interval", type=float, default=1.0)
    parser.add_argument("--cli-runs", type=int, default=7, help="runs of --version / status")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help="override (default: the agent's own default, 10 s)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=None,
        help="override (default: the agent's own default, 30 s)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the full result here")
    parser.add_argument("--samples", action="store_true", help="include every sample in the JSON")
    parser.add_argument(
        "--agent-command",
        default=None,
        help="the agent to run instead of the installed console script, for comparisons "
        "(e.g. '.venv/bin/python -OO -m logpulse_agent')",
    )
    parser.add_argument(
        "--release",
        action="store_true",
        help="build the PyInstaller release bundle first and measure it: what hosts run",
    )
    parser.add_argument(
        "--agent-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the agent (repeatable), e.g. MALLOC_ARENA_MAX=2",
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.warmup >= args.minutes * 60:
        parser.error("--warmup must be shorter than the run")
    if args.release and args.agent_command:
        parser.error("--release and --agent-command name two different agents")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lp-footprint-"))
    try:
        result = measure(args, workdir)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
