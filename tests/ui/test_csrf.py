"""Every state-changing form of the fleet pages: without its CSRF token, with a wrong one, or
posted from another site, it is refused (4xx) and the database is exactly as before."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from tests.server.harness import DEMO, Fleet
from tests.ui.pages import Pages

pytestmark = pytest.mark.anyio


def ui_post_routes(app: Starlette) -> list[str]:
    (mount,) = [r for r in app.routes if isinstance(r, Mount) and r.path == "/ui"]
    return [
        "/ui" + route.path
        for route in mount.routes
        if isinstance(route, Route) and "POST" in (route.methods or ())
    ]


def dump(app: Starlette) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the whole state a refused post must leave alone)."""
    with app.state.ctx.store.read() as conn:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {  # sorted in Python: some tables are WITHOUT ROWID
            table: sorted((tuple(row) for row in conn.execute(f"SELECT * FROM {table}")), key=repr)
            for table in tables
        }


@pytest.fixture
async def world(fleet: Fleet) -> dict[str, str]:
    """One of everything a form can change: group, input, agent, pending action, token, a
    running staged rollout."""
    group = await fleet.group("web", DEMO)
    await fleet.group("db")
    agent = await fleet.enrol(group["id"])
    (action,) = await fleet.upgrade(agent)
    (item,) = await fleet.data("GET", f"/groups/{group['id']}/inputs")
    token = await fleet.data("POST", "/enrolment-tokens", {"group": "web"})
    staged = {"strategy": "staged", "phases": [1, "100%"], "soakSeconds": 60, "maxFailures": 0}
    await fleet.data("PATCH", "/groups/web", {"rollout": staged})
    await fleet.data("POST", "/groups/web/inputs", {**DEMO, "name": "second"})
    rollout = await fleet.data("GET", "/groups/web/rollout")
    return {
        "rollout_id": rollout["id"],
        "verb": "pause",
        "group": "web",
        "agent_id": agent.id,
        "action_id": action["id"],
        "input_id": item["id"],
        "token_id": token["id"],
    }


def fill(template: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)


# What a valid post to each route would send besides the CSRF token.
FIELDS = {
    "/ui/groups": {"name": "new group"},
    "/ui/groups/{group}/inputs": {"type": "demo_logs", "name": "x", "options": "format: json"},
    "/ui/inputs/{input_id}": {"name": "renamed", "options": "format: syslog", "enabled": "on"},
    "/ui/agents/{agent_id}/move": {"group": "db"},
    "/ui/groups/{group}/tokens": {"maxUses": "3"},
    "/ui/upgrade": {"mode": "filter", "targetVersion": "0.5.0"},
    "/ui/upgrade/review": {"mode": "filter"},
}


class TestEveryForm:
    def test_the_list_of_forms_is_the_one_this_test_knows(self, app: Starlette) -> None:
        """A new POST route must be added here (so it is covered by the checks below)."""
        assert sorted(ui_post_routes(app)) == sorted(
            [
                "/ui/signin",
                "/ui/signout",
                "/ui/agents/{agent_id}/revoke",
                "/ui/agents/{agent_id}/move",
                "/ui/actions/{action_id}/cancel",
                "/ui/groups",
                "/ui/groups/{group}/inputs",
                "/ui/inputs/{input_id}",
                "/ui/inputs/{input_id}/enable",
                "/ui/inputs/{input_id}/disable",
                "/ui/inputs/{input_id}/delete",
                "/ui/groups/{group}/tokens",
                "/ui/tokens/{token_id}/revoke",
                "/ui/upgrade/review",
                "/ui/upgrade",
                "/ui/rollouts/{rollout_id}/{verb}",
            ]
        )

    @pytest.mark.parametrize("csrf", [None, "", "wrong-token-of-the-right-length-000000000000"])
    async def test_a_post_without_the_right_csrf_token_changes_nothing(
        self, app: Starlette, pages: Pages, world: dict[str, str], csrf: str | None
    ) -> None:
        """Missing, empty or wrong ``csrf`` → 403 on every form; every table is unchanged."""
        before = dump(app)
        for template in ui_post_routes(app):
            if template == "/ui/signin":
                continue  # its own pre-session token: see test_sign_in.py
            data = dict(FIELDS.get(template, {}))
            if csrf is not None:
                data["csrf"] = csrf
            response = await pages.client.post(
                fill(template, world),
                content=str(httpx.QueryParams(list(data.items()))),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code == 403, (template, response.status_code)
            assert "security token" in response.text
        assert dump(app) == before
        assert (await pages.get("/ui/agents")).status_code == 200  # still signed in

    async def test_a_post_from_another_site_is_refused_even_with_the_token(
        self, app: Starlette, pages: Pages, world: dict[str, str]
    ) -> None:
        """``Origin`` of another host → 403 before anything runs; ``null`` origins too."""
        before = dump(app)
        for origin in ("https://evil.example", "null"):
            for template in ui_post_routes(app):
                response = await pages.post(
                    fill(template, world),
                    FIELDS.get(template, {}),
                    headers={"Origin": origin},
                )
                assert response.status_code == 403, (template, origin)
        assert dump(app) == before

    async def test_the_same_site_origin_and_token_are_accepted(
        self, pages: Pages, fleet: Fleet, world: dict[str, str]
    ) -> None:
        """The browser's own ``Origin`` with the session's token goes through (control case)."""
        response = await pages.post(
            "/ui/groups", {"name": "fresh"}, headers={"Origin": "http://testserver"}
        )
        assert response.status_code == 303
        assert (await fleet.data("GET", "/groups/fresh"))["name"] == "fresh"

    async def test_a_form_in_another_encoding_is_refused_with_415(
        self, pages: Pages, fleet: Fleet, world: dict[str, str]
    ) -> None:
        """JSON (or multipart) bodies are not forms: 415, nothing created."""
        response = await pages.client.post("/ui/groups", json={"name": "json", "csrf": pages.csrf})
        assert response.status_code == 415
        assert len(await fleet.data("GET", "/groups")) == 2
