"""The HEC-compatible ingest over the app: what Vector's splunk_hec_logs sink sends is counted,
everything else gets Splunk's status and code, and the admin API shows what arrived."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from logpulse_agent.server.app import create_app
from tests.server.harness import ADMIN_TOKEN, DEMO, Agent, FakeClock, Fleet
from tests.server.spec_check import SpecChecker

pytestmark = pytest.mark.anyio

CHANNEL = "0f4b1c9e-8a8e-4d8b-9d8e-1a2b3c4d5e6f"
ROUTING = {"index": "main", "sourcetype": "agent_demo_logs", "source": "logpulse-agent"}


def hec_event(message: str = "hello", **fields: Any) -> dict[str, Any]:
    """One event as Vector's encoder writes it (src/sinks/splunk_hec/logs/encoder.rs)."""
    body: dict[str, Any] = {
        "event": {"message": message, "service": "vector", "source_type": "demo_logs"},
        "fields": {},
        "time": 1750000000.25,
        **ROUTING,
    }
    body.update(fields)
    return body


def batch(*events: dict[str, Any]) -> bytes:
    """Events concatenated with nothing between them, as the sink sends a batch."""
    return b"".join(json.dumps(e, separators=(",", ":")).encode() for e in events)


def headers(agent: Agent, **extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Splunk {agent.token}",
        "Content-Type": "application/json",
        "X-Splunk-Request-Channel": CHANNEL,
        **extra,
    }


async def send(fleet: Fleet, agent: Agent, body: bytes, **extra: str) -> httpx.Response:
    return await fleet.client.post(
        "/services/collector/event", content=body, headers=headers(agent, **extra)
    )


@pytest.fixture
async def agent(fleet: Fleet) -> Agent:
    await fleet.group("web", DEMO)
    return await fleet.enrol("web")


