"""Admin API: groups, inputs and their version bumps, enrolment tokens, agents, actions."""

from __future__ import annotations

import pytest

from logpulse_agent.server.http import isotime
from tests.server.harness import DEMO, JOURNALD, FakeClock, Fleet

pytestmark = pytest.mark.anyio


async def version(fleet: Fleet, group: str = "web") -> int:
    result: int = (await fleet.data("GET", f"/groups/{group}"))["configVersion"]
    return result


class TestGroups:
    async def test_new_group_starts_at_version_one_with_a_derived_slug(self, fleet: Fleet) -> None:
        """create answers 201 with the slug derived from the name and config version 1."""
        response = await fleet.admin("POST", "/groups", {"name": "Prod Web (EU)"})
        assert response.status_code == 201
        group = response.json()["data"]
        assert (group["slug"], group["configVersion"]) == ("prod-web-eu", 1)
        assert (group["inputCount"], group["agentCount"]) == (0, 0)

    async def test_groups_are_addressed_by_id_or_slug(self, fleet: Fleet) -> None:
        """GET by id and by slug answer the same group."""
        group = await fleet.group("web")
        assert await fleet.data("GET", f"/groups/{group['id']}") == group
        assert await fleet.data("GET", "/groups/web") == group

    async def test_list_shows_counts(self, fleet: Fleet) -> None:
        """The list shows every group with its inputs and live agents counted."""
        await fleet.group("web", DEMO, JOURNALD)
        await fleet.group("db")
        await fleet.enrol("web")
        listed = {g["slug"]: g for g in await fleet.data("GET", "/groups")}
        assert (listed["web"]["inputCount"], listed["web"]["agentCount"]) == (2, 1)
        assert (listed["db"]["inputCount"], listed["db"]["agentCount"]) == (0, 0)

    async def test_rename_bumps_the_version_only_when_something_changes(self, fleet: Fleet) -> None:
        """A real rename bumps the version; renaming to the same name does not."""
        await fleet.group("web")
        renamed = await fleet.data("PATCH", "/groups/web", {"name": "Web servers"})
        assert (renamed["name"], renamed["configVersion"]) == ("Web servers", 2)
        again = await fleet.data("PATCH", "/groups/web", {"name": "Web servers"})
        assert again["configVersion"] == 2
        moved = await fleet.data("PATCH", "/groups/web", {"slug": "www"})
        assert (moved["slug"], moved["configVersion"]) == ("www", 3)

    async def test_delete_removes_the_group_its_inputs_and_tokens(self, fleet: Fleet) -> None:
        """A group without live agents deletes with its inputs and enrolment tokens."""
        await fleet.group("web", DEMO)
        token = await fleet.token("web")
        input_id = (await fleet.data("GET", "/groups/web/inputs"))[0]["id"]
        response = await fleet.admin("DELETE", "/groups/web")
        assert response.status_code == 204
        assert (await fleet.admin("GET", f"/inputs/{input_id}")).status_code == 404
        assert await fleet.data("GET", "/enrolment-tokens") == []
        assert (await fleet.enrol_response(token)).status_code == 401

    async def test_group_with_only_revoked_agents_can_be_deleted(self, fleet: Fleet) -> None:
        """Revoked agents do not hold a group; they are kept, without a group."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        await fleet.data("POST", f"/agents/{agent.id}/revoke")
        assert (await fleet.admin("DELETE", "/groups/web")).status_code == 204
        shown = await fleet.agent(agent)
        assert (shown["groupId"], shown["status"]) == (None, "revoked")


class TestInputs:
    async def test_every_input_change_bumps_the_version(self, fleet: Fleet) -> None:
        """add, edit, disable, enable and delete each bump the group's version once."""
        await fleet.group("web")
        added = await fleet.data("POST", "/groups/web/inputs", DEMO)
        assert await version(fleet) == 2
        await fleet.data("PATCH", f"/inputs/{added['id']}", {"options": {"format": "syslog"}})
        assert await version(fleet) == 3
        await fleet.data("PATCH", f"/inputs/{added['id']}", {"enabled": False})
        assert await version(fleet) == 4
        await fleet.data("PATCH", f"/inputs/{added['id']}", {"enabled": True})
        assert await version(fleet) == 5
        await fleet.data("PATCH", f"/inputs/{added['id']}", {"enabled": True})  # no change
        assert await version(fleet) == 5
        assert (await fleet.admin("DELETE", f"/inputs/{added['id']}")).status_code == 204
        assert await version(fleet) == 6

    async def test_overrides_are_stored_and_cleared(self, fleet: Fleet) -> None:
        """The three routing overrides are saved; null or "" restores the default."""
        await fleet.group("web")
        body = {
            **DEMO,
            "indexOverride": "prod",
            "sourcetypeOverride": "nginx_access",
            "sourceOverride": "prod-fw1",
        }
        added = await fleet.data("POST", "/groups/web/inputs", body)
        assert (added["indexOverride"], added["sourcetypeOverride"], added["sourceOverride"]) == (
            "prod",
            "nginx_access",
            "prod-fw1",
        )
        preview = (await fleet.admin("GET", "/groups/web/preview")).content
        assert b"index: prod" in preview and b"sourcetype: nginx_access" in preview
        cleared = await fleet.data(
            "PATCH", f"/inputs/{added['id']}", {"indexOverride": None, "sourceOverride": ""}
        )
        assert (cleared["indexOverride"], cleared["sourceOverride"]) == (None, None)
        assert cleared["sourcetypeOverride"] == "nginx_access"

    async def test_options_are_stored_normalised(self, fleet: Fleet) -> None:
        """The stored options are what the renderer's validation returned."""
        await fleet.group("web")
        added = await fleet.data(
            "POST",
            "/groups/web/inputs",
            {"type": "http_server", "name": "hook", "options": {"address": "0.0.0.0:8080"}},
        )
        assert added["options"]["decoding"] == {"codec": "bytes"}

    async def test_list_keeps_creation_order(self, fleet: Fleet) -> None:
        """Inputs list oldest first, also when created in the same second."""
        await fleet.group("web")
        names = [f"in{i}" for i in range(5)]
        for name in names:
            await fleet.data("POST", "/groups/web/inputs", {**DEMO, "name": name})
        assert [i["name"] for i in await fleet.data("GET", "/groups/web/inputs")] == names


