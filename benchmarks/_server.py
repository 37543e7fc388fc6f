"""A real ``logpulse-server`` subprocess on 127.0.0.1 for the benchmarks, plus a few helpers.

Unlike ``tests/live_server.py`` this keeps every stdout line with the monotonic time it was read
(the access log has no timestamps of its own), and exposes the process id so the benchmarks can
sample the server's CPU and memory with psutil.
"""

from __future__ import annotations

import math
import os
import platform
import queue
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.live_server import close_output, terminate

LISTENING = "logpulse-server listening on "
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


class BenchServer:
    """``url``, ``pid``, ``admin(...)``, ``lines()`` (timestamped stdout) and ``stop()``."""

    def __init__(
        self,
        workdir: Path,
        *,
        access_log: bool = False,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.admin_token = "ADM_bench_" + secrets.token_urlsafe(16)
        workdir.mkdir(parents=True, exist_ok=True)
        self.db = workdir / "server.db"
        self.log = workdir / "server.log"
        args = [
            sys.executable,
            "-m",
            "logpulse_agent.server.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--db",
            str(self.db),
            *(extra_args or []),
        ]
        if access_log:
            args.append("--access-log")
        full_env = {**os.environ, **(env or {}), "LOGPULSE_ADMIN_TOKEN": self.admin_token}
        with self.log.open("a") as log_file:
            self.process = subprocess.Popen(
                args,
                stdout=subprocess.PIPE,
                stderr=log_file,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                text=True,
            )
        self.pid = self.process.pid
        self._queue: queue.Queue[tuple[float, str]] = queue.Queue()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        try:
            _, first = self._queue.get(timeout=START_TIMEOUT)
        except queue.Empty:
            first = ""
        if not first.startswith(LISTENING):
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
            raise RuntimeError(
                f"logpulse-server did not start (first line {first!r}); log:\n"
                + self.log.read_text(errors="replace")[-3000:]
            )
        self.url = first[len(LISTENING) :].strip()
        self._lines: list[tuple[float, str]] = []
        self._http = httpx.Client(
            base_url=self.url, timeout=60.0, headers={"Authorization": f"Bearer {self.admin_token}"}
        )

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put((time.monotonic(), line))

    def lines(self) -> list[tuple[float, str]]:
        """Every stdout line after the "listening" one, with the monotonic time it was read."""
        while True:
            try:
                self._lines.append(self._queue.get_nowait())
            except queue.Empty:
                return self._lines

    def admin(self, method: str, path: str, json: Any = None) -> Any:
        """The ``data`` of an admin API call (below ``/api/v1/admin``); raises on 4xx/5xx."""
        response = self._http.request(method, "/api/v1/admin" + path, json=json)
        response.raise_for_status()
        return None if response.status_code == 204 else response.json()["data"]

    def setup_group(
        self, name: str, *, max_uses: int
    ) -> tuple[dict[str, Any], dict[str, Any], str]:
        """A group with one ``demo_logs`` input, and an enrolment token for ``max_uses`` hosts."""
        group = self.admin("POST", "/groups", {"name": name})
        source = self.admin(
            "POST",
            f"/groups/{group['id']}/inputs",
            {"type": "demo_logs", "name": "demo", "options": {"format": "json"}},
        )
        token = self.admin(
            "POST",
            "/enrolment-tokens",
            {"group": group["id"], "maxUses": max_uses, "ttlSeconds": 86400},
        )["token"]
        return group, source, token

    def stop(self) -> int:
        self._http.close()
        terminate(self.process, STOP_TIMEOUT)
        close_output(self.process, self._reader)
        return self.process.returncode


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (``pct`` in 0..100) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]
