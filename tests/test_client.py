"""The control-plane client against a faked control plane (respx), with injected sleep and clock."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
import structlog

from logpulse_agent.controlplane.client import ControlPlaneClient, RetryPolicy, make_http_client
from logpulse_agent.controlplane.protocol import (
    ConfigUnchanged,
    ConfigUpdate,
    EnrolRequest,
    Heartbeat,
    PendingAction,
)
from logpulse_agent.errors import (
    ControlPlaneError,
    EnrolRejected,
    ProtocolError,
    RequestRejected,
    RevokedError,
    SettingsError,
    TLSError,
    TransientError,
    UnknownGroup,
)
from logpulse_agent.settings import Settings

pytestmark = pytest.mark.anyio

BASE = "https://cp.example.test"
AGT = "AGT_s3cretAgentToken-abc"
EBT = "EBT_s3cretBootstrap_xyz"
NOW = 1_767_225_600.0  # the injected clock: 2026-01-01T00:00:00Z
YAML = b"sources:\n  journald:\n    type: journald\n"
ETAG = "sha256:" + hashlib.sha256(YAML).hexdigest()
ENROL = "/api/v1/agents/enrol"
CONFIG = "/api/v1/agents/agt-1/config"
HEARTBEAT = "/api/v1/agents/agt-1/heartbeat"


class RecordingSleep:
    """Stands in for asyncio.sleep: records each delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class ChunkStream(httpx.AsyncByteStream):
    """A response body produced chunk by chunk, counting how much the client pulled."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk, self.count, self.sent, self.closed = chunk, count, 0, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.sent += 1
            yield self.chunk

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(Settings(api_url=BASE), version="9.9.9") as client:
        yield client


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def make_client(http: httpx.AsyncClient, sleep: RecordingSleep, **kw: Any) -> ControlPlaneClient:
    kw.setdefault("retry", RetryPolicy(initial=1, ceiling=300, max_attempts=3, jitter=0))
    return ControlPlaneClient(
        http, BASE, token=AGT, sleep=sleep, rng=random.Random(1), clock=lambda: NOW, **kw
    )


@pytest.fixture
def client(http: httpx.AsyncClient, sleep: RecordingSleep) -> ControlPlaneClient:
    return make_client(http, sleep)


def error(status: int, code: str, message: str, **kw: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, **kw)


def config_ok(
    body: bytes = YAML, etag: str = ETAG, headers: dict[str, str] | None = None
) -> httpx.Response:
    base = {"content-type": "application/yaml", "x-config-version": "7", "x-config-etag": etag}
    return httpx.Response(200, content=body, headers=base | (headers or {}))


def beat() -> Heartbeat:
    return Heartbeat("0.4.2", "0.40.0", 7, True, 42, None)


def enrol_request(group_slug: str | None = None) -> EnrolRequest:
    return EnrolRequest(EBT, "web-1", "linux", "Debian 12", "6.1.0", "0.4.2", "0.40.0", group_slug)


def assert_one_line_without_tokens(err: BaseException) -> None:
    text = f"{err} {err!r}"
    assert "\n" not in str(err)
    assert "AGT_s3cret" not in text
    assert "EBT_s3cret" not in text


class TestEnrol:
    async def test_returns_the_identity_on_201(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A 201 gives the agent id, agent token, group and config version."""
        data = {"agentId": "agt-1", "agentToken": AGT, "groupId": "grp-1", "configVersion": 2}
        route = api.post(ENROL).respond(201, json={"data": data})
        result = await client.enrol(enrol_request("edge"))
        assert (result.agent_id, result.agent_token, result.config_version) == ("agt-1", AGT, 2)
        sent = route.calls.last.request
        assert json.loads(sent.content)["bootstrapToken"] == EBT
        assert json.loads(sent.content)["groupSlug"] == "edge"
        assert sent.headers["user-agent"] == "logpulse-agent/9.9.9"

    async def test_never_sends_the_agent_token(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """Enrol authenticates with the bootstrap token in the body, never a bearer header."""
        data = {"agentId": "agt-1", "agentToken": AGT, "groupId": "grp-1", "configVersion": 2}
        route = api.post(ENROL).respond(201, json={"data": data})
        await client.enrol(enrol_request())
        assert "authorization" not in route.calls.last.request.headers

    async def test_rejected_bootstrap_token_raises_enrol_rejected(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A 401 is EnrolRejected carrying the server's (redacted) message, not retried."""
        route = api.post(ENROL).mock(return_value=error(401, "token_expired", f"{EBT} expired"))
        with pytest.raises(EnrolRejected, match="token_expired: EBT_\\*\\*\\* expired") as info:
            await client.enrol(enrol_request())
        assert_one_line_without_tokens(info.value)
        assert route.call_count == 1

    async def test_unknown_group_raises_unknown_group(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A 404 names the group that does not exist."""
        api.post(ENROL).mock(return_value=error(404, "unknown_group", "no such group"))
        with pytest.raises(UnknownGroup, match="no group 'edge'"):
            await client.enrol(enrol_request("edge"))

    @pytest.mark.parametrize("status", [400, 409, 422])
    async def test_malformed_request_raises_request_rejected(
        self,
        api: respx.MockRouter,
        client: ControlPlaneClient,
        sleep: RecordingSleep,
        status: int,
    ) -> None:
        """Any other 4xx is RequestRejected with the server's message, after exactly one try."""
        route = api.post(ENROL).mock(return_value=error(status, "invalid", "hostname required"))
        with pytest.raises(RequestRejected, match=f"HTTP {status}: invalid: hostname required"):
            await client.enrol(enrol_request())
        assert route.call_count == 1
        assert sleep.delays == []


class TestFetchConfig:
    async def test_sends_since_etag_and_credentials(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """The poll carries since, If-None-Match, the bearer token and the User-Agent."""
        route = api.get(CONFIG).respond(204)
        assert await client.fetch_config("agt-1", 6, ETAG) == ConfigUnchanged()
        sent = route.calls.last.request
        assert sent.url.params["since"] == "6"
        assert sent.headers["if-none-match"] == ETAG
        assert sent.headers["authorization"] == f"Bearer {AGT}"
        assert sent.headers["user-agent"] == "logpulse-agent/9.9.9"

    async def test_omits_if_none_match_without_an_applied_config(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A fresh agent polls with since=0 and no If-None-Match."""
        route = api.get(CONFIG).respond(204)
        await client.fetch_config("agt-1", 0, None)
        assert route.calls.last.request.url.params["since"] == "0"
        assert "if-none-match" not in route.calls.last.request.headers

    async def test_uses_the_token_set_after_construction(
        self, api: respx.MockRouter, http: httpx.AsyncClient, sleep: RecordingSleep
    ) -> None:
        """The daemon sets the agent token after enrolling; the next request carries it."""
        client = ControlPlaneClient(http, BASE, sleep=sleep)
        route = api.get(CONFIG).respond(204)
        await client.fetch_config("agt-1", 0, None)
        assert "authorization" not in route.calls.last.request.headers
        client.token = AGT
        await client.fetch_config("agt-1", 0, None)
        assert route.calls.last.request.headers["authorization"] == f"Bearer {AGT}"

    async def test_returns_a_verified_update_on_200(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A 200 whose body hashes to its etag is the new config."""
        api.get(CONFIG).mock(return_value=config_ok())
        assert await client.fetch_config("agt-1", 6, None) == ConfigUpdate(7, ETAG, YAML)

    async def test_returns_the_empty_config(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A {} body arrives as an update that says it is empty."""
        etag = "sha256:" + hashlib.sha256(b"{}").hexdigest()
        api.get(CONFIG).mock(return_value=config_ok(b"{}", etag))
        update = await client.fetch_config("agt-1", 6, None)
        assert isinstance(update, ConfigUpdate)
        assert update.is_empty

    async def test_rejects_body_whose_etag_does_not_match(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A 200 whose body hash differs from x-config-etag is refused as corrupt."""
        api.get(CONFIG).mock(return_value=config_ok(YAML + b"# truncated?\n"))
        with pytest.raises(ProtocolError, match="etag mismatch"):
            await client.fetch_config("agt-1", 6, None)

    async def test_rejects_a_config_that_is_not_yaml(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A 200 with another Content-Type (a captive portal's HTML) is refused."""
        api.get(CONFIG).mock(return_value=config_ok(headers={"content-type": "text/html"}))
        with pytest.raises(ProtocolError, match="content-type is text/html"):
            await client.fetch_config("agt-1", 6, None)

    @pytest.mark.parametrize("header", ["x-config-version", "x-config-etag"])
    async def test_rejects_a_config_without_its_headers(
        self, api: respx.MockRouter, client: ControlPlaneClient, header: str
    ) -> None:
        """A 200 missing x-config-version or x-config-etag is refused, naming the header."""
        response = config_ok()
        del response.headers[header]
        api.get(CONFIG).mock(return_value=response)
        with pytest.raises(ProtocolError, match=f"header {header} is missing"):
            await client.fetch_config("agt-1", 6, None)

    @pytest.mark.parametrize("status", [403, 404])
    async def test_revoked_or_deleted_agent_raises_revoked(
        self, api: respx.MockRouter, client: ControlPlaneClient, status: int
    ) -> None:
        """403/404 mean revoked or deleted: RevokedError naming the fix, not retried."""
        route = api.get(CONFIG).mock(return_value=error(status, "revoked", f"token {AGT} revoked"))
        with pytest.raises(RevokedError, match="re-enrol") as info:
            await client.fetch_config("agt-1", 6, None)
        assert_one_line_without_tokens(info.value)
        assert route.call_count == 1

    async def test_aborts_a_body_over_the_cap_while_streaming(
        self, api: respx.MockRouter, http: httpx.AsyncClient, sleep: RecordingSleep
    ) -> None:
        """An oversized body is abandoned as soon as it passes the cap, never buffered whole."""
        client = make_client(http, sleep, max_body=16 * 1024 * 1024)
        stream = ChunkStream(b"x" * 1024 * 1024, count=1000)  # 1000 MiB if read to the end
        headers = {"content-type": "application/yaml", "x-config-version": "7"}
        api.get(CONFIG).mock(
            side_effect=lambda _: httpx.Response(200, headers=headers, stream=stream)
        )
        with pytest.raises(ProtocolError, match="response body over 16 MiB"):
            await client.fetch_config("agt-1", 6, None)
        assert stream.sent == 17
        assert stream.closed

    async def test_refuses_a_declared_length_over_the_cap_without_reading(
        self, api: respx.MockRouter, http: httpx.AsyncClient, sleep: RecordingSleep
    ) -> None:
        """A Content-Length over the cap is refused before a single byte is read."""
        client = make_client(http, sleep, max_body=1024)
        stream = ChunkStream(b"x" * 512, count=10)
        response = httpx.Response(200, headers={"content-length": "5120"}, stream=stream)
        api.get(CONFIG).mock(return_value=response)
        with pytest.raises(ProtocolError, match="over 1024 bytes"):
            await client.fetch_config("agt-1", 6, None)
        assert stream.sent == 0


class TestHeartbeat:
    async def test_sends_the_body_with_the_spec_field_names(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """The posted JSON has exactly SPEC section 5's keys."""
        route = api.post(HEARTBEAT).respond(200, json={"data": {"pendingActions": []}})
        await client.heartbeat("agt-1", beat())
        sent = json.loads(route.calls.last.request.content)
        assert set(sent) == {
            "agentVersion",
            "vectorVersion",
            "appliedConfigVersion",
            "vectorRunning",
            "vectorUptimeSeconds",
            "configError",
        }
        assert route.calls.last.request.headers["authorization"] == f"Bearer {AGT}"

    async def test_returns_pending_actions_and_config_version(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """The reply's actions and group config version come back typed."""
        action = {"id": "a1", "type": "upgrade_agent", "payload": {"targetVersion": "0.5.0"}}
        data = {"pendingActions": [action], "configVersion": 8}
        api.post(HEARTBEAT).respond(200, json={"data": data})
        reply = await client.heartbeat("agt-1", beat())
        assert reply.pending_actions == (
            PendingAction("a1", "upgrade_agent", {"targetVersion": "0.5.0"}),
        )
        assert reply.config_version == 8

    async def test_skips_a_malformed_action_with_a_warning(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A malformed pending action is logged and left out; the valid ones are kept."""
        actions = [
            {"id": "bad", "type": "upgrade_agent", "payload": []},
            {"id": "ok", "type": "x", "payload": {}},
        ]
        api.post(HEARTBEAT).respond(200, json={"data": {"pendingActions": actions}})
        with structlog.testing.capture_logs() as logs:
            reply = await client.heartbeat("agt-1", beat())
        assert [a.id for a in reply.pending_actions] == ["ok"]
        assert [m.id for m in reply.malformed_actions] == ["bad"]
        skipped = [e for e in logs if e["event"] == "controlplane.action_skipped"]
        assert skipped == [
            {
                "event": "controlplane.action_skipped",
                "log_level": "warning",
                "action_id": "bad",
                "reason": "heartbeat response: pendingActions[0]: field 'payload' must be an "
                "object, got a list",
            }
        ]

    @pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"data": {"pendingAct', b""])
    async def test_malformed_json_raises_a_clear_protocol_error(
        self, api: respx.MockRouter, client: ControlPlaneClient, body: bytes
    ) -> None:
        """A 200 that is not JSON is a one-line ProtocolError, not a crash or a retry."""
        route = api.post(HEARTBEAT).respond(200, content=body)
        with pytest.raises(ProtocolError, match=r"^heartbeat response is not valid JSON: ") as info:
            await client.heartbeat("agt-1", beat())
        assert_one_line_without_tokens(info.value)
        assert route.call_count == 1

    async def test_missing_field_raises_a_protocol_error_naming_it(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A reply without pendingActions names the missing field."""
        api.post(HEARTBEAT).respond(200, json={"data": {"configVersion": 3}})
        with pytest.raises(ProtocolError, match=r"field 'data.pendingActions' is missing"):
            await client.heartbeat("agt-1", beat())

    @pytest.mark.parametrize("status", [401, 403, 404])
    async def test_revoked_agent_raises_revoked(
        self, api: respx.MockRouter, client: ControlPlaneClient, status: int
    ) -> None:
        """A refused agent token on a heartbeat is RevokedError."""
        api.post(HEARTBEAT).mock(return_value=error(status, "forbidden", "revoked"))
        with pytest.raises(RevokedError, match=f"HTTP {status}: forbidden: revoked"):
            await client.heartbeat("agt-1", beat())

    async def test_redirect_is_not_followed(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A 3xx is refused (the bearer token must not follow it to another host)."""
        redirect = httpx.Response(302, headers={"location": "https://elsewhere.test/x"})
        route = api.post(HEARTBEAT).mock(return_value=redirect)
        with pytest.raises(ProtocolError, match=r"HTTP 302 redirecting to https://elsewhere.test"):
            await client.heartbeat("agt-1", beat())
        assert route.call_count == 1


class TestRetries:
    async def test_retries_5xx_with_exponential_backoff(
        self, api: respx.MockRouter, http: httpx.AsyncClient, sleep: RecordingSleep
    ) -> None:
        """5xx answers are retried after 1, 2, 4 … seconds until one succeeds."""
        client = make_client(http, sleep, retry=RetryPolicy(max_attempts=None, jitter=0))
        failures = [httpx.Response(status) for status in (500, 502, 503, 504)]
        route = api.get(CONFIG).mock(side_effect=[*failures, httpx.Response(204)])
        assert await client.fetch_config("agt-1", 6, None) == ConfigUnchanged()
        assert route.call_count == 5
        assert sleep.delays == [1, 2, 4, 8]

    async def test_an_answer_that_never_completes_is_cut_off_and_retried(
        self, api: respx.MockRouter, http: httpx.AsyncClient, sleep: RecordingSleep
    ) -> None:
        """A server or proxy that stalls (or trickles a byte per read timeout) cannot hold a
        poll or a heartbeat open: each attempt has a deadline as a whole."""
        stalled = asyncio.Event()

        async def stall(request: httpx.Request) -> httpx.Response:
            stalled.set()
            await asyncio.sleep(3600)
            return httpx.Response(204)

        api.get(CONFIG).mock(side_effect=[stall, httpx.Response(204)])
        client = make_client(http, sleep, attempt_deadline=0.2)
        answer = await asyncio.wait_for(client.fetch_config("agt-1", 6, None), 10)
        assert answer == ConfigUnchanged()
        assert stalled.is_set()  # the first attempt stalled; respx records only the second
        assert sleep.delays == [1]

    async def test_jitter_stays_within_its_bounds(
        self, api: respx.MockRouter, http: httpx.AsyncClient, sleep: RecordingSleep
    ) -> None:
        """With jitter j each delay lies in [(1 - j) * base, base] and the delays vary."""
        client = make_client(http, sleep, retry=RetryPolicy(initial=1, jitter=0.5, max_attempts=9))
        api.get(CONFIG).mock(side_effect=[httpx.Response(503)] * 8 + [httpx.Response(204)])
        await client.fetch_config("agt-1", 6, None)
        for attempt, delay in enumerate(sleep.delays):
            assert 0.5 * 2**attempt <= delay <= 2**attempt
        assert {round(d / 2**i, 6) for i, d in enumerate(sleep.delays)} != {1.0}

    async def test_backoff_stops_growing_at_the_ceiling(
        self, api: respx.MockRouter, http: httpx.AsyncClient, sleep: RecordingSleep
    ) -> None:
        """The delay never exceeds the ceiling (5 minutes by default)."""
        client = make_client(http, sleep, retry=RetryPolicy(initial=60, jitter=0, max_attempts=6))
        api.get(CONFIG).mock(side_effect=[httpx.Response(503)] * 5 + [httpx.Response(204)])
        await client.fetch_config("agt-1", 6, None)
        assert sleep.delays == [60, 120, 240, 300, 300]

    async def test_honours_retry_after_seconds_on_429(
        self, api: respx.MockRouter, client: ControlPlaneClient, sleep: RecordingSleep
    ) -> None:
        """A 429's Retry-After in seconds is waited when longer than the backoff."""
        limited = error(429, "rate_limited", "slow down", headers={"retry-after": "30"})
        api.get(CONFIG).mock(side_effect=[limited, httpx.Response(204)])
        await client.fetch_config("agt-1", 6, None)
        assert sleep.delays == [30]

    async def test_honours_retry_after_as_an_http_date(
        self, api: respx.MockRouter, client: ControlPlaneClient, sleep: RecordingSleep
    ) -> None:
        """A Retry-After date is turned into seconds from the injected clock."""
        later = formatdate(NOW + 45, usegmt=True)
        unavailable = httpx.Response(503, headers={"retry-after": later})
        api.get(CONFIG).mock(side_effect=[unavailable, httpx.Response(204)])
        await client.fetch_config("agt-1", 6, None)
        assert sleep.delays == [45]

    @pytest.mark.parametrize(
        ("retry_after", "expected"), [("0", 1), ("86400", 300), ("whenever", 1)]
    )
    async def test_retry_after_never_shortens_the_backoff_nor_passes_the_ceiling(
        self,
        api: respx.MockRouter,
        client: ControlPlaneClient,
        sleep: RecordingSleep,
        retry_after: str,
        expected: float,
    ) -> None:
        """A shorter or unparseable Retry-After keeps the backoff; a longer one is capped."""
        limited = httpx.Response(429, headers={"retry-after": retry_after})
        api.get(CONFIG).mock(side_effect=[limited, httpx.Response(204)])
        await client.fetch_config("agt-1", 6, None)
        assert sleep.delays == [expected]

    @pytest.mark.parametrize(
        ("failure", "reason"),
        [
            (httpx.ConnectTimeout("timed out"), "connect timed out"),
            (httpx.ReadTimeout("timed out"), "read timed out"),
            (httpx.ConnectError("[Errno 111] Connection refused"), "connection refused"),
            (httpx.RemoteProtocolError("Server disconnected"), "server disconnected"),
        ],
    )
    async def test_gives_up_on_network_errors_with_a_clear_message(
        self,
        api: respx.MockRouter,
        client: ControlPlaneClient,
        sleep: RecordingSleep,
        failure: Exception,
        reason: str,
    ) -> None:
        """Network errors and timeouts are retried, then TransientError says what happened."""
        route = api.get(CONFIG).mock(side_effect=failure)
        with pytest.raises(TransientError) as info:
            await client.fetch_config("agt-1", 6, None)
        assert str(info.value) == (
            f"control plane {BASE} unreachable after 3 attempts (GET {CONFIG}): {reason}"
        )
        assert route.call_count == 3
        assert sleep.delays == [1, 2]

    async def test_names_a_refused_connection_over_a_real_socket(
        self, sleep: RecordingSleep
    ) -> None:
        """A closed port reads "connection refused", not the wrappers' generic words."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        async with make_http_client(Settings(api_url=url), version="1.2.3") as http:
            client = ControlPlaneClient(http, url, sleep=sleep, retry=RetryPolicy(max_attempts=2))
            with pytest.raises(TransientError, match=r"after 2 attempts .*: connection refused$"):
                await client.fetch_config("agt-1", 0, None)
        assert len(sleep.delays) == 1

    async def test_gives_up_on_5xx_with_the_server_message(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """After the last 5xx the TransientError carries the status and the server's words."""
        api.post(HEARTBEAT).mock(return_value=error(503, "maintenance", "back at 04:00"))
        with pytest.raises(TransientError, match=r"failing after 3 attempts .*HTTP 503: maint"):
            await client.heartbeat("agt-1", beat())

    async def test_never_retries_other_4xx(
        self, api: respx.MockRouter, client: ControlPlaneClient, sleep: RecordingSleep
    ) -> None:
        """A 400 is final: exactly one request, no wait."""
        route = api.post(HEARTBEAT).mock(return_value=error(400, "invalid", "bad body"))
        with pytest.raises(RequestRejected):
            await client.heartbeat("agt-1", beat())
        assert route.call_count == 1
        assert sleep.delays == []

    async def test_policy_can_be_given_per_call(
        self, api: respx.MockRouter, http: httpx.AsyncClient, sleep: RecordingSleep
    ) -> None:
        """A call's own policy overrides the client's (here: retry forever by default)."""
        client = make_client(http, sleep, retry=RetryPolicy(max_attempts=None))
        route = api.post(HEARTBEAT).mock(return_value=httpx.Response(502))
        with pytest.raises(TransientError, match="after 2 attempts"):
            await client.heartbeat("agt-1", beat(), retry=RetryPolicy(max_attempts=2))
        assert route.call_count == 2

    async def test_resends_the_same_request_on_each_attempt(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """A retried poll still carries since, If-None-Match and the token."""
        route = api.get(CONFIG).mock(side_effect=[httpx.Response(500), httpx.Response(204)])
        await client.fetch_config("agt-1", 6, ETAG)
        first, second = (call.request for call in route.calls)
        for sent in (first, second):
            assert sent.url.params["since"] == "6"
            assert sent.headers["if-none-match"] == ETAG
            assert sent.headers["authorization"] == f"Bearer {AGT}"

    async def test_logs_each_retry_as_an_event(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """Each wait is logged as controlplane.retry with endpoint, attempt, delay and reason."""
        limited = httpx.Response(429, headers={"retry-after": "5"})
        api.get(CONFIG).mock(
            side_effect=[httpx.ConnectError("Connection refused"), limited, httpx.Response(204)]
        )
        with structlog.testing.capture_logs() as logs:
            await client.fetch_config("agt-1", 6, None)
        assert [e for e in logs if e["event"] == "controlplane.retry"] == [
            {
                "event": "controlplane.retry",
                "log_level": "warning",
                "endpoint": CONFIG,
                "attempt": 1,
                "delay": 1.0,
                "reason": "connection refused",
                "status": None,
            },
            {
                "event": "controlplane.retry",
                "log_level": "warning",
                "endpoint": CONFIG,
                "attempt": 2,
                "delay": 5.0,
                "reason": "HTTP 429",
                "status": 429,
            },
        ]


def refuse_certificate(request: httpx.Request) -> httpx.Response:
    """What httpx raises when the server's certificate is refused: ConnectError from ssl's."""
    cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate …")
    cause.verify_message = "certificate has expired"
    raise httpx.ConnectError(str(cause), request=request) from cause


@contextlib.asynccontextmanager
async def tls_server(cert: Path, key: Path) -> AsyncIterator[str]:
    """A real HTTPS server on 127.0.0.1 that answers every request with 204."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"https://127.0.0.1:{port}"


class TestTLS:
    async def test_certificate_failure_raises_tls_error_without_retrying(
        self, sleep: RecordingSleep
    ) -> None:
        """A refused certificate is TLSError pointing at certificate, clock and ca_bundle."""
        calls: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(request)
            return refuse_certificate(request)

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            with pytest.raises(TLSError) as info:
                await make_client(http, sleep).fetch_config("agt-1", 6, None)
        message = str(info.value)
        assert "certificate verify failed: certificate has expired" in message
        assert "clock" in message
        assert "ca_bundle" in message
        assert len(calls) == 1
        assert sleep.delays == []

    async def test_recognises_a_certificate_failure_by_its_message(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """When the exception chain was cut, OpenSSL's words still identify the failure."""
        failure = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
        route = api.get(CONFIG).mock(side_effect=failure)
        with pytest.raises(TLSError, match="failed \\(certificate verify failed\\)"):
            await client.fetch_config("agt-1", 6, None)
        assert route.call_count == 1

    async def test_connection_cut_during_the_handshake_is_retried(
        self, sleep: RecordingSleep
    ) -> None:
        """An EOF in the handshake is a dropped connection, retried like any network error."""
        answers: list[Any] = [ssl.SSLEOFError(8, "EOF occurred"), httpx.Response(204)]

        def handler(request: httpx.Request) -> httpx.Response:
            answer = answers.pop(0)
            if isinstance(answer, httpx.Response):
                return answer
            raise httpx.ConnectError("EOF occurred", request=request) from answer

        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            with structlog.testing.capture_logs() as logs:
                result = await make_client(http, sleep).fetch_config("agt-1", 6, None)
        assert result == ConfigUnchanged()
        assert sleep.delays == [1]
        assert [e["reason"] for e in logs] == ["EOF occurred"]

    async def test_untrusted_server_is_refused_over_a_real_socket(
        self, self_signed: tuple[Path, Path], sleep: RecordingSleep
    ) -> None:
        """Against a real server with an unknown certificate, the system trust store refuses."""
        async with (
            tls_server(*self_signed) as url,
            make_http_client(Settings(api_url=url), version="1.2.3") as http,
        ):
            client = ControlPlaneClient(http, url, sleep=sleep)
            with pytest.raises(TLSError, match="certificate verify failed"):
                await client.fetch_config("agt-1", 0, None)
        assert sleep.delays == []

    async def test_ca_bundle_makes_the_server_trusted(
        self, self_signed: tuple[Path, Path], sleep: RecordingSleep
    ) -> None:
        """With the server's CA as ca_bundle the same server is trusted."""
        cert, _ = self_signed
        async with tls_server(*self_signed) as url:
            settings = Settings(api_url=url, ca_bundle=cert)
            async with make_http_client(settings, version="1.2.3") as http:
                client = ControlPlaneClient(http, url, sleep=sleep)
                assert await client.fetch_config("agt-1", 0, None) == ConfigUnchanged()


class TestSecrets:
    async def test_no_token_reaches_messages_or_logs(
        self, api: respx.MockRouter, client: ControlPlaneClient
    ) -> None:
        """Tokens echoed by the server appear in no exception message, repr or log event."""
        echo = f"token {AGT} / {EBT} refused"
        api.post(ENROL).mock(return_value=error(401, "bad", echo))
        api.get(CONFIG).mock(return_value=error(403, "revoked", echo))
        api.post(HEARTBEAT).mock(return_value=error(503, "down", echo))
        errors: list[ControlPlaneError] = []
        with structlog.testing.capture_logs() as logs:
            for call in (
                client.enrol(enrol_request()),
                client.fetch_config("agt-1", 6, None),
                client.heartbeat("agt-1", beat()),
            ):
                with pytest.raises(ControlPlaneError) as info:
                    await call
                errors.append(info.value)
        assert [type(e) for e in errors] == [EnrolRejected, RevokedError, TransientError]
        for err in errors:
            assert_one_line_without_tokens(err)
        assert len(logs) == 2
        assert "s3cret" not in repr(logs)

    async def test_client_repr_names_only_the_control_plane(
        self, client: ControlPlaneClient
    ) -> None:
        """The client's repr shows where it talks to, never its token."""
        assert repr(client) == f"ControlPlaneClient('{BASE}')"


class TestRetryPolicy:
    @pytest.mark.parametrize(
        "kwargs",
        [{"initial": 0}, {"initial": 10, "ceiling": 5}, {"max_attempts": 0}, {"jitter": 1.5}],
    )
    def test_refuses_a_nonsensical_policy(self, kwargs: dict[str, Any]) -> None:
        """Impossible settings fail loudly when the policy is built."""
        with pytest.raises(ValueError, match="RetryPolicy"):
            RetryPolicy(**kwargs)


class TestMakeHttpClient:
    async def test_configures_timeouts_user_agent_and_redirects(self) -> None:
        """Connect 10 s, read 30 s, our User-Agent, proxies from the environment, no redirects."""
        async with make_http_client(Settings(api_url=BASE), version="1.2.3") as http:
            assert http.timeout.connect == 10
            assert http.timeout.read == 30
            assert http.headers["user-agent"] == "logpulse-agent/1.2.3"
            assert http.follow_redirects is False
            assert http.trust_env is True

    def test_unreadable_ca_bundle_is_a_settings_error(self, tmp_path: Path) -> None:
        """A ca_bundle that does not exist is reported as that setting's problem."""
        missing = tmp_path / "nope.pem"
        with pytest.raises(SettingsError, match="setting 'ca_bundle'"):
            make_http_client(Settings(api_url=BASE, ca_bundle=missing), version="1.2.3")

    def test_ca_bundle_that_is_not_pem_is_a_settings_error(self, tmp_path: Path) -> None:
        """A ca_bundle holding no certificates is refused the same way."""
        bogus = tmp_path / "bogus.pem"
        bogus.write_text("not a certificate\n")
        with pytest.raises(SettingsError, match="setting 'ca_bundle'"):
            make_http_client(Settings(api_url=BASE, ca_bundle=bogus), version="1.2.3")
