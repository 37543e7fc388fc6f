"""The agent's side of the control-plane protocol (SPEC section 5) over one ``httpx.AsyncClient``.

Every call answers with a typed outcome or one exception from :mod:`logpulse_agent.errors`:

    network error, timeout, 5xx, 429   retried (see :mod:`.transport`), then
                                       TransientError
    TLS handshake refused              TLSError, not retried
    403/404 (401) on agent endpoints   RevokedError
    401 / 404 on enrol                 EnrolRejected / UnknownGroup
    other 4xx                          RequestRejected, with the server's message
    3xx, bad JSON, missing fields,     ProtocolError
    wrong types, etag mismatch, body
    over ``max_body``

Bodies are read as a stream and abandoned as soon as they pass ``max_body``. Request headers are
never logged; server-provided text in messages passes through :func:`~logpulse_agent.redact.redact`.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import structlog

from logpulse_agent.controlplane.protocol import (
    ConfigUnchanged,
    ConfigUpdate,
    EnrolRequest,
    EnrolResult,
    Heartbeat,
    HeartbeatReply,
    decode_json,
    parse_config_update,
    parse_enrol_response,
    parse_error_body,
    parse_heartbeat_response,
)
from logpulse_agent.controlplane.transport import Answer, RetryPolicy, send
from logpulse_agent.errors import (
    ControlPlaneError,
    EnrolRejected,
    ProtocolError,
    RequestRejected,
    RevokedError,
    SettingsError,
    UnknownGroup,
)
from logpulse_agent.redact import redact
from logpulse_agent.settings import Settings

log = structlog.get_logger(__name__)

MAX_BODY = 16 * 1024 * 1024
# One request, start to end. httpx's timeouts bound each connect and each read, so a server or
# proxy trickling a byte every 25 s could otherwise hold a poll or a heartbeat open for hours;
# 5 minutes still lets a 16 MiB config through a slow link.
ATTEMPT_DEADLINE = 300.0


def make_http_client(settings: Settings, *, version: str) -> httpx.AsyncClient:
    """The production HTTP client: timeouts, User-Agent, trust store, proxies, no redirects.

    Trust is ``settings.ca_bundle`` when set, else the system store (OpenSSL's default paths,
    which honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``), topped up with certifi's bundle when the
    system store looks empty (a relocated self-contained Python). ``HTTPS_PROXY``/``NO_PROXY``
    are honoured. Redirects are not followed: an agent token must not travel to another host.
    """
    if settings.ca_bundle is not None:
        try:
            context = ssl.create_default_context(cafile=str(settings.ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise SettingsError("ca_bundle", str(settings.ca_bundle), reason) from None
    else:
        context = ssl.create_default_context()
        if not context.cert_store_stats()["x509_ca"]:
            import certifi  # imported only here: most hosts never need it, and it costs RSS

            context.load_verify_locations(cafile=certifi.where())
    return httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, connect=10.0),
        headers={"User-Agent": f"logpulse-agent/{version}"},
        verify=context,
        trust_env=True,
        follow_redirects=False,
    )


class ControlPlaneClient:
    """Talks to one control plane. ``token`` is the ``AGT_`` bearer for agent endpoints.

    ``retry`` is the default policy; every call takes ``retry=`` to override it (the CLI enrols
    with a few attempts, the daemon's loops bound theirs so the next tick carries fresh state).
    ``sleep``, ``rng`` and ``clock`` (Unix time, for Retry-After dates) are injectable.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        token: str | None = None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen, so sharing it is safe
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        max_body: int = MAX_BODY,
        attempt_deadline: float = ATTEMPT_DEADLINE,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._origin = _origin(self._base)
        self._token = token
        self._retry = retry
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock
        self._max_body = max_body
        self._attempt_deadline = attempt_deadline

    def __repr__(self) -> str:
        return f"ControlPlaneClient({self._origin!r})"

    @property
    def token(self) -> str | None:
        return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        self._token = value

    async def enrol(self, req: EnrolRequest, *, retry: RetryPolicy | None = None) -> EnrolResult:
        """Exchange a bootstrap token for an identity; never sends the agent token."""
        path = "/api/v1/agents/enrol"
        answer = await self._request("POST", path, retry, json=req.to_json(), auth=False)
        if answer.status in (200, 201):
            return parse_enrol_response(decode_json(answer.body, "enrol response"))
        if answer.status == 401:
            raise EnrolRejected(
                f"control plane {self._origin} refused the bootstrap token (unknown, expired, "
                f"revoked or used up): {_server_message(answer)}"
            )
        if answer.status == 404:
            raise UnknownGroup(
                f"control plane {self._origin} has no group {req.group_slug or '(default)'!r}: "
                f"{_server_message(answer)}"
            )
        raise self._unexpected(answer, "enrol")

    async def fetch_config(
        self, agent_id: str, since: int, etag: str | None, *, retry: RetryPolicy | None = None
    ) -> ConfigUnchanged | ConfigUpdate:
        """Poll the group config; ``since`` is the applied version (0 for none), ``etag`` its etag.

        ``204`` (or ``304``) → unchanged; ``200`` → an update whose etag matched its body.
        """
        path = f"/api/v1/agents/{quote(agent_id, safe='')}/config"
        headers = {"If-None-Match": etag} if etag else {}
        answer = await self._request("GET", path, retry, params={"since": since}, headers=headers)
        if answer.status in (204, 304):
            return ConfigUnchanged()
        if answer.status == 200:
            return parse_config_update(answer.headers, answer.body)
        raise self._unexpected(answer, "config")

    async def heartbeat(
        self, agent_id: str, body: Heartbeat, *, retry: RetryPolicy | None = None
    ) -> HeartbeatReply:
        """Report health and action results; return the pending actions and group version.

        Malformed pending actions are left out of the reply (see :mod:`protocol`) and logged.
        """
        path = f"/api/v1/agents/{quote(agent_id, safe='')}/heartbeat"
        answer = await self._request("POST", path, retry, json=body.to_json())
        if answer.status != 200:
            raise self._unexpected(answer, "heartbeat")
        reply = parse_heartbeat_response(decode_json(answer.body, "heartbeat response"))
        for bad in reply.malformed_actions:
            log.warning("controlplane.action_skipped", action_id=bad.id, reason=bad.reason)
        return reply

    def _unexpected(self, answer: Answer, what: str) -> ControlPlaneError:
        """The error for a final status the endpoint has no success meaning for."""
        if what != "enrol" and answer.status in (401, 403, 404):
            return RevokedError(
                f"control plane {self._origin} refused this agent on {what} "
                f"({_server_message(answer)}): it was revoked or deleted; re-enrol the host "
                f"with `logpulse-agent enrol --force`"
            )
        if 400 <= answer.status < 500:
            return RequestRejected(
                f"control plane {self._origin} rejected the {what} request: "
                f"{_server_message(answer)}"
            )
        if 300 <= answer.status < 400:
            location = redact(answer.headers.get("location", "nowhere"))[:200]
            return ProtocolError(
                f"{what} answered HTTP {answer.status} redirecting to {location}; redirects "
                f"are not followed, check api_url"
            )
        return ProtocolError(f"{what} answered unexpected HTTP {answer.status}")

    async def _request(
        self,
        method: str,
        path: str,
        retry: RetryPolicy | None,
        *,
        auth: bool = True,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """Send with retries (see :mod:`.transport`); return the final answer."""
        send_headers = dict(headers or {})
        if auth and self._token:
            send_headers["Authorization"] = f"Bearer {self._token}"
        request = self._http.build_request(
            method, self._base + path, json=json, params=params, headers=send_headers
        )
        return await send(
            self._http,
            request,
            policy=retry if retry is not None else self._retry,
            rng=self._rng,
            sleep=self._sleep,
            clock=self._clock,
            max_body=self._max_body,
            origin=self._origin,
            deadline=self._attempt_deadline,
        )


def _server_message(answer: Answer) -> str:
    """``HTTP 422: code: message`` for a refused request, the server's part redacted."""
    message = parse_error_body(answer.body)
    return f"HTTP {answer.status}" + (f": {message}" if message else "")


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what messages name, without path or credentials."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


__all__ = [
    "MAX_BODY",
    "ControlPlaneClient",
    "RetryPolicy",
    "make_http_client",
]
