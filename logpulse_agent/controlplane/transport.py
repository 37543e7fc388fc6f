"""Getting one final answer from the control plane, retrying what may heal by itself.

:func:`send` makes attempts until one gives a final answer. An attempt sends the request, reads
the body as a stream with a size cap, and sorts failures: network errors, timeouts, ``5xx`` and
``429`` raise :class:`Retryable`; a refused TLS handshake raises ``TLSError`` and an oversized
or undecodable body ``ProtocolError``, both final. Every other status is a final :class:`Answer`
whose meaning the client decides. The loop is tenacity's; when the attempts run out it raises
``TransientError``.

Between attempts the policy's backoff (:mod:`logpulse_agent.backoff`) waits, or a
``Retry-After`` (seconds or HTTP-date), capped at ``ceiling``, when that asks for longer.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import parsedate_to_datetime

import httpx
import structlog
import tenacity

from logpulse_agent.backoff import Backoff
from logpulse_agent.controlplane.protocol import parse_error_body
from logpulse_agent.errors import ControlPlaneError, ProtocolError, TLSError, TransientError
from logpulse_agent.redact import redact

log = structlog.get_logger(__name__)

_ERROR_BODY_LIMIT = 64 * 1024  # error bodies only feed a one-line message


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    """How often and how patiently a request is retried: a :class:`Backoff` with a limit.

    ``max_attempts`` counts every request made, the first included; ``None`` retries until
    success (the daemon's loops), ``1`` never retries.
    """

    initial: float = 1.0
    ceiling: float = 300.0
    jitter: float = 0.1
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts!r}")


def next_wait(
    policy: RetryPolicy, attempt: int, rng: random.Random, retry_after: float | None
) -> float:
    """The wait after failed attempt ``attempt``: the backoff, or Retry-After when longer."""
    delay = policy.delay(attempt, rng)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.ceiling))
    return delay


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP-date), else None.

    ``now`` is the current Unix time, used for the HTTP-date form; a date in the past means 0.
    Unparseable values are ignored (None): the normal backoff applies.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, origin unknown (RFC 5322 section 3.3)
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


class Retryable(Exception):
    """An attempt failed in a way worth retrying: a redacted one-line ``reason``, the HTTP
    ``status`` (None for network errors) and the ``retry_after`` seconds asked for (or None)."""

    def __init__(
        self, reason: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.reason, self.status, self.retry_after = reason, status, retry_after
        super().__init__(reason)


def classify_transport_error(exc: httpx.TransportError, origin: str) -> Exception:
    """What a failed exchange with ``origin`` means: :class:`Retryable` unless it cannot heal.

    Certificate and other TLS handshake failures become :class:`TLSError` (retrying does not
    fix a CA bundle or a skewed clock); a TLS connection merely cut short is retried. A URL
    httpx cannot send to, or a request it refused to build, is a plain ``ControlPlaneError``.
    """
    detail = _tls_failure(exc)
    if detail is not None:
        return TLSError(
            f"TLS handshake with {origin} failed ({redact(detail)}); check the server's "
            f"certificate, this host's clock (clock skew makes valid certificates look expired or "
            f"not yet valid) and the ca_bundle setting"
        )
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError)):
        return ControlPlaneError(f"cannot send a request to {origin}: {_describe(exc)}")
    return Retryable(_describe(exc))


def _tls_failure(exc: BaseException) -> str | None:
    """Why the TLS handshake was refused, or None when ``exc`` is no TLS refusal.

    httpx chains httpcore's error, which chains the ``ssl.SSLError``; when something cut the
    chain (a test double, a wrapper) the message OpenSSL wrote still says it.
    """
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLError):
            # EOF and close-notify mid-handshake are dropped connections, not a trust problem.
            if isinstance(cause, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                return None
            # verify_message and reason are set by the C layer; an SSLError built in Python
            # lacks them.
            verify_message = getattr(cause, "verify_message", None)
            if verify_message:
                return f"certificate verify failed: {verify_message}"
            return str(getattr(cause, "reason", None) or cause or type(cause).__name__)
    text = str(exc)
    return text.split("] ", 1)[-1] if "CERTIFICATE_VERIFY_FAILED" in text else None


_TIMEOUTS: dict[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "connect timed out",
    httpx.ReadTimeout: "read timed out",
    httpx.WriteTimeout: "write timed out",
    httpx.PoolTimeout: "timed out waiting for a free connection",
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or during, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _describe(exc: httpx.TransportError) -> str:
    """A short one-line reason for a transport error, e.g. ``connection refused``."""
    for kind, text in _TIMEOUTS.items():
        if isinstance(exc, kind):
            return text
    # The OS's words beat the wrappers' ("All connection attempts failed"): errno > 0 is a
    # socket error, < 0 a resolver (getaddrinfo) one whose strerror is already the text.
    # (An SSLError's errno is an OpenSSL code, not the OS's.)
    errors = [
        e
        for e in _chain(exc)
        if isinstance(e, OSError) and not isinstance(e, ssl.SSLError) and e.errno is not None
    ]
    if errors:
        number = errors[0].errno or 0
        text = os.strerror(number) if number > 0 else str(errors[0].strerror)
    else:
        text = re.sub(r"^\[Errno -?\d+\]\s*", "", " ".join(str(exc).split()))
    if text[1:2].islower():  # "Connection refused" -> "connection refused", "SSL" stays
        text = text[:1].lower() + text[1:]
    return redact(text) if text else type(exc).__name__


@dataclass(frozen=True)
class Answer:
    """A final HTTP answer (anything but 5xx/429) with its body read."""

    status: int
    headers: httpx.Headers
    body: bytes = field(repr=False)


async def send(
    http: httpx.AsyncClient,
    request: httpx.Request,
    *,
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]],
    clock: Callable[[], float],
    max_body: int,
    origin: str,
    deadline: float,
) -> Answer:
    """Send ``request`` until a final answer under ``policy``; log ``controlplane.retry``.

    ``origin`` (``scheme://host``) names the control plane in messages; ``clock`` is Unix time
    for Retry-After dates; ``deadline`` bounds each attempt as a whole (an answer that has not
    fully arrived by then is retried). Raises ``TransientError`` when the attempts run out.
    """
    endpoint = request.url.path

    async def attempt() -> Answer:
        try:
            return await asyncio.wait_for(_attempt(http, request, max_body, clock), deadline)
        except httpx.TransportError as exc:
            raise classify_transport_error(exc, origin) from None
        except asyncio.TimeoutError:
            raise Retryable(f"no complete answer within {deadline:g}s") from None

    controller = _retrying(policy, rng, sleep, endpoint)
    try:
        answer: Answer = await controller(attempt)
    except tenacity.RetryError as exc:
        last = exc.last_attempt.exception()
        assert isinstance(last, Retryable)  # only Retryable is retried
        state = "unreachable" if last.status is None else "failing"
        raise TransientError(
            f"control plane {origin} {state} after {exc.last_attempt.attempt_number} attempts "
            f"({request.method} {endpoint}): {last.reason}"
        ) from None
    return answer


def _retrying(
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]],
    endpoint: str,
) -> tenacity.AsyncRetrying:
    """tenacity's loop for ``policy``: retries :class:`Retryable` only, waits as
    :func:`next_wait` says and logs ``controlplane.retry`` before each wait."""

    def wait(state: tenacity.RetryCallState) -> float:
        return next_wait(policy, state.attempt_number, rng, _retryable(state).retry_after)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = _retryable(state)
        log.warning(
            "controlplane.retry",
            endpoint=endpoint,
            attempt=state.attempt_number,
            delay=round(state.upcoming_sleep, 3),
            reason=error.reason,
            status=error.status,
        )

    stop: tenacity.stop.stop_base = (
        tenacity.stop_never
        if policy.max_attempts is None
        else tenacity.stop_after_attempt(policy.max_attempts)
    )
    return tenacity.AsyncRetrying(
        sleep=sleep,
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception_type(Retryable),
        before_sleep=before_sleep,
    )


def _retryable(state: tenacity.RetryCallState) -> Retryable:
    error = state.outcome.exception() if state.outcome is not None else None
    assert isinstance(error, Retryable)  # only Retryable reaches wait/before_sleep
    return error


async def _attempt(
    http: httpx.AsyncClient, request: httpx.Request, max_body: int, clock: Callable[[], float]
) -> Answer:
    """One exchange; raises :class:`Retryable` for 5xx/429 (transport errors propagate)."""
    response = await http.send(request, stream=True)
    try:
        status = response.status_code
        if status == 429 or status >= 500:
            try:
                message = parse_error_body(await read_capped(response, _ERROR_BODY_LIMIT, True))
            except ProtocolError:  # an undecodable error page changes nothing: retry anyway
                message = None
            raise Retryable(
                f"HTTP {status}" + (f": {message}" if message else ""),
                status=status,
                retry_after=parse_retry_after(response.headers.get("retry-after"), clock()),
            )
        ok = 200 <= status < 300
        body = await read_capped(response, max_body if ok else _ERROR_BODY_LIMIT, truncate=not ok)
        return Answer(status, response.headers, body)
    finally:
        await response.aclose()


async def read_capped(response: httpx.Response, limit: int, truncate: bool = False) -> bytes:
    """The decoded body, at most ``limit`` bytes, abandoned as soon as it passes the limit.

    Past the limit: the first ``limit`` bytes when ``truncate``, else ``ProtocolError``. The
    caller closes the response, which drops the connection with the rest unread.
    """
    declared = response.headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > limit:
        raise ProtocolError(f"response body over {_size(limit)} (Content-Length {declared})")
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                if truncate:
                    return bytes(body[:limit])
                raise ProtocolError(f"response body over {_size(limit)}")
    except httpx.DecodingError:
        raise ProtocolError("response body could not be decoded (bad Content-Encoding)") from None
    return bytes(body)


def _size(n: int) -> str:
    mib = 1024 * 1024
    return f"{n // mib} MiB" if n % mib == 0 else f"{n} bytes"
