"""Authorization: agent tokens only for their own agent, admin API only for the admin token,
and no raw token anywhere in the database files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.harness import ADMIN, ADMIN_TOKEN, DEMO, Fleet, beat

pytestmark = pytest.mark.anyio


async def _both(fleet: Fleet, agent_id: str, headers: dict[str, str]) -> list[int]:
    """Status codes of a config poll and a heartbeat for ``agent_id`` with ``headers``."""
    config = await fleet.client.get(f"/api/v1/agents/{agent_id}/config", headers=headers)
    heartbeat = await fleet.client.post(
        f"/api/v1/agents/{agent_id}/heartbeat", json=beat(), headers=headers
    )
    return [config.status_code, heartbeat.status_code]


class TestAgentTokens:
    async def test_token_of_agent_a_is_refused_on_agent_b(self, fleet: Fleet) -> None:
        """A's valid token on B's endpoints gives 403, and B's state is untouched."""
        await fleet.group("web", DEMO)
        a, b = await fleet.enrol("web"), await fleet.enrol("web")
        assert await _both(fleet, b.id, a.auth) == [403, 403]
        assert (await fleet.agent(b))["lastHeartbeatAt"] is None

    async def test_missing_or_garbled_authorization_gives_401(self, fleet: Fleet) -> None:
        """No header, another scheme, or a token that is not AGT_-shaped: 401."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        for headers in (
            {},
            {"Authorization": f"Basic {agent.token}"},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer AGT_short"},
            {"Authorization": f"Bearer {agent.token} extra"},
        ):
            assert await _both(fleet, agent.id, headers) == [401, 401], headers

    async def test_unknown_token_for_a_known_agent_gives_403(self, fleet: Fleet) -> None:
        """A well-formed AGT_ token the server never issued is "not this agent's": 403
        (SPEC §5); 401 is for requests without a usable token at all."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        forged = {"Authorization": "Bearer AGT_" + "x" * 43}
        assert await _both(fleet, agent.id, forged) == [403, 403]

    async def test_unknown_agent_gives_404(self, fleet: Fleet) -> None:
        """An agent id that does not exist: 404."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        assert await _both(fleet, "0" * 32, agent.auth) == [404, 404]

    async def test_revoked_agent_gets_403(self, fleet: Fleet) -> None:
        """After revocation, the agent's own token gives 403 on config and heartbeat."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        revoked = await fleet.data("POST", f"/agents/{agent.id}/revoke")
        assert revoked["status"] == "revoked"
        assert await _both(fleet, agent.id, agent.auth) == [403, 403]
        response = await fleet.config(agent)
        assert "revoked" in response.json()["error"]["message"]

    async def test_revoking_cancels_the_agents_pending_actions(self, fleet: Fleet) -> None:
        """A revoked agent's pending actions are cancelled."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        (action,) = await fleet.upgrade(agent)
        await fleet.data("POST", f"/agents/{agent.id}/revoke")
        assert (await fleet.data("GET", f"/actions/{action['id']}"))["status"] == "cancelled"


class TestAdminAuth:
    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/groups"), ("GET", "/agents"), ("POST", "/sweep"), ("GET", "/actions")],
    )
    async def test_agent_token_is_refused_on_the_admin_api(
        self, fleet: Fleet, method: str, path: str
    ) -> None:
        """An AGT_ token on an admin route gives 403."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        response = await fleet.client.request(method, "/api/v1/admin" + path, headers=agent.auth)
        assert response.status_code == 403
        assert "admin" in response.json()["error"]["message"]

    async def test_enrolment_token_is_refused_on_the_admin_api(self, fleet: Fleet) -> None:
        """An EBT_ token on an admin route gives 403."""
        await fleet.group("web")
        token = await fleet.token("web")
        response = await fleet.client.get(
            "/api/v1/admin/groups", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 403

    async def test_no_or_wrong_admin_token_gives_401(self, fleet: Fleet) -> None:
        """No token, or a wrong one, gives 401 and does not act."""
        for headers in ({}, {"Authorization": "Bearer not-the-admin-token"}):
            response = await fleet.client.post(
                "/api/v1/admin/groups", json={"name": "x"}, headers=headers
            )
            assert response.status_code == 401
        assert await fleet.data("GET", "/groups") == []

    async def test_admin_token_is_checked_before_the_body(self, fleet: Fleet) -> None:
        """Garbage from a stranger gets 401, not a hint about the body."""
        response = await fleet.client.post("/api/v1/admin/groups", content=b"{not json")
        assert response.status_code == 401

    async def test_admin_token_is_not_an_agent_token(self, fleet: Fleet) -> None:
        """The admin token does not open agent endpoints."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        assert await _both(fleet, agent.id, ADMIN) == [401, 401]


class TestTokensAtRest:
    async def test_database_never_holds_a_raw_token(self, fleet: Fleet, db_path: Path) -> None:
        """Scan the SQLite file and its WAL: no minted EBT_, AGT_ or admin token appears."""
        await fleet.group("web", DEMO)
        agents = [await fleet.enrol("web", hostname=f"h{i}") for i in range(3)]
        await fleet.token("web", maxUses=1)
        for agent in agents:
            await fleet.config(agent)
            await fleet.heartbeat(
                agent, configError={"configVersion": 1, "message": f"oops {agent.token}"}
            )
        (action,) = await fleet.upgrade(agents[0])
        await fleet.heartbeat(
            agents[0],
            actionResults=[
                {
                    "actionId": action["id"],
                    "status": "failed",
                    "result": {"error": f"log tail mentions {agents[0].token}"},
                }
            ],
        )
        secrets = [*fleet.tokens, ADMIN_TOKEN]
        assert len(secrets) == 3 * 2 + 1 + 1
        files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
        blob = b"".join(p.read_bytes() for p in files)
        assert len(blob) > 0
        for secret in secrets:
            assert secret.encode() not in blob, secret[:4]
            assert secret[4:].encode() not in blob, secret[:4]
