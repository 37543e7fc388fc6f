"""Property: whatever JSON arrives on a JSON route, the server answers a documented 2xx/4xx
(checked against openapi.yaml), never a 500, and keeps serving."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logpulse_agent.server.app import create_app
from tests.server.harness import ADMIN, ADMIN_TOKEN, DEMO, FakeClock, Fleet, beat
from tests.server.spec_check import SpecChecker

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = {
    "enrol": [
        "bootstrapToken",
        "hostname",
        "platform",
        "os",
        "kernel",
        "agentVersion",
        "vectorVersion",
        "groupSlug",
    ],
    "heartbeat": [
        "agentVersion",
        "vectorVersion",
        "appliedConfigVersion",
        "vectorRunning",
        "vectorUptimeSeconds",
        "configError",
        "actionResults",
    ],
    "group": ["name", "slug"],
    "input": [
        "type",
        "name",
        "options",
        "enabled",
        "indexOverride",
        "sourcetypeOverride",
        "sourceOverride",
    ],
    "token": ["group", "ttlSeconds", "maxUses", "label"],
    "move": ["group"],
    "actions": ["agentIds", "type", "payload", "deadlineSeconds"],
}
OK = {200, 201, 400, 401, 404, 409, 413, 422}


class World:
    """A server with a group, an agent and valid bodies for every JSON route."""

    def __init__(self, db: Path) -> None:
        self.spec = SpecChecker()
        self.app = create_app(db, admin_token=ADMIN_TOKEN, clock=FakeClock(), sweep_interval=None)
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://t",
            event_hooks={"response": [self.spec.acheck]},
        )
        fleet = Fleet(self.client)
        self.loop.run_until_complete(fleet.group("web", DEMO))
        self.token = self.loop.run_until_complete(fleet.token("web"))
        self.agent = self.loop.run_until_complete(fleet.enrol("web"))
        self.routes: dict[str, tuple[str, dict[str, str], dict[str, Any]]] = {
            "enrol": (
                "/api/v1/agents/enrol",
                {},
                {
                    "bootstrapToken": self.token,
                    "hostname": "h",
                    "platform": "linux",
                    "agentVersion": "1.0.0",
                },
            ),
            "heartbeat": (f"/api/v1/agents/{self.agent.id}/heartbeat", self.agent.auth, beat()),
            "group": ("/api/v1/admin/groups", ADMIN, {"name": "g"}),
            "input": ("/api/v1/admin/groups/web/inputs", ADMIN, dict(DEMO)),
            "token": ("/api/v1/admin/enrolment-tokens", ADMIN, {"group": "web"}),
            "move": (f"/api/v1/admin/agents/{self.agent.id}/move", ADMIN, {"group": "web"}),
            "actions": (
                "/api/v1/admin/actions",
                ADMIN,
                {
                    "agentIds": [self.agent.id],
                    "type": "upgrade_agent",
                    "payload": {"targetVersion": "1.2.3"},
                },
            ),
        }

    def post(self, route: str, body: bytes) -> httpx.Response:
        path, headers, _ = self.routes[route]
        method = "POST"
        return self.loop.run_until_complete(
            self.client.request(method, path, content=body, headers=headers)
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()
        self.app.state.ctx.store.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    w = World(tmp_path_factory.mktemp("fuzz") / "s.db")
    yield w
    w.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(sorted(FIELDS)), data=st.data())
def test_mutated_bodies_get_documented_answers(world: World, route: str, data: Any) -> None:
    """A valid body with one field replaced, dropped or added gets a documented non-5xx."""
    body = dict(world.routes[route][2])
    how = data.draw(st.sampled_from(["replace", "drop", "add", "whole"]))
    if how == "replace":
        body[data.draw(st.sampled_from(FIELDS[route]))] = data.draw(JSON)
    elif how == "drop" and body:
        body.pop(data.draw(st.sampled_from(sorted(body))))
    elif how == "add":
        body[data.draw(st.text(min_size=1, max_size=10))] = data.draw(JSON)
    else:
        body = data.draw(JSON)
    try:
        raw = json.dumps(body).encode()
    except ValueError:
        raw = b"{"
    response = world.post(route, raw)
    assert response.status_code in OK, response.text


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_server(world: World, raw: bytes) -> None:
    """Random bytes as a body get a 4xx (or, if they happen to be valid, a 2xx)."""
    for route in ("enrol", "heartbeat", "group"):
        assert world.post(route, raw).status_code in OK
