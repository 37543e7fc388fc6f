"""Helpers around the Vector stand-in: install it as a ``vector`` binary, read its events.

The stand-in (``vector_standin.py``) honours the real CLI surface the agent relies on; tests
steer it through ``# standin: …`` comments in the config files and observe it through the JSON
lines it appends to ``$STANDIN_EVENTS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

STANDIN = Path(__file__).resolve().with_name("vector_standin.py")

# A minimal valid pipeline: one source, one sink.
MINIMAL_CONFIG = """\
sources:
  in:
    type: demo_logs
    format: json
sinks:
  out:
    type: blackhole
    inputs: [in]
"""


Series = dict[tuple[str, frozenset[tuple[str, str]]], float]
_SERIES_RE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$")
_LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_metrics(text: str) -> Series:
    """Prometheus text (as Vector's exporter writes it) as ``{(name, labels): value}``."""
    found: Series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SERIES_RE.match(line)
        if match is None:
            raise ValueError(f"not a Prometheus series line: {line!r}")
        labels = frozenset(
            (k, v.replace('\\"', '"').replace("\\\\", "\\"))
            for k, v in _LABEL_RE.findall(match.group(2) or "")
        )
        found[(match.group(1), labels)] = float(match.group(3))
    return found


def scrape(address: str, timeout: float = 5.0) -> str:
    """The body of ``GET http://<address>/metrics``."""
    answer = httpx.get(f"http://{address}/metrics", timeout=timeout, trust_env=False)
    answer.raise_for_status()
    return answer.text


def metric(series: Series, name: str, **labels: str) -> float:
    """The sum of ``name`` over the series carrying ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in series.items() if n == name and wanted <= have)


def install_standin(directory: Path) -> Path:
    """Write an executable ``vector`` wrapper into ``directory`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "vector"
    wrapper.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(STANDIN))} "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every event the stand-in recorded in ``path`` so far (none when it does not exist)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def events_named(path: Path, name: str) -> list[dict[str, Any]]:
    """The recorded events called ``name``, oldest first."""
    return [e for e in read_events(path) if e["event"] == name]


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


async def wait_until_async(
    condition: Callable[[], bool], timeout: float = 15.0, what: str = ""
) -> None:
    """Like :func:`wait_until`, but yields to the event loop while polling."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


class Lines:
    """Reads a child's output pipe line by line with a deadline (never blocks forever)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc, self._fd, self._buffer = proc, proc.stdout.fileno(), b""
        self.seen: list[str] = []

    def until(self, text: str, timeout: float = 15.0) -> list[str]:
        """Read until a line containing ``text``; return the lines read up to it."""
        start, deadline = len(self.seen), time.monotonic() + timeout
        while True:
            while b"\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\n", 1)
                self.seen.append(raw.decode("utf-8", "replace"))
                if text in self.seen[-1]:
                    return self.seen[start:]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {text!r}; got:\n" + "\n".join(self.seen))
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    raise AssertionError(f"output ended before {text!r}:\n" + "\n".join(self.seen))
                self._buffer += chunk

    def rest(self, timeout: float = 15.0) -> list[str]:
        """Every remaining line until the child closes its output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._fd], [], [], deadline - time.monotonic())
            chunk = os.read(self._fd, 65536) if ready else b""
            if ready and not chunk:
                break
            self._buffer += chunk
        lines = [raw.decode("utf-8", "replace") for raw in self._buffer.split(b"\n") if raw]
        self._buffer = b""
        self.seen += lines
        return lines
