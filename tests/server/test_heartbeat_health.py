"""Heartbeats' dataPlane and health (SPEC §11.1): stored, bounded, filtered, and their history."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from logpulse_agent.server.agent_health import HISTORY_LIMIT, is_transition, parse_time
from tests.server.harness import DEMO, Agent, FakeClock, Fleet

pytestmark = pytest.mark.anyio


def component(name: str = "out_3f2a", **fields: Any) -> dict[str, Any]:
    body = {
        "id": name,
        "kind": "sink",
        "type": "splunk_hec_logs",
        "eventsIn": 120,
        "eventsOut": 79,
        "errors": 41,
        "discarded": 0,
    }
    body.update(fields)
    return body


def plane(*components: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {
        "windowSeconds": 30.0,
        "eventsIn": 120,
        "eventsOut": 79,
        "errors": 41,
        "discarded": 0,
        "components": list(components) or [component()],
    }
    body.update(fields)
    return body


def health(state: str = "degraded", reason: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {
        "state": state,
        "reason": reason
        if reason is not None or state == "healthy"
        else "sink out_3f2a: 41 request errors in 30 s (HTTP 403)",
        "since": "2025-06-15T15:00:00Z",
    }
    body.update(fields)
    return body


@pytest.fixture
async def agent(fleet: Fleet) -> Agent:
    await fleet.group("web", DEMO)
    return await fleet.enrol("web")


class TestStored:
    async def test_data_plane_and_health_are_on_the_admin_row(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """The latest heartbeat's dataPlane and health come back as reported."""
        response = await fleet.heartbeat(agent, dataPlane=plane(), health=health())
        assert response.status_code == 200
        shown = await fleet.agent(agent)
        assert shown["dataPlane"] == plane()
        assert shown["health"] == {
            "state": "degraded",
            "reason": "sink out_3f2a: 41 request errors in 30 s (HTTP 403)",
            "since": "2025-06-15T15:00:00Z",
        }

    async def test_a_new_agent_and_an_old_agent_have_neither(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """Before any report, and after a heartbeat without the fields, both are null."""
        shown = await fleet.agent(agent)
        assert (shown["dataPlane"], shown["health"]) == (None, None)
        await fleet.heartbeat(agent, dataPlane=plane(), health=health())
        await fleet.heartbeat(agent)  # an agent from before SPEC §11
        shown = await fleet.agent(agent)
        # Its health is what its older fields imply (rollout_machine.health_of), without a reason.
        assert shown["dataPlane"] is None
        assert shown["health"] == {"state": "healthy", "reason": None, "since": None}

    async def test_an_old_agent_stopped_on_an_empty_config_is_not_failed(
        self, fleet: Fleet
    ) -> None:
        """Vector stopped on a `{}` config is what that config asks for: an agent without
        `health` is judged healthy then, and failed only when a config with inputs is not run."""
        group = await fleet.group("quiet")  # no inputs: the body is {}
        agent = await fleet.enrol("quiet")
        version = group["configVersion"]
        assert (await fleet.config(agent)).content.strip() == b"{}"
        await fleet.heartbeat(agent, appliedConfigVersion=version, vectorRunning=False)
        assert (await fleet.agent(agent))["health"]["state"] == "healthy"
        await fleet.group("busy", DEMO)
        other = await fleet.enrol("busy")
        await fleet.config(other)
        await fleet.heartbeat(other, appliedConfigVersion=2, vectorRunning=False)
        assert (await fleet.agent(other))["health"] == {
            "state": "failed",
            "reason": "Vector is not running",
            "since": None,
        }

    async def test_null_data_plane_means_metrics_unreadable(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """dataPlane null is stored as null beside the health that explains it."""
        reason = "metrics unreadable: connection refused on 127.0.0.1:9598"
        await fleet.heartbeat(agent, dataPlane=None, health=health(reason=reason))
        shown = await fleet.agent(agent)
        assert shown["dataPlane"] is None and shown["health"]["reason"] == reason

    async def test_unknown_fields_are_accepted_and_not_stored(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """A newer agent's extra fields inside dataPlane/health pass, and are dropped."""
        sent = plane(component(lastError="HTTP 403", labels={"a": "b"}), p99=3.5)
        response = await fleet.heartbeat(agent, dataPlane=sent, health=health(score=0.5))
        assert response.status_code == 200
        shown = await fleet.agent(agent)
        assert shown["dataPlane"] == plane(component())
        assert "score" not in shown["health"]

    async def test_the_reason_is_one_line_without_tokens(self, fleet: Fleet, agent: Agent) -> None:
        """Newlines, control characters and runs of spaces fold; a token is masked."""
        token = "AGT_" + "x" * 43
        reason = f"sink out_1:\n  401 with {token}\x1b[2J\r\n(HTTP 401)"
        await fleet.heartbeat(agent, health=health(reason=reason))
        assert (await fleet.agent(agent))["health"]["reason"] == (
            "sink out_1: 401 with AGT_*** [2J (HTTP 401)"
        )

    async def test_an_unreadable_since_keeps_the_state(self, fleet: Fleet, agent: Agent) -> None:
        """A since the server cannot read is stored as null; the state and reason count."""
        for since in ("yesterday", "2025-06-15 15:00:00"):
            await fleet.heartbeat(agent, health=health(since=since))
            shown = (await fleet.agent(agent))["health"]
            assert (shown["state"], shown["since"]) == ("degraded", None)

    async def test_since_with_an_offset_and_nanoseconds(self, fleet: Fleet, agent: Agent) -> None:
        """RFC 3339 with any fraction and an offset is read, and shown in UTC."""
        await fleet.heartbeat(agent, health=health(since="2025-06-15T17:00:00.123456789+02:00"))
        assert (await fleet.agent(agent))["health"]["since"] == "2025-06-15T15:00:00Z"


class TestBounds:
    @pytest.mark.parametrize(
        "fields",
        [
            {"dataPlane": plane(*(component(f"c{i}") for i in range(201)))},
            {"dataPlane": plane(component(id=""))},
            {"dataPlane": plane(component(id="x" * 257))},
            {"dataPlane": plane(component(id="out\x1b[2J"))},
            {"dataPlane": plane(component(type="t" * 65))},
            {"dataPlane": plane(component(errors=-1))},
            {"dataPlane": plane(component(errors=2**60))},
            {"dataPlane": plane(component(eventsIn="12"))},
            {"dataPlane": plane(windowSeconds=-1)},
            {"dataPlane": {"components": []}},
            {"dataPlane": "fine"},
            {"health": health(state="great")},
            {"health": health(reason="r" * 1001)},
        ],
    )
    async def test_junk_is_ignored_not_stored_and_the_heartbeat_counts(
        self, fleet: Fleet, agent: Agent, clock: FakeClock, fields: dict[str, Any]
    ) -> None:
        """Too many components, oversized or negative fields, bad states and times: the field
        is logged and stored as null, the other one and the rest of the heartbeat are kept
        (an agent with a buggy report must not go offline)."""
        await fleet.heartbeat(agent, dataPlane=plane(), health=health())
        clock.advance(30)
        good = {"dataPlane": plane(), "health": health("healthy")}
        with capture_logs() as logs:
            response = await fleet.heartbeat(agent, **{**good, **fields})
        assert response.status_code == 200, response.text
        (field,) = fields
        shown = await fleet.agent(agent)
        if field == "dataPlane":
            assert shown[field] is None
        else:  # the state its older fields imply (rollout_machine.health_of), no reason
            assert shown[field] == {"state": "healthy", "reason": None, "since": None}
        other = "health" if field == "dataPlane" else "dataPlane"
        assert shown[other] is not None
        assert shown["lastHeartbeatAt"] == "2025-06-15T15:07:10Z"
        (warning,) = [e for e in logs if e["event"].endswith("_ignored")]
        assert warning["agent_id"] == agent.id and warning["log_level"] == "warning"

    async def test_two_hundred_components_fit(self, fleet: Fleet, agent: Agent) -> None:
        """The SPEC's maximum of 200 components is accepted and stored in order."""
        many = plane(*(component(f"c{i}") for i in range(200)))
        assert (await fleet.heartbeat(agent, dataPlane=many)).status_code == 200
        stored = (await fleet.agent(agent))["dataPlane"]["components"]
        assert [c["id"] for c in stored] == [f"c{i}" for i in range(200)]


class TestFilter:
    async def test_health_filter(self, fleet: Fleet) -> None:
        """?health= picks the last reported state; unknown picks agents that reported none."""
        await fleet.group("web", DEMO)
        sick, fine, _silent = [
            await fleet.enrol("web", hostname=h) for h in ("a-sick", "b-fine", "c-silent")
        ]
        await fleet.heartbeat(sick, health=health("degraded"))
        await fleet.heartbeat(fine, health={"state": "healthy"})  # reason and since optional
        # c-silent never sent a heartbeat: unknown. (An agent that sends one without health
        # gets the state its older fields imply, see rollout_machine.health_of.)

        async def hosts(**params: str) -> list[str]:
            return [a["hostname"] for a in await fleet.data("GET", "/agents", **params)]

        assert await hosts(health="degraded") == ["a-sick"]
        assert await hosts(health="healthy") == ["b-fine"]
        assert await hosts(health="failed") == []
        assert await hosts(health="unknown") == ["c-silent"]
        assert await hosts(health="degraded", status="online") == ["a-sick"]
        bad = await fleet.admin("GET", "/agents", health="sick")
        assert bad.status_code == 400


class TestHistory:
    async def test_transitions_newest_first(
        self, fleet: Fleet, agent: Agent, clock: FakeClock
    ) -> None:
        """State changes and new causes are kept; a reason whose numbers move is not."""
        reports = [
            health("healthy"),
            health("healthy"),  # no change
            health("degraded", "sink out_1: 41 request errors in 30 s (HTTP 403)"),
            health("degraded", "sink out_1: 38 request errors in 30 s (HTTP 403)"),  # numbers
            health("degraded", "metrics unreadable: connection refused"),  # a new cause
            health("failed", "vector exited and is restarting"),
            health("healthy"),
        ]
        for report in reports:
            await fleet.heartbeat(agent, health=report)
            clock.advance(30)
        history = await fleet.data("GET", f"/agents/{agent.id}/health")
        assert [(h["state"], h["reason"]) for h in history] == [
            ("healthy", None),
            ("failed", "vector exited and is restarting"),
            ("degraded", "metrics unreadable: connection refused"),
            ("degraded", "sink out_1: 41 request errors in 30 s (HTTP 403)"),
            ("healthy", None),
        ]
        assert history[-1]["at"] == "2025-06-15T15:06:40Z"
        assert history[0]["since"] == "2025-06-15T15:00:00Z"

    async def test_history_keeps_the_newest_fifty(self, fleet: Fleet, agent: Agent) -> None:
        """Flapping agents cannot grow the table: the oldest transitions go."""
        for i in range(HISTORY_LIMIT + 10):
            await fleet.heartbeat(agent, health=health("degraded" if i % 2 else "healthy"))
        history = await fleet.data("GET", f"/agents/{agent.id}/health")
        assert len(history) == HISTORY_LIMIT
        assert history[0]["state"] == "degraded"  # the last one sent (i = 59)

    async def test_unknown_agent(self, fleet: Fleet) -> None:
        assert (await fleet.admin("GET", "/agents/nope/health")).status_code == 404


class TestPureRules:
    @pytest.mark.parametrize(
        ("before", "after", "expected"),
        [
            ((None, None), ("healthy", None), True),
            (("healthy", None), ("healthy", None), False),
            (("healthy", None), ("degraded", "x"), True),
            (("degraded", "sink a: 4 errors in 30 s"), ("degraded", "sink a: 12 errors in 29.5 s"),
             False),
            (("degraded", "sink a: 4 errors"), ("degraded", "sink b: 4 errors"), True),
            (("failed", "x"), (None, None), False),
        ],
    )  # fmt: skip
    def test_is_transition(
        self, before: tuple[str | None, str | None], after: tuple[str | None, str | None],
        expected: bool,
    ) -> None:  # fmt: skip
        assert is_transition(before, after) is expected

    def test_parse_time(self) -> None:
        assert parse_time("2025-06-15T15:00:00Z") == 1_749_999_600.0
        assert parse_time("2025-06-15T15:00:00.5z") == 1_749_999_600.5
        nanos = parse_time("2025-06-15T17:00:00.123456789+02:00")
        assert nanos == pytest.approx(1_749_999_600.1234)
        with pytest.raises(ValueError):
            parse_time("2025-06-15T15:00:00")
