"""Two interchangeable HTTP/1.1 clients for the fleet generator, both with keep-alive pools.

``RawPool`` writes the exact bytes httpx would send (same header set and order as the agent's
``httpx.AsyncClient``) over asyncio streams and parses the answer itself. It costs a fraction of
httpx's CPU per request, which matters here: the generator shares the machine's two cores with
the server it measures, so every cycle it burns is taken from the server. ``HttpxPool`` is the
same interface over ``httpx.AsyncClient`` for comparison (``fleet_scale.py --client httpx``).

``per_request=True`` opens a fresh connection for every request and closes it afterwards: what
real agents cost the server when their 10 s / 30 s intervals exceed the server's keep-alive
timeout (uvicorn's default is 5 s) and no proxy pools connections in front of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

AGENT_VERSION = "0.1.0"
USER_AGENT = f"logpulse-agent/{AGENT_VERSION}"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class PoolStats:
    connects: int = 0
    reconnects: int = 0  # a pooled connection the server had closed (keep-alive timeout)
    waits: list[float] = field(default_factory=list)  # seconds spent waiting for a connection


class RawPool:
    """At most ``size`` keep-alive connections to ``host:port``, reused last-in first-out."""

    def __init__(self, host: str, port: int, size: int, *, per_request: bool = False) -> None:
        self.host, self.port, self.per_request = host, port, per_request
        self.host_header = f"{host}:{port}".encode()
        self._slots = asyncio.Semaphore(size)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.stats = PoolStats()

    def build(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> bytes:
        lines = [
            f"{method} {path} HTTP/1.1".encode(),
            b"Host: " + self.host_header,
            b"Accept: */*",
            b"Accept-Encoding: gzip, deflate",
            b"Connection: keep-alive",
            f"User-Agent: {USER_AGENT}".encode(),
        ]
        lines += [f"{k}: {v}".encode() for k, v in headers]
        if body is not None:
            lines += [f"Content-Length: {len(body)}".encode(), b"Content-Type: application/json"]
        return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")

    async def request(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None = None
    ) -> Answer:
        raw = self.build(method, path, headers, body)
        asked = time.monotonic()
        async with self._slots:
            self.stats.waits.append(time.monotonic() - asked)
            reused = bool(self._idle) and not self.per_request
            conn = self._idle.pop() if reused else await self._connect()
            try:
                answer, keep = await self._exchange(conn, raw)
            except (ConnectionError, asyncio.IncompleteReadError):
                _close(conn)
                if not reused:
                    raise
                self.stats.reconnects += 1  # the server timed the idle connection out
                conn = await self._connect()
                answer, keep = await self._exchange(conn, raw)
            if keep and not self.per_request:
                self._idle.append(conn)
            else:
                _close(conn)
            return answer

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.stats.connects += 1
        return await asyncio.open_connection(self.host, self.port)

    @staticmethod
    async def _exchange(
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], raw: bytes
    ) -> tuple[Answer, bool]:
        reader, writer = conn
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        else:
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
        keep = headers.get("connection", "").lower() != "close"
        return Answer(status, headers, body), keep

    async def close(self) -> None:
        while self._idle:
            _close(self._idle.pop())


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _close(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    with contextlib.suppress(Exception):
        conn[1].close()


class HttpxPool:
    """The same interface over one ``httpx.AsyncClient`` (what the agent uses)."""

    def __init__(self, host: str, port: int, size: int, *, per_request: bool = False) -> None:
        keepalive = 0 if per_request else size
        self._client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}",
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=keepalive),
            timeout=httpx.Timeout(60.0, pool=None),
            follow_redirects=False,
        )
        self.stats = PoolStats()

    async def request(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None = None
    ) -> Answer:
        extra: dict[str, Any] = {}
        if body is not None:
            extra["content"] = body
            headers = [*headers, ("Content-Type", "application/json")]
        response = await self._client.request(method, path, headers=headers, **extra)
        return Answer(response.status_code, dict(response.headers), response.content)

    async def close(self) -> None:
        await self._client.aclose()
