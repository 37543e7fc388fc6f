"""Config polling (``GET /api/v1/agents/{id}/config``): versions, etags, ``{}``, group moves."""

from __future__ import annotations

import hashlib

import pytest
from starlette.applications import Starlette

from tests.server.harness import DEMO, JOURNALD, KUBE, Fleet

pytestmark = pytest.mark.anyio


def etag_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class TestConfigPoll:
    async def test_first_poll_gets_the_yaml_with_version_and_etag(self, fleet: Fleet) -> None:
        """since=0 gives 200, application/yaml, x-config-version and the body's sha256 etag."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        response = await fleet.config(agent, since=0)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/yaml"
        assert response.headers["x-config-version"] == "2"
        assert response.headers["x-config-etag"] == etag_of(response.content)
        assert b"demo_logs" in response.content
        assert b"SECRET[logpulse.agent_token]" in response.content

    async def test_current_version_without_etag_gives_204(self, fleet: Fleet) -> None:
        """since >= the group's version and no If-None-Match: 204, no body."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        response = await fleet.config(agent, since=2)
        assert response.status_code == 204
        assert response.content == b""
        assert response.headers["x-config-version"] == "2"
        assert (await fleet.config(agent, since=7)).status_code == 204

    async def test_current_version_with_matching_etag_gives_204(self, fleet: Fleet) -> None:
        """since is current and If-None-Match is the current etag (bare or quoted): 204."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        etag = (await fleet.config(agent)).headers["x-config-etag"]
        assert (await fleet.config(agent, since=2, etag=etag)).status_code == 204
        assert (await fleet.config(agent, since=2, etag=f'"{etag}"')).status_code == 204

    async def test_changed_etag_at_the_same_version_gives_200(self, fleet: Fleet) -> None:
        """An If-None-Match that is not the current etag gives the config even when since is
        current (e.g. after a move to a group whose version is lower)."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        response = await fleet.config(agent, since=2, etag="sha256:" + "0" * 64)
        assert response.status_code == 200
        assert response.headers["x-config-etag"] == etag_of(response.content)

    async def test_older_version_gives_200_whatever_the_etag(self, fleet: Fleet) -> None:
        """since behind the group's version gives 200 even with the current etag."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        etag = (await fleet.config(agent)).headers["x-config-etag"]
        assert (await fleet.config(agent, since=1, etag=etag)).status_code == 200

    async def test_group_without_enabled_inputs_serves_empty_object(self, fleet: Fleet) -> None:
        """No enabled input: the body is exactly ``{}``, with its own etag."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        response = await fleet.config(agent)
        assert response.status_code == 200
        assert response.content == b"{}"
        assert response.headers["x-config-version"] == "1"
        assert response.headers["x-config-etag"] == etag_of(b"{}")

    async def test_disabling_the_last_input_serves_empty_object(self, fleet: Fleet) -> None:
        """Disabling the only input bumps the version and the next poll gets ``{}``."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        input_id = (await fleet.data("GET", "/groups/web/inputs"))[0]["id"]
        await fleet.data("PATCH", f"/inputs/{input_id}", {"enabled": False})
        response = await fleet.config(agent, since=2)
        assert response.status_code == 200
        assert response.headers["x-config-version"] == "3"
        assert response.content == b"{}"

    async def test_inputs_of_another_platform_are_left_out(self, fleet: Fleet) -> None:
        """journald renders for linux agents only, kubernetes_logs for kubernetes ones."""
        await fleet.group("mixed", JOURNALD, KUBE)
        linux = await fleet.enrol("mixed")
        kube = await fleet.enrol("mixed", platform="kubernetes")
        linux_body = (await fleet.config(linux)).content
        kube_body = (await fleet.config(kube)).content
        assert b"journald" in linux_body and b"kubernetes_logs" not in linux_body
        assert b"kubernetes_logs" in kube_body and b"journald" not in kube_body

    async def test_input_edit_reaches_the_next_poll(self, fleet: Fleet) -> None:
        """An override edit bumps the version; a poll at the old version gets the new YAML."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        input_id = (await fleet.data("GET", "/groups/web/inputs"))[0]["id"]
        await fleet.data("PATCH", f"/inputs/{input_id}", {"indexOverride": "prod"})
        response = await fleet.config(agent, since=2)
        assert response.status_code == 200
        assert response.headers["x-config-version"] == "3"
        assert b"index: prod" in response.content

    async def test_since_must_be_a_number(self, fleet: Fleet) -> None:
        """A non-numeric or negative since gives 400."""
        await fleet.group("web")
        agent = await fleet.enrol("web")
        for bad in ("abc", "-1"):
            response = await fleet.client.get(
                f"/api/v1/agents/{agent.id}/config", params={"since": bad}, headers=agent.auth
            )
            assert response.status_code == 400
            assert "since" in response.json()["error"]["message"]


