"""Enrolment (``POST /api/v1/agents/enrol``): tokens, use counting, group choice, bad bodies."""

from __future__ import annotations

import pytest

from tests.server.harness import DEMO, FakeClock, Fleet

pytestmark = pytest.mark.anyio


async def _token_row(fleet: Fleet, group: str) -> dict:
    tokens = await fleet.data("GET", "/enrolment-tokens", group=group)
    return tokens[0]


class TestEnrol:
    async def test_valid_token_enrols_the_host(self, fleet: Fleet) -> None:
        """A valid token answers 201 with the agent id, an AGT_ token, the group and its version."""
        group = await fleet.group("web", DEMO)
        response = await fleet.enrol_response(await fleet.token("web"))
        assert response.status_code == 201
        data = response.json()["data"]
        assert data["agentToken"].startswith("AGT_")
        assert data["groupId"] == group["id"]
        assert data["configVersion"] == group["configVersion"] == 2
        agent = await fleet.data("GET", f"/agents/{data['agentId']}")
        assert agent["hostname"] == "web-1.example.com"
        assert (agent["platform"], agent["os"], agent["kernel"]) == (
            "linux",
            "Ubuntu 24.04",
            "6.8.0-35-generic",
        )
        assert (agent["agentVersion"], agent["vectorVersion"]) == ("0.4.1", "0.40.0")
        assert agent["appliedConfigVersion"] == 0
        assert (await _token_row(fleet, "web"))["uses"] == 1

    async def test_each_enrolment_gets_its_own_agent_and_token(self, fleet: Fleet) -> None:
        """Two hosts on one token become two agents with different tokens."""
        await fleet.group("web")
        token = await fleet.token("web")
        first = (await fleet.enrol_response(token)).json()["data"]
        second = (await fleet.enrol_response(token, hostname="web-2")).json()["data"]
        assert first["agentId"] != second["agentId"]
        assert first["agentToken"] != second["agentToken"]

    async def test_unknown_token_is_refused(self, fleet: Fleet) -> None:
        """A well-formed token the server never minted gives 401."""
        await fleet.group("web")
        response = await fleet.enrol_response("EBT_" + "A" * 43)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "enrolment_token_refused"
        assert "unknown" in response.json()["error"]["message"]

    async def test_garbage_token_is_refused_as_unknown(self, fleet: Fleet) -> None:
        """A string that is not an EBT_ token at all also gives 401, not a 422."""
        response = await fleet.enrol_response("hunter2")
        assert response.status_code == 401

    async def test_expired_token_is_refused(self, fleet: Fleet, clock: FakeClock) -> None:
        """A token past its ttl gives 401 saying it expired."""
        await fleet.group("web")
        token = await fleet.token("web", ttlSeconds=3600)
        clock.advance(3600)
        response = await fleet.enrol_response(token)
        assert response.status_code == 401
        assert "expired" in response.json()["error"]["message"]

    async def test_exhausted_token_is_refused(self, fleet: Fleet) -> None:
        """A token used maxUses times gives 401."""
        await fleet.group("web")
        token = await fleet.token("web", maxUses=2)
        assert (await fleet.enrol_response(token)).status_code == 201
        assert (await fleet.enrol_response(token)).status_code == 201
        response = await fleet.enrol_response(token)
        assert response.status_code == 401
        assert "used up" in response.json()["error"]["message"]
        assert (await _token_row(fleet, "web"))["uses"] == 2

    async def test_revoked_token_is_refused(self, fleet: Fleet) -> None:
        """A revoked token gives 401, even with uses left."""
        await fleet.group("web")
        token = await fleet.token("web")
        token_id = (await _token_row(fleet, "web"))["id"]
        await fleet.data("POST", f"/enrolment-tokens/{token_id}/revoke")
        response = await fleet.enrol_response(token)
        assert response.status_code == 401
        assert "revoked" in response.json()["error"]["message"]

    async def test_group_slug_overrides_the_tokens_group(self, fleet: Fleet) -> None:
        """``groupSlug`` puts the agent into that group instead of the token's."""
        await fleet.group("web")
        db = await fleet.group("db", DEMO)
        response = await fleet.enrol_response(await fleet.token("web"), groupSlug="db")
        assert response.status_code == 201
        assert response.json()["data"]["groupId"] == db["id"]
        assert response.json()["data"]["configVersion"] == db["configVersion"]

    async def test_unknown_group_slug_is_404_and_uses_nothing(self, fleet: Fleet) -> None:
        """An unknown ``groupSlug`` gives 404, and the token keeps its use."""
        await fleet.group("web")
        token = await fleet.token("web")
        response = await fleet.enrol_response(token, groupSlug="nope")
        assert response.status_code == 404
        assert "nope" in response.json()["error"]["message"]
        assert (await _token_row(fleet, "web"))["uses"] == 0
        assert await fleet.data("GET", "/agents") == []

    async def test_bad_token_is_judged_before_the_group_slug(self, fleet: Fleet) -> None:
        """A stranger learns nothing about groups: a bad token gives 401 whatever the slug."""
        response = await fleet.enrol_response("EBT_" + "B" * 43, groupSlug="nope")
        assert response.status_code == 401

    @pytest.mark.parametrize(
        ("change", "status"),
        [
            ({"platform": "windows"}, 422),
            ({"hostname": 42}, 422),
            ({"hostname": ""}, 422),
            ({"agentVersion": None}, 422),
        ],
    )
    async def test_malformed_body_is_refused_and_nothing_is_stored(
        self, fleet: Fleet, change: dict, status: int
    ) -> None:
        """Wrong types or bad values give 422; no agent, no use consumed. (Unknown fields are
        ignored: test_agent_bodies.py.)"""
        await fleet.group("web")
        token = await fleet.token("web")
        response = await fleet.enrol_response(token, **change)
        assert response.status_code == status
        assert response.json()["error"]["code"] == "validation_failed"
        assert (await _token_row(fleet, "web"))["uses"] == 0
        assert await fleet.data("GET", "/agents") == []

    async def test_missing_field_is_named(self, fleet: Fleet) -> None:
        """A missing required field gives 422 naming it."""
        response = await fleet.client.post(
            "/api/v1/agents/enrol",
            json={"bootstrapToken": "EBT_x", "platform": "linux", "agentVersion": "1"},
        )
        assert response.status_code == 422
        assert "hostname" in response.json()["error"]["message"]

    async def test_error_messages_never_echo_the_token(self, fleet: Fleet) -> None:
        """A schema error about the token field does not repeat the token."""
        await fleet.group("web")
        token = await fleet.token("web")
        response = await fleet.client.post(
            "/api/v1/agents/enrol",
            json={
                "bootstrapToken": token + "x" * 600,
                "hostname": "h",
                "platform": "linux",
                "agentVersion": "1",
            },
        )
        assert response.status_code == 422
        assert token[4:] not in response.text
