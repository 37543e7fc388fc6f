"""How ``logpulse-server serve`` runs the app: uvicorn (uvloop + httptools) with limits that
clients which are not agents cannot push it past.

uvicorn's httptools protocol buffers a request head of any size (llhttp has no limit, and
httptools grows a header value by concatenation), keeps a connection that never completes a
head open forever, and its ``limit_concurrency`` answers 503 to *every* request once the count
of open connections is over the limit, including agents' requests on connections they already
hold. :class:`GuardedHttpToolsProtocol` is uvicorn's own protocol with three additions:

* **Head size.** At most :data:`MAX_HEAD_BYTES` of request line and headers are fed to the
  parser; a longer head is answered 431 (414 when the request target alone is over
  :data:`MAX_REQUEST_LINE`), so the server never holds more than that per connection.
* **Head deadline.** A connection has ``header_timeout`` seconds from its first byte (or from
  being opened) to complete a request head; past it the connection is closed (with a 408
  when part of a head had arrived). Idle keep-alive connections stay governed by
  ``--keep-alive``.
* **Connection cap.** Beyond ``max_connections`` admitted connections, a new connection's
  request is answered 503 with ``Retry-After`` and the connection closed; connections already
  admitted keep working. :func:`raise_open_file_limit` lifts the soft open-file limit to the
  hard one at start, so the cap, not ``EMFILE``, is what bites.

Refusals close "lingering" (the answer is sent, the write side shut, what the client still
sends drained briefly), so a client that is still sending reads the status instead of a reset.
The choice of server lives here only: :func:`uvicorn_config` is all ``cli.serve`` uses.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = structlog.get_logger("logpulse.server")

MAX_REQUEST_LINE = 8 * 1024  # nginx's large_client_header_buffers size: 414 past it
MAX_HEAD_BYTES = 32 * 1024  # request line + headers; an agent's head is under 1 KiB
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 16_384
RESERVED_FDS = 128  # database, WAL, logs, listening socket, and room for refused connections
LINGER_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits one server applies to every connection."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_head_bytes: int = MAX_HEAD_BYTES
    max_request_line: int = MAX_REQUEST_LINE


def raise_open_file_limit() -> int:
    """Lift the soft ``RLIMIT_NOFILE`` to the hard limit (as far as allowed); the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # e.g. above the kernel's nr_open: keep what we have
            pass
    return soft


def default_max_connections(open_files: int) -> int:
    """The cap that leaves :data:`RESERVED_FDS` descriptors free, at most the default."""
    return max(1, min(DEFAULT_MAX_CONNECTIONS, open_files - RESERVED_FDS))


class _Gauge:
    """Admitted connections of one server, and refusals logged at most every 10 s per kind
    (``count``: refusals of that kind since its previous line, this one included)."""

    def __init__(self) -> None:
        self.admitted = 0
        self._refused: dict[str, tuple[float, int]] = {}

    def refused(self, reason: str, **fields: Any) -> None:
        now = time.monotonic()
        last, count = self._refused.get(reason, (0.0, 0))
        count += 1
        if now - last >= 10.0:
            log.warning("connection.refused", reason=reason, count=count, **fields)
            self._refused[reason] = (now, 0)
        else:
            self._refused[reason] = (last, count)


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


async def _over_capacity(scope: Any, receive: Any, send: Any) -> None:
    """The app of a connection beyond the cap: 503, then the connection is closed."""
    body = _error_body("over_capacity", "the server has too many open connections; retry later")
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_REASONS = {408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large"}
_CODES = {408: "request_timeout", 414: "uri_too_long", 431: "header_fields_too_large"}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head limits, head deadline and connection cap.

    Subclassed per server by :func:`protocol_class`, which sets ``limits`` and ``gauge``.
    """

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    gauge: ClassVar[_Gauge] = _Gauge()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = True  # bytes arriving now belong to a request head
        self._head_used = 0
        self._url_too_long = False
        self._lingering = False
        self._timer: asyncio.TimerHandle | None = None
        self._admitted = self.gauge.admitted < self.limits.max_connections
        if self._admitted:
            self.gauge.admitted += 1
        else:
            self.app = _over_capacity  # uvicorn runs ``self.app`` for each request head
            self.gauge.refused("max_connections", limit=self.limits.max_connections)
        self._arm(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted:
            self._admitted = False
            self.gauge.admitted -= 1
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # refused: drain what the client still sends
        while data:
            if not self._in_head:
                super().data_received(data)
                return
            if self._timer is None:
                self._arm(self.limits.header_timeout, self._head_timed_out)
            room = self.limits.max_head_bytes - self._head_used
            piece, data = data[:room], data[room:]
            self._head_used += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return  # uvicorn answered 400 to a malformed request
            if self._url_too_long:
                self._refuse(
                    414, f"the request target is over {self.limits.max_request_line} bytes"
                )
                return
            if self._in_head and self._head_used >= self.limits.max_head_bytes:
                limit = self.limits.max_head_bytes // 1024
                self._refuse(431, f"the request line and headers are over {limit} KiB")
                return

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_request_line:
            self._url_too_long = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_used = True, 0

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        self.gauge.refused("header_timeout", seconds=self.limits.header_timeout)
        if self._head_used:
            self._refuse(408, f"no complete request head within {self.limits.header_timeout:g} s")
        else:
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status``, shut the write side and drain the client's bytes briefly."""
        if status != 408:
            self.gauge.refused(_CODES[status], client=self.client[0] if self.client else None)
        body = _error_body(_CODES[status], message)
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        self._lingering = True
        self.transport.write(head + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(LINGER_SECONDS, self.transport.close)


def protocol_class(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for one server: its own ``limits`` and connection count."""
    attrs = {"limits": limits, "gauge": _Gauge()}
    return cast(
        "type[GuardedHttpToolsProtocol]",
        type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), attrs),
    )


def uvicorn_config(
    app: Any, limits: ConnectionLimits, *, keep_alive: int, access_log: bool
) -> uvicorn.Config:
    """The uvicorn configuration ``serve`` runs ``app`` with."""
    return uvicorn.Config(
        app,
        http=protocol_class(limits),
        ws="none",
        lifespan="on",
        access_log=access_log,
        timeout_keep_alive=keep_alive,
        server_header=False,
        timeout_graceful_shutdown=10,
        log_level="info",
    )
