"""Runs the real ``logpulse-agent`` as a subprocess with its whole layout under one directory.

Every wait is bounded and polls files the agent writes (status snapshot, the stand-in's event
log), so a broken agent fails a test in seconds instead of hanging it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psutil

from tests.standin import install_standin, read_events

TOKEN_MARKERS = ("AGT_", "EBT_")


class WaitTimeout(AssertionError):
    pass


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll ``predicate`` every 20 ms until it returns something truthy, at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def vector_processes(config_path: Path) -> list[psutil.Process]:
    """Live (not zombie) processes whose command line names ``config_path`` as an argument."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info.get("cmdline") or []
        if str(config_path) in cmd and proc.info.get("status") != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def kill_vectors(config_path: Path) -> None:
    """SIGKILL whatever still runs on ``config_path`` (test clean-up: a Vector that a killed
    agent had spawned but that never reported its start is not in the stand-in's events)."""
    for proc in vector_processes(config_path):
        with contextlib.suppress(psutil.Error):
            proc.kill()


class AgentProcess:
    """One agent host: config, state and log directories plus a stand-in Vector."""

    def __init__(
        self,
        root: Path,
        api_url: str,
        *,
        poll_interval: float = 0.1,
        heartbeat_interval: float = 0.2,
        vector_bin: Path | None = None,
        extra_env: dict[str, str] | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.root = root
        self.api_url = api_url
        self.config_dir = root / "etc"
        self.state_dir = root / "lib"
        self.log_dir = root / "log"
        self.events_path = root / "vector-events.jsonl"
        for d in (self.config_dir, self.state_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.vector_bin = vector_bin or install_standin(root / "bin")
        self.command = command or [sys.executable, "-m", "logpulse_agent"]
        self.env = {
            **os.environ,
            "LOGPULSE_CONFIG": str(self.config_dir / "agent.yaml"),
            "LOGPULSE_CONFIG_DIR": str(self.config_dir),
            "LOGPULSE_STATE_DIR": str(self.state_dir),
            "LOGPULSE_LOG_DIR": str(self.log_dir),
            "LOGPULSE_VECTOR_BIN": str(self.vector_bin),
            "LOGPULSE_POLL_INTERVAL": str(poll_interval),
            "LOGPULSE_HEARTBEAT_INTERVAL": str(heartbeat_interval),
            "LOGPULSE_API_URL": api_url,
            "STANDIN_EVENTS": str(self.events_path),
            **(extra_env or {}),
        }
        (self.config_dir / "agent.yaml").write_text("# test host\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.outputs: list[Path] = []

    # --- commands ----------------------------------------------------------------------------
    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [*self.command, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        record = self.root / f"cli-{len(self.outputs)}.out"
        record.write_text(out.stdout + out.stderr)
        self.outputs.append(record)
        return out

    def enrol(self, token: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("enrol", "--api-url", self.api_url, "--token", token, *extra)

    def status(self) -> tuple[int, dict[str, Any]]:
        out = self.cli("status", "--json")
        return out.returncode, json.loads(out.stdout)

    def start(self, env: dict[str, str] | None = None) -> None:
        assert self.proc is None or self.proc.poll() is not None, "agent already running"
        self.runs += 1
        log = self.root / f"agent-run-{self.runs}.out"
        self.outputs.append(log)
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [*self.command, "run"],
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        kill_vectors(self.state_dir / "vector.yaml")

    # --- observations ------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        try:
            data = json.loads((self.state_dir / "status.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def applied_version(self) -> int:
        return int((self.snapshot().get("config") or {}).get("appliedVersion") or 0)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        events = read_events(self.events_path)
        return [e for e in events if kind is None or e.get("event") == kind]

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.outputs if p.exists())

    def live_config(self) -> str:
        return (self.state_dir / "vector.yaml").read_text()

    def token(self) -> str:
        return (self.config_dir / "agent-token").read_text().strip()

    def assert_no_secret(self, secrets: Iterable[str]) -> None:
        """No token in any log file, command output, status file or rendered Vector config."""
        secrets = [s for s in secrets if s]
        places = [*self.outputs, *self.log_dir.rglob("*"), *self.state_dir.glob("*.json")]
        places += [*self.state_dir.glob("*.yaml"), self.events_path]
        for path in places:
            if not path.is_file():
                continue
            text = path.read_text(errors="replace")
            for secret in secrets:
                assert secret not in text, f"a token leaked into {path}"