class TestEnrolmentTokens:
    async def test_mint_defaults_to_a_day_and_a_hundred_uses(
        self, fleet: Fleet, clock: FakeClock
    ) -> None:
        """Without ttl or maxUses: 24 hours and 100 uses; the token is in this answer only."""
        await fleet.group("web")
        response = await fleet.admin("POST", "/enrolment-tokens", {"group": "web"})
        assert response.status_code == 201
        minted = response.json()["data"]
        assert minted["token"].startswith("EBT_")
        assert (minted["maxUses"], minted["uses"], minted["state"]) == (100, 0, "active")
        assert minted["expiresAt"] == isotime(clock.now + 86400)
        (listed,) = await fleet.data("GET", "/enrolment-tokens")
        assert "token" not in listed
        assert listed["id"] == minted["id"]

    async def test_states_follow_uses_time_and_revocation(
        self, fleet: Fleet, clock: FakeClock
    ) -> None:
        """The list shows exhausted, expired and revoked tokens as such."""
        await fleet.group("web")
        used = await fleet.token("web", maxUses=1, ttlSeconds=7200)
        await fleet.enrol_response(used)
        await fleet.token("web", ttlSeconds=60)
        revoked = await fleet.data("POST", "/enrolment-tokens", {"group": "web", "label": "r"})
        await fleet.data("POST", f"/enrolment-tokens/{revoked['id']}/revoke")
        clock.advance(61)
        states = sorted(t["state"] for t in await fleet.data("GET", "/enrolment-tokens"))
        assert states == ["exhausted", "expired", "revoked"]

    async def test_revoke_is_idempotent(self, fleet: Fleet, clock: FakeClock) -> None:
        """Revoking twice keeps the first revocation time."""
        await fleet.group("web")
        minted = await fleet.data("POST", "/enrolment-tokens", {"group": "web"})
        first = await fleet.data("POST", f"/enrolment-tokens/{minted['id']}/revoke")
        clock.advance(10)
        again = await fleet.data("POST", f"/enrolment-tokens/{minted['id']}/revoke")
        assert again["revokedAt"] == first["revokedAt"]


class TestAgentsAndActions:
    async def test_agents_list_filters_by_group(self, fleet: Fleet) -> None:
        """?group= shows that group's agents only, ordered by hostname."""
        await fleet.group("web")
        await fleet.group("db")
        for host in ("web-2", "web-1"):
            await fleet.enrol("web", hostname=host)
        await fleet.enrol("db", hostname="db-1")
        listed = await fleet.data("GET", "/agents", group="web")
        assert [a["hostname"] for a in listed] == ["web-1", "web-2"]
        assert len(await fleet.data("GET", "/agents", limit=2)) == 2
        assert len(await fleet.data("GET", "/agents", offset=2)) == 1

    async def test_moving_a_revoked_agent_is_refused(self, fleet: Fleet) -> None:
        """A revoked agent cannot be moved (409)."""
        await fleet.group("web")
        await fleet.group("db")
        agent = await fleet.enrol("web")
        await fleet.data("POST", f"/agents/{agent.id}/revoke")
        response = await fleet.admin("POST", f"/agents/{agent.id}/move", {"group": "db"})
        assert response.status_code == 409

    async def test_bulk_upgrade_creates_one_action_per_agent(self, fleet: Fleet) -> None:
        """One request, many agents: one pending action each, in the order given."""
        await fleet.group("web")
        agents = [await fleet.enrol("web", hostname=f"h{i}") for i in range(3)]
        created = await fleet.upgrade(*agents)
        assert [a["agentId"] for a in created] == [a.id for a in agents]
        assert {a["status"] for a in created} == {"pending"}
        assert {a["payload"]["targetVersion"] for a in created} == {"0.4.2"}

    async def test_actions_list_filters_by_agent_and_status(self, fleet: Fleet) -> None:
        """?agentId= and ?status= narrow the list."""
        await fleet.group("web")
        a, b = await fleet.enrol("web"), await fleet.enrol("web")
        (first,) = await fleet.upgrade(a)
        await fleet.upgrade(a)
        await fleet.upgrade(b)
        await fleet.data("POST", f"/actions/{first['id']}/cancel")
        assert len(await fleet.data("GET", "/actions", agentId=a.id)) == 2
        cancelled = await fleet.data("GET", "/actions", status="cancelled")
        assert [x["id"] for x in cancelled] == [first["id"]]
        assert len(await fleet.data("GET", "/actions", agentId=b.id, status="pending")) == 1