class TestPreview:
    @pytest.mark.parametrize("platform", ["linux", "kubernetes"])
    async def test_preview_is_byte_identical_to_the_agents_config(
        self, fleet: Fleet, platform: str
    ) -> None:
        """The admin preview for a platform is exactly what an agent of it is served."""
        await fleet.group("mixed", DEMO, JOURNALD, KUBE)
        agent = await fleet.enrol("mixed", platform=platform)
        served = await fleet.config(agent)
        preview = await fleet.admin("GET", "/groups/mixed/preview", platform=platform)
        assert preview.status_code == 200
        assert preview.content == served.content
        assert preview.headers["x-config-etag"] == served.headers["x-config-etag"]
        assert preview.headers["x-config-version"] == served.headers["x-config-version"]

    async def test_unknown_platform_is_refused(self, fleet: Fleet) -> None:
        """A platform other than linux or kubernetes gives 400."""
        await fleet.group("web")
        response = await fleet.admin("GET", "/groups/web/preview", platform="windows")
        assert response.status_code == 400


class TestRenderCache:
    async def test_a_version_is_rendered_once_per_platform(
        self, fleet: Fleet, app: Starlette
    ) -> None:
        """Many agents polling the same group and version cost one render."""
        await fleet.group("web", DEMO)
        agents = [await fleet.enrol("web", hostname=f"h{i}") for i in range(5)]
        before = app.state.ctx.configs.renders
        bodies = {(await fleet.config(agent)).content for agent in agents}
        assert len(bodies) == 1
        assert app.state.ctx.configs.renders == before + 1


class TestGroupMove:
    async def test_moved_agent_gets_the_new_groups_config_on_its_next_poll(
        self, fleet: Fleet
    ) -> None:
        """After a move the next poll serves the new group's config, even when the agent's
        since (a version of its old group) is ahead of the new group's version."""
        await fleet.group("web", DEMO, DEMO, DEMO)  # version 4
        await fleet.group("db", JOURNALD)  # version 2
        agent = await fleet.enrol("web")
        old = await fleet.config(agent)
        await fleet.pending(agent, appliedConfigVersion=4)
        moved = await fleet.data("POST", f"/agents/{agent.id}/move", {"group": "db"})
        assert moved["appliedConfigVersion"] == 0
        assert moved["groupSlug"] == "db"
        for etag in (None, old.headers["x-config-etag"]):
            if etag is None:
                response = await fleet.config(agent, since=4)
            else:
                # once served, the etag rule keeps delivering it until the agent applies it
                response = await fleet.config(agent, since=4, etag=etag)
            assert response.status_code == 200
            assert response.headers["x-config-version"] == "2"
            assert b"journald" in response.content

    async def test_applied_version_shows_zero_until_the_agent_holds_the_new_config(
        self, fleet: Fleet
    ) -> None:
        """Heartbeats that still report the old group's version leave the applied version at
        0 — also after the new config was served — until a poll with the new group's version
        and etag shows the agent holds it; then reported versions count again."""
        await fleet.group("web", DEMO, DEMO, DEMO)
        await fleet.group("db", JOURNALD)
        agent = await fleet.enrol("web")
        await fleet.pending(agent, appliedConfigVersion=4)
        await fleet.data("POST", f"/agents/{agent.id}/move", {"group": "db"})
        await fleet.pending(agent, appliedConfigVersion=4)
        assert (await fleet.agent(agent))["appliedConfigVersion"] == 0
        served = await fleet.config(agent, since=4)
        await fleet.pending(agent, appliedConfigVersion=4)  # not applied yet
        assert (await fleet.agent(agent))["appliedConfigVersion"] == 0
        confirmed = await fleet.config(agent, since=2, etag=served.headers["x-config-etag"])
        assert confirmed.status_code == 204
        await fleet.pending(agent, appliedConfigVersion=2)
        shown = await fleet.agent(agent)
        assert (shown["appliedConfigVersion"], shown["groupConfigVersion"]) == (2, 2)

    async def test_moving_into_the_same_group_changes_nothing(self, fleet: Fleet) -> None:
        """A move to the agent's own group keeps its applied version."""
        await fleet.group("web", DEMO)
        agent = await fleet.enrol("web")
        await fleet.pending(agent, appliedConfigVersion=2)
        moved = await fleet.data("POST", f"/agents/{agent.id}/move", {"group": "web"})
        assert moved["appliedConfigVersion"] == 2