class TestAccepted:
    async def test_a_batch_is_answered_success_without_an_ack_id(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """200 {"text": "Success", "code": 0} and no ackId: the sink never waits for acks."""
        response = await send(fleet, agent, batch(hec_event(), hec_event()))
        assert response.status_code == 200
        assert response.json() == {"text": "Success", "code": 0}
        assert "ackId" not in response.json()

    async def test_events_and_bytes_are_counted_on_the_agent_row(
        self, fleet: Fleet, agent: Agent, clock: FakeClock
    ) -> None:
        """The agent row's ingest holds the events, their uncompressed bytes and the time."""
        body = batch(*(hec_event(f"m{i}") for i in range(7)))
        await send(fleet, agent, body)
        shown = (await fleet.agent(agent))["ingest"]
        assert shown["events"] == 7
        assert shown["bytes"] == len(body)
        assert shown["lastEventAt"] == "2025-06-15T15:06:40Z"  # the fake clock's now

    async def test_gzip_bodies_count_the_same(self, fleet: Fleet, agent: Agent) -> None:
        """Content-Encoding: gzip (compression: gzip) is inflated; bytes are uncompressed."""
        body = batch(*(hec_event(f"m{i}") for i in range(50)))
        response = await send(fleet, agent, gzip.compress(body), **{"Content-Encoding": "gzip"})
        assert response.status_code == 200
        shown = (await fleet.agent(agent))["ingest"]
        assert (shown["events"], shown["bytes"]) == (50, len(body))

    async def test_non_ascii_events_count_utf8_bytes(self, fleet: Fleet, agent: Agent) -> None:
        """Bytes are UTF-8 bytes, not characters."""
        body = json.dumps(hec_event("héllo wörld ✓"), ensure_ascii=False).encode()
        await send(fleet, agent, body)
        assert (await fleet.agent(agent))["ingest"]["bytes"] == len(body)

    async def test_every_event_path_and_whitespace_between_events(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """/event, /event/1.0 and /services/collector all count; newlines between are fine."""
        for path in ("/services/collector/event", "/services/collector/event/1.0",
                     "/services/collector"):  # fmt: skip
            body = batch(hec_event()) + b"\n " + batch(hec_event())
            response = await fleet.client.post(path, content=body, headers=headers(agent))
            assert response.status_code == 200, path
        assert (await fleet.agent(agent))["ingest"]["events"] == 6

    async def test_counts_per_group_index_sourcetype_and_source(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """Totals group by any dimensions; missing routing fields get Splunk-like defaults."""
        await send(fleet, agent, batch(hec_event(), hec_event(), hec_event()))
        await send(fleet, agent, batch(hec_event(index="audit", sourcetype="nginx")))
        plain = {"event": "a line"}
        await send(fleet, agent, batch(plain))
        rows = await fleet.data("GET", "/ingest/totals", by="index,sourcetype,source")
        found = {(r["index"], r["sourcetype"], r["source"]): r["events"] for r in rows}
        assert found == {
            ("main", "agent_demo_logs", "logpulse-agent"): 3,
            ("audit", "nginx", "logpulse-agent"): 1,
            ("main", "httpevent", "http:logpulse"): 1,
        }
        assert rows[0]["events"] == 3  # most events first
        by_group = await fleet.data("GET", "/ingest/totals", by="group,agent")
        assert by_group == [
            {
                "groupId": agent.group_id,
                "agentId": agent.id,
                "events": 5,
                "bytes": by_group[0]["bytes"],
                "lastEventAt": by_group[0]["lastEventAt"],
            }
        ]
        only_audit = await fleet.data("GET", "/ingest/totals", by="index", group="web")
        assert {r["index"]: r["events"] for r in only_audit} == {"main": 4, "audit": 1}
        total = await fleet.data("GET", "/ingest/totals")
        assert total[0]["events"] == 5 and set(total[0]) == {"events", "bytes", "lastEventAt"}

    async def test_events_per_second_over_the_last_ten_seconds(
        self, fleet: Fleet, agent: Agent, clock: FakeClock
    ) -> None:
        """A steady 20 events/s reads as 20/s; ten seconds after the last event, 0."""
        clock.now = 1_750_000_000.0
        for _ in range(30):
            await send(fleet, agent, batch(*(hec_event() for _ in range(20))))
            clock.advance(1)
        shown = (await fleet.agent(agent))["ingest"]
        assert shown["eventsPerSecond"] == pytest.approx(20, abs=2.5)
        clock.advance(20)
        assert (await fleet.agent(agent))["ingest"]["eventsPerSecond"] == 0

    async def test_totals_with_a_bad_dimension_or_unknown_agent(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """An unknown dimension is a 400, an unknown agent or group a 404."""
        assert (await fleet.admin("GET", "/ingest/totals", by="colour")).status_code == 400
        assert (await fleet.admin("GET", "/ingest/totals", agent="nope")).status_code == 404
        assert (await fleet.admin("GET", "/ingest/totals", group="nope")).status_code == 404


class TestRefusedCredentials:
    @pytest.mark.parametrize(
        ("header", "status", "code"),
        [
            (None, 401, 2),  # Token is required
            ("Bearer AGT_x", 401, 3),  # Invalid authorization: not "Splunk <token>"
            ("Splunk", 401, 3),
            ("Splunk AGT_" + "A" * 43, 403, 4),  # Invalid token: never issued
            ("Splunk EBT_" + "A" * 43, 403, 4),
            ("Splunk not-a-token", 403, 4),
        ],
    )
    async def test_missing_garbled_or_unknown_tokens(
        self, fleet: Fleet, agent: Agent, header: str | None, status: int, code: int
    ) -> None:
        """Splunk's statuses and codes, with a HEC JSON body; nothing is counted."""
        sent = {} if header is None else {"Authorization": header}
        response = await fleet.client.post(
            "/services/collector/event", content=batch(hec_event()), headers=sent
        )
        assert response.status_code == status
        assert response.json()["code"] == code
        assert (await fleet.agent(agent))["ingest"]["events"] == 0

    async def test_a_revoked_agents_token_is_disabled(self, fleet: Fleet, agent: Agent) -> None:
        """After revoke, the next batch gets 403 "Token disabled" (code 1)."""
        assert (await send(fleet, agent, batch(hec_event()))).status_code == 200
        await fleet.data("POST", f"/agents/{agent.id}/revoke")
        response = await send(fleet, agent, batch(hec_event()))
        assert response.status_code == 403
        assert response.json() == {"text": "Token disabled", "code": 1}
        assert (await fleet.agent(agent))["ingest"]["events"] == 1
        status = await fleet.data("GET", "/ingest")
        assert status["requests"] == {"accepted": 1, "refused": {"token_disabled": 1}}


class TestRefusedBodies:
    @pytest.mark.parametrize(
        ("body", "code", "number"),
        [
            (b"", 5, None),  # No data
            (b"  \n", 5, None),
            (b"not json", 6, 0),
            (b'["event"]', 6, 0),
            (batch(hec_event()) + b'{"event": "x"', 6, 1),  # the second event is cut short
            (batch(hec_event()) + b'{"fields": {}}', 12, 1),  # Event field is required
            (b'{"event": ""}', 13, 0),  # Event field cannot be blank
            (b'{"event": null}', 13, 0),
            (b'{"event": "x", "index": "Main!"}', 7, 0),  # Incorrect index
            (b'{"event": "x", "sourcetype": 5}', 6, 0),
            (b'{"event": "x", "source": "a\\nb"}', 6, 0),  # control character
            (b'{"event": "x", "sourcetype": "' + b"s" * 300 + b'"}', 6, 0),
            (b'{"event": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 6, 0),  # too deep
            (b'{"event": "\xff"}', 6, None),  # not UTF-8
        ],
    )
    async def test_bad_batches_are_refused_whole(
        self, fleet: Fleet, agent: Agent, body: bytes, code: int, number: int | None
    ) -> None:
        """400 with Splunk's code (and the event's number); no event of the batch counts."""
        response = await send(fleet, agent, body)
        assert response.status_code == 400
        answer = response.json()
        assert answer["code"] == code
        assert answer.get("invalid-event-number") == number
        assert (await fleet.agent(agent))["ingest"]["events"] == 0

    async def test_a_channel_that_is_not_a_guid(self, fleet: Fleet, agent: Agent) -> None:
        """X-Splunk-Request-Channel must be a GUID when sent (code 11); it may be absent."""
        bad = await send(fleet, agent, batch(hec_event()), **{"X-Splunk-Request-Channel": "x"})
        assert (bad.status_code, bad.json()["code"]) == (400, 11)
        plain = {"Authorization": f"Splunk {agent.token}"}
        response = await fleet.client.post(
            "/services/collector/event", content=batch(hec_event()), headers=plain
        )
        assert response.status_code == 200

    async def test_an_encoding_other_than_gzip(self, fleet: Fleet, agent: Agent) -> None:
        """415 for br/zstd; a corrupt or truncated gzip body is invalid data (400)."""
        body = batch(hec_event())
        assert (await send(fleet, agent, body, **{"Content-Encoding": "br"})).status_code == 415
        cut = gzip.compress(body)[:-6]
        response = await send(fleet, agent, cut, **{"Content-Encoding": "gzip"})
        assert (response.status_code, response.json()["code"]) == (400, 6)
        garbage = await send(fleet, agent, b"\x1f\x8bxx", **{"Content-Encoding": "gzip"})
        assert garbage.status_code == 400


class TestSizeLimits:
    @pytest.fixture
    def small(self, db_path: Path, clock: FakeClock) -> Any:
        app = create_app(
            db_path,
            admin_token=ADMIN_TOKEN,
            clock=clock,
            sweep_interval=None,
            ingest_body_limit=64 * 1024,
        )
        yield app
        app.state.ctx.store.close()

    @pytest.fixture
    async def small_fleet(self, small: Any, spec: SpecChecker) -> Any:
        transport = httpx.ASGITransport(app=small)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", event_hooks={"response": [spec.acheck]}
        ) as client:
            yield Fleet(client)

    async def test_a_gzip_bomb_is_refused_without_inflating_it(self, small_fleet: Fleet) -> None:
        """A few KiB of gzip that inflate to 50 MiB get 413; nothing counts."""
        await small_fleet.group("web", DEMO)
        agent = await small_fleet.enrol("web")
        bomb = gzip.compress(b'{"event":"' + b"a" * (50 * 1024 * 1024) + b'"}')
        assert len(bomb) < 64 * 1024
        response = await send(small_fleet, agent, bomb, **{"Content-Encoding": "gzip"})
        assert response.status_code == 413
        assert response.json()["code"] == 6
        assert (await small_fleet.agent(agent))["ingest"]["events"] == 0

    async def test_a_body_over_the_limit_is_refused(self, small_fleet: Fleet) -> None:
        """Compressed or not, a body over the limit gets 413."""
        await small_fleet.group("web", DEMO)
        agent = await small_fleet.enrol("web")
        big = batch(*(hec_event("x" * 1000) for _ in range(100)))
        assert (await send(small_fleet, agent, big)).status_code == 413


class TestHealthCheck:
    @pytest.mark.parametrize(
        "path", ["/services/collector/health", "/services/collector/health/1.0"]
    )
    async def test_answers_as_splunk_does(self, fleet: Fleet, agent: Agent, path: str) -> None:
        """200 "HEC is healthy" (17) without a token or with a valid one; 400 for a bad one."""
        healthy = {"text": "HEC is healthy", "code": 17}
        assert (await fleet.client.get(path)).json() == healthy
        good = await fleet.client.get(path, headers={"Authorization": f"Splunk {agent.token}"})
        assert (good.status_code, good.json()) == (200, healthy)
        bad = await fleet.client.get(path, headers={"Authorization": "Splunk AGT_" + "B" * 43})
        assert bad.status_code == 400
        await fleet.data("POST", f"/agents/{agent.id}/revoke")
        revoked = await fleet.client.get(path, headers={"Authorization": f"Splunk {agent.token}"})
        assert revoked.status_code == 400

    async def test_acks_are_disabled(self, fleet: Fleet, agent: Agent) -> None:
        """/services/collector/ack answers "ACK is disabled" (14), as Splunk without acks."""
        response = await fleet.client.post(
            "/services/collector/ack", json={"acks": [0]}, headers=headers(agent)
        )
        assert (response.status_code, response.json()["code"]) == (400, 14)
        stranger = await fleet.client.post("/services/collector/ack", json={"acks": [0]})
        assert stranger.status_code == 401


class TestPause:
    async def test_paused_ingest_answers_503_until_resumed(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """While paused: batches 503 "Server is busy" (9), health 503 (18); resume ends it."""
        status = await fleet.data("POST", "/ingest/pause", {"seconds": 30})
        assert status["paused"] is True and status["pausedUntil"] is not None
        busy = await send(fleet, agent, batch(hec_event()))
        assert (busy.status_code, busy.json()) == (503, {"text": "Server is busy", "code": 9})
        health = await fleet.client.get("/services/collector/health/1.0")
        assert (health.status_code, health.json()["code"]) == (503, 18)
        assert (await fleet.data("POST", "/ingest/resume"))["paused"] is False
        assert (await send(fleet, agent, batch(hec_event()))).status_code == 200
        status = await fleet.data("GET", "/ingest")
        assert status["requests"] == {"accepted": 1, "refused": {"server_is_busy": 1}}

    async def test_a_pause_runs_out_by_itself(
        self, fleet: Fleet, agent: Agent, clock: FakeClock
    ) -> None:
        """After its seconds the ingest accepts again without a resume."""
        await fleet.data("POST", "/ingest/pause", {"seconds": 5})
        assert (await send(fleet, agent, batch(hec_event()))).status_code == 503
        clock.advance(5)
        assert (await send(fleet, agent, batch(hec_event()))).status_code == 200
        assert (await fleet.data("GET", "/ingest"))["paused"] is False

    @pytest.mark.parametrize("body", [{"seconds": 0}, {"seconds": 86401}, {"for": 3}])
    async def test_bad_pause_requests(self, fleet: Fleet, body: dict[str, Any]) -> None:
        """A pause of 0 s, over a day, or with unknown fields is a 422."""
        assert (await fleet.admin("POST", "/ingest/pause", body)).status_code == 422
        assert (await fleet.data("GET", "/ingest"))["paused"] is False

    async def test_pause_needs_the_admin_token(self, fleet: Fleet, agent: Agent) -> None:
        """An agent token cannot pause the ingest."""
        response = await fleet.client.post(
            "/api/v1/admin/ingest/pause", json={"seconds": 5}, headers=agent.auth
        )
        assert response.status_code == 403


class TestRecentEvents:
    async def test_the_groups_last_events_oldest_first(self, fleet: Fleet, agent: Agent) -> None:
        """Events come back with their routing, agent and a growing seq; after= skips seen ones."""
        await send(fleet, agent, batch(*(hec_event(f"m{i}", host="web-1") for i in range(5))))
        events = await fleet.data("GET", "/groups/web/events", limit=3)
        assert [e["event"]["message"] for e in events] == ["m2", "m3", "m4"]
        first = events[0]
        assert first["agentId"] == agent.id and first["host"] == "web-1"
        assert (first["index"], first["sourcetype"], first["source"]) == tuple(ROUTING.values())
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
        later = await fleet.data("GET", "/groups/web/events", after=events[-1]["seq"])
        assert later == []
        await send(fleet, agent, batch(hec_event("m5")))
        later = await fleet.data("GET", "/groups/web/events", after=events[-1]["seq"])
        assert [e["event"]["message"] for e in later] == ["m5"]

    async def test_a_huge_event_is_kept_as_a_note_of_its_size(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """Rings stay small: an event over 4 KiB is not kept, its size is."""
        body = batch(hec_event("x" * 10_000))
        await send(fleet, agent, body)
        (event,) = await fleet.data("GET", "/groups/web/events")
        assert event["event"] == f"(event of {len(body)} bytes, not kept)"

    async def test_the_ring_keeps_the_last_200(self, fleet: Fleet, agent: Agent) -> None:
        """Only the newest 200 events of a group are kept."""
        for start in range(0, 300, 100):
            body = batch(*(hec_event(f"m{i}") for i in range(start, start + 100)))
            await send(fleet, agent, body)
        events = await fleet.data("GET", "/groups/web/events", limit=1000)
        assert len(events) == 200 and events[0]["event"]["message"] == "m100"

    async def test_unknown_group_and_bad_limit(self, fleet: Fleet, agent: Agent) -> None:
        """404 for a group that does not exist, 400 for a limit over 1000."""
        assert (await fleet.admin("GET", "/groups/nope/events")).status_code == 404
        assert (await fleet.admin("GET", "/groups/web/events", limit=1001)).status_code == 400


class TestRenderedSinkMeetsThisIngest:
    async def test_the_rendered_sink_uses_the_defaults_this_ingest_answers(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """What this ingest relies on in the rendered splunk_hec_logs sink: a base URL (the sink
        appends /services/collector/event: no endpoint_target, so "event"), the token as a
        secret, and acknowledgements left at their default — indexer acks on, which never
        wait here because no answer carries an ackId."""
        preview = (await fleet.admin("GET", "/groups/web/preview")).text
        (sink,) = yaml.safe_load(preview)["sinks"].values()
        assert sink["type"] == "splunk_hec_logs"
        assert urlsplit(sink["endpoint"]).path in ("", "/")  # a base URL
        assert sink.get("endpoint_target", "event") == "event"
        assert sink["default_token"] == "SECRET[logpulse.agent_token]"
        assert sink.get("compression", "none") in ("none", "gzip")  # both are answered here
        answer = await send(fleet, agent, batch(hec_event()))
        assert "ackId" not in answer.json()
