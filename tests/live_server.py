"""A real ``logpulse-server`` subprocess on 127.0.0.1 for tests that need a socket.

    with start_live_server(tmp_path) as server:
        group = create_group_with_input(server, "web")
        token = mint_token(server, "web", max_uses=3)
        ... point an agent at server.url ...

The server runs ``python -m logpulse_agent.server.cli serve --port 0`` with its database under
``tmp_path`` and ``LOGPULSE_ADMIN_TOKEN`` set; start-up waits (bounded) for the "listening on"
line. Its stderr goes to ``tmp_path / "server.log"`` for post-mortems.
"""

from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

LISTENING = "logpulse-server listening on "
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

Hooks = dict[str, list[Callable[[httpx.Response], Any]]]


class LiveServer:
    """A running server process: ``url``, ``admin_token``, ``admin()``, ``stop()``."""

    def __init__(
        self,
        process: subprocess.Popen[str],
        reader: threading.Thread,
        url: str,
        admin_token: str,
        db: Path,
        log: Path,
        event_hooks: Hooks | None = None,
        lines: queue.Queue[str] | None = None,
    ) -> None:
        self.process, self.url, self.admin_token = process, url, admin_token
        self._lines = lines
        self._stdout: list[str] = []
        self.db, self.log = db, log
        self._reader = reader
        self._http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=10.0,
            event_hooks=event_hooks,
        )

    def admin(self, method: str, path: str, json: Any = None, **params: Any) -> httpx.Response:
        """A request to the admin API; ``path`` is below ``/api/v1/admin``."""
        return self._http.request(method, "/api/v1/admin" + path, json=json, params=params or None)

    def data(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        """The ``data`` of a successful admin request (raises on a 4xx/5xx)."""
        response = self.admin(method, path, json, **params)
        response.raise_for_status()
        return None if response.status_code == 204 else response.json()["data"]

    def stdout(self) -> str:
        """Everything the server printed on stdout so far (uvicorn's access log goes there)."""
        while self._lines is not None:
            try:
                self._stdout.append(self._lines.get_nowait())
            except queue.Empty:
                break
        return "".join(self._stdout)

    def stop(self) -> int:
        """SIGTERM, wait, SIGKILL if it lingers; returns the exit status."""
        self._http.close()
        terminate(self.process, STOP_TIMEOUT)
        close_output(self.process, self._reader)
        return self.process.returncode

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _drain(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)
    lines.put("")


def terminate(process: subprocess.Popen[Any], grace: float, kill_wait: float | None = None) -> None:
    """SIGTERM, up to ``grace`` seconds to exit, then SIGKILL (reaped within ``kill_wait``)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace if kill_wait is None else kill_wait)


def close_output(process: subprocess.Popen[str], reader: threading.Thread) -> None:
    """After the process ended: let the reader hit end-of-file, then close the pipe."""
    reader.join(STOP_TIMEOUT)
    if process.stdout is not None:
        process.stdout.close()


def start_live_server(
    tmp_path: Path,
    *,
    admin_token: str | None = None,
    ingest_url: str | None = None,
    offline_threshold: float | None = None,
    sweep_interval: float | None = None,
    db: Path | None = None,
    env: dict[str, str] | None = None,
    event_hooks: Hooks | None = None,
    port: int = 0,
    access_log: bool = False,
    extra_args: list[str] | None = None,
) -> LiveServer:
    """Start a server subprocess and wait until it listens (at most ``START_TIMEOUT`` s).

    ``event_hooks`` go to the httpx client behind :meth:`LiveServer.admin` (the server's own
    tests check every response against the OpenAPI document this way).
    """
    token = admin_token or "ADM_test_" + secrets.token_urlsafe(16)
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = db or tmp_path / "server.db"
    log = tmp_path / "server.log"
    args = [
        sys.executable,
        "-m",
        "logpulse_agent.server.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        str(db),
    ]
    if ingest_url:
        args += ["--ingest-url", ingest_url]
    if access_log:
        args.append("--access-log")
    args += extra_args or []
    if offline_threshold is not None:
        args += ["--offline-threshold", str(offline_threshold)]
    if sweep_interval is not None:
        args += ["--sweep-interval", str(sweep_interval)]
    full_env = {**os.environ, **(env or {}), "LOGPULSE_ADMIN_TOKEN": token}
    with log.open("a") as log_file:
        process = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
            env=full_env,
            text=True,
        )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=_drain, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=START_TIMEOUT)
    except queue.Empty:
        first = ""
    if not first.startswith(LISTENING):
        process.kill()
        process.wait(STOP_TIMEOUT)
        close_output(process, reader)
        raise RuntimeError(
            f"logpulse-server did not start (first line {first!r});"
            f" its log:\n{log.read_text(errors='replace')[-4000:]}"
        )
    url = first[len(LISTENING) :].strip()
    return LiveServer(process, reader, url, token, db, log, event_hooks, lines)


def create_group_with_input(
    server: LiveServer,
    name: str,
    *,
    input_type: str = "demo_logs",
    options: dict[str, Any] | None = None,
    **input_fields: Any,
) -> dict[str, Any]:
    """Create group ``name`` with one input (``demo_logs`` emitting JSON by default).

    Returns the group as the API shows it after the input was added (config version 2).
    """
    group = server.data("POST", "/groups", {"name": name})
    body = {
        "type": input_type,
        "name": f"{input_type} input",
        "options": options if options is not None else {"format": "json"},
        **input_fields,
    }
    server.data("POST", f"/groups/{group['id']}/inputs", body)
    result: dict[str, Any] = server.data("GET", f"/groups/{group['id']}")
    return result


def mint_token(
    server: LiveServer, group: str, *, max_uses: int = 100, ttl_seconds: int = 86400
) -> str:
    """A fresh ``EBT_`` token for ``group`` (id or slug)."""
    body = {"group": group, "maxUses": max_uses, "ttlSeconds": ttl_seconds}
    token: str = server.data("POST", "/enrolment-tokens", body)["token"]
    return token
