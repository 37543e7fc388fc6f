"""Clients that are not agents, held against the server while a benchmark runs (issue 10 §2).

``SlowClients(host, port, idle=1000, trickle=100)`` keeps ``idle`` connections that never send
a byte and ``trickle`` connections that send a request head one byte per ``interval`` seconds and
never finish it. Each connection the server closes is opened again at once, so the counts hold
for the whole run: what the server must bear is a constant 1,100 hostile connections, not one
burst. ``stats()`` says how many were opened, how many the server cut (and with which status),
and how many connects failed.

``probe(host, port)`` tries the three single-client attacks once each (a 48 MiB header line, a
head that never completes, one connection past a full cap) and reports what the server did; it
is how the server options in ``benchmarks/README.md`` were compared.

Only 127.0.0.1 is ever a target; every loop ends when ``stop()`` is called or its bound passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

TRICKLE_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
REOPEN_PAUSE = 0.05  # after a failed connect, so a refusing server is not hammered


class SlowClients:
    """``idle`` silent and ``trickle`` never-finishing connections, reopened when cut."""

    def __init__(
        self, host: str, port: int, *, idle: int, trickle: int, interval: float = 1.0
    ) -> None:
        self.host, self.port = host, port
        self.idle, self.trickle, self.interval = idle, trickle, interval
        self.opened = 0
        self.open_now = 0
        self.cut: Counter[str] = Counter()  # "408", "503", "closed", "reset"
        self.connect_errors: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self, ramp_seconds: float = 2.0) -> None:
        """Open every connection, spread over ``ramp_seconds``."""
        total = self.idle + self.trickle
        for n in range(total):
            trickling = n >= self.idle
            self._tasks.append(asyncio.create_task(self._hold(trickling)))
            if n % 50 == 49:
                await asyncio.sleep(ramp_seconds * 50 / max(1, total))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        return {
            "idle": self.idle,
            "trickle": self.trickle,
            "open_now": self.open_now,
            "opened": self.opened,
            "cut_by_server": dict(self.cut),
            "connect_errors": dict(self.connect_errors),
        }

    async def _hold(self, trickling: bool) -> None:
        while not self._stopping:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError as exc:
                self.connect_errors[type(exc).__name__] += 1
                await asyncio.sleep(REOPEN_PAUSE)
                continue
            self.opened += 1
            self.open_now += 1
            try:
                self.cut[await self._until_cut(reader, writer, trickling)] += 1
            finally:
                self.open_now -= 1
                writer.close()

    async def _until_cut(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trickling: bool
    ) -> str:
        """Wait (trickling a head if asked) until the server ends the connection; how it did."""
        answer = asyncio.ensure_future(reader.read(4096))
        try:
            if trickling:
                writer.write(TRICKLE_HEAD)
            while not answer.done():
                await asyncio.wait([answer], timeout=self.interval)
                if trickling and not answer.done():
                    writer.write(b"x")
            data = answer.result()
        except (ConnectionError, OSError):
            return "reset"
        finally:
            answer.cancel()
        if data.startswith(b"HTTP/1.1 "):
            return data.split(b" ", 2)[1].decode("ascii", "replace")
        return "closed"


async def probe(
    host: str, port: int, *, cap: int | None = None, deadline: float = 30.0
) -> dict[str, Any]:
    """What the server does with one 48 MiB header, one trickled head, one idle connection and,
    when ``cap`` is given (the server's connection cap), one connection past a full cap (each
    bounded by ``deadline`` seconds)."""
    result = {
        "huge_header": await _huge_header(host, port, deadline),
        "trickle": await _held(host, port, deadline, trickling=True),
        "idle": await _held(host, port, deadline, trickling=False),
    }
    if cap is not None:
        result["cap"] = await _past_the_cap(host, port, cap, deadline)
    return result


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: float
) -> str:
    """The status of one ``GET /healthz`` on an open connection (the body is read too)."""
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), deadline)
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await asyncio.wait_for(reader.readexactly(length), deadline)
        return head.split(b" ", 2)[1].decode()
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        return "reset"
    except asyncio.TimeoutError:
        return "no answer"


async def _past_the_cap(host: str, port: int, cap: int, deadline: float) -> dict[str, Any]:
    live = await asyncio.open_connection(host, port)  # an agent's kept-alive connection
    first = await _request(*live, deadline)
    idle = [await asyncio.open_connection(host, port) for _ in range(cap - 1)]
    await asyncio.sleep(0.5)  # let the server accept them all
    new = await asyncio.open_connection(host, port)
    result = {
        "live_before": first,
        "new_connection": await _request(*new, deadline),
        "live_after": await _request(*live, deadline),
    }
    for _, writer in [live, new, *idle]:
        writer.close()
    return result


async def _huge_header(host: str, port: int, deadline: float) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection(host, port)
    start = time.monotonic()
    answer = asyncio.ensure_future(reader.read(4096))
    sent = 0
    with contextlib.suppress(ConnectionError, OSError):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * (1024 * 1024)
        for _ in range(48):
            if answer.done():
                break
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        if not answer.done():
            writer.write(b"\r\n\r\n")
    await asyncio.wait([answer], timeout=deadline)
    status = "no answer"
    if answer.done() and answer.exception() is None:
        data = answer.result()
        status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "closed"
    elif answer.done():
        status = "reset"
    answer.cancel()
    writer.close()
    seconds = time.monotonic() - start
    return {"status": status, "mib_sent": sent // (1024 * 1024), "seconds": seconds}


async def _held(host: str, port: int, deadline: float, *, trickling: bool) -> dict[str, Any]:
    """How long one idle (or trickling) connection stays open, and how it ends."""
    clients = SlowClients(host, port, idle=0, trickle=1, interval=0.5)
    reader, writer = await asyncio.open_connection(host, port)
    start = time.monotonic()
    try:
        how = await asyncio.wait_for(clients._until_cut(reader, writer, trickling), deadline)
    except asyncio.TimeoutError:
        how = f"still open after {deadline:g} s"
    writer.close()
    return {"cut": how, "seconds": time.monotonic() - start}
