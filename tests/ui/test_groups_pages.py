"""Groups, inputs, the YAML preview and enrolment tokens over HTTP: the admin API's rules and
messages, shown next to the form, and a token shown exactly once."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from tests.server.harness import ADMIN, DEMO, Fleet
from tests.ui.pages import Pages, text_of

pytestmark = pytest.mark.anyio

NEW_INPUT = {
    "type": "demo_logs",
    "name": "demo",
    "options": "format: json\ninterval: 2",
    "enabled": "on",
}


async def version(fleet: Fleet, group: str = "web") -> int:
    value: int = (await fleet.data("GET", f"/groups/{group}"))["configVersion"]
    return value


class TestGroups:
    async def test_the_list_links_each_group_with_its_counts(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        group = await fleet.group("Web frontends", DEMO)
        await fleet.enrol(group["id"])
        page = (await pages.get("/ui/groups")).text
        assert 'href="/ui/groups/web-frontends"' in page
        row = text_of(page.split('href="/ui/groups/web-frontends">', 1)[1].split("</tr>")[0])
        assert row.split()[:5] == ["Web", "frontends", "web-frontends", "2", "1"]

    async def test_creating_a_group_goes_to_its_page(self, pages: Pages, fleet: Fleet) -> None:
        response = await pages.post("/ui/groups", {"name": "Prod DBs", "slug": ""})
        assert response.headers["location"] == "/ui/groups/prod-dbs?done=created"
        assert (await fleet.data("GET", "/groups/prod-dbs"))["configVersion"] == 1

    async def test_a_refused_group_keeps_what_was_typed_and_says_why(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        """A taken slug → 409 with the admin API's message, the form filled in, nothing new."""
        await fleet.group("web")
        response = await pages.post("/ui/groups", {"name": "Another <web>", "slug": "web"})
        assert response.status_code == 409
        assert "a group with slug 'web' already exists" in text_of(response.text)
        assert 'value="Another &lt;web&gt;"' in response.text
        assert len(await fleet.data("GET", "/groups")) == 1


class TestInputs:
    async def test_adding_an_input_bumps_the_version_and_lists_it(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        await fleet.group("web")
        response = await pages.post("/ui/groups/web/inputs", NEW_INPUT)
        assert response.headers["location"] == "/ui/groups/web?done=input-added#inputs"
        (item,) = await fleet.data("GET", "/groups/web/inputs")
        assert (item["type"], item["options"], item["enabled"]) == (
            "demo_logs",
            {"format": "json", "interval": 2},
            True,
        )
        assert await version(fleet) == 2
        page = text_of((await pages.get("/ui/groups/web")).text)
        assert "demo_logs" in page and '{"format": "json", "interval": 2' in page

    @pytest.mark.parametrize(
        ("fields", "status", "message"),
        [
            ({"type": "syslog", "options": "mode: udp"}, 422, "address"),
            ({"options": "format: json\nbogus: 1"}, 422, "bogus"),
            ({"type": "carrier_pigeon"}, 422, "carrier_pigeon"),
            ({"name": "  "}, 422, "name: must not be blank"),
            ({"options": "- a list"}, 422, "options must be a mapping"),
            ({"options": "format: [json"}, 422, "options are not valid YAML"),
            ({"options": "a: &x [1]\nb: *x"}, 422, "aliases (*name) are not allowed"),
            ({"options": "format: json\nlines: 2024-01-01"}, 422, "JSON cannot carry"),
            ({"indexOverride": "{{ idx }}"}, 422, "invalid indexOverride"),
            ({"sourceOverride": " padded"}, 422, "must not start or end with spaces"),
        ],
    )
    async def test_a_refused_input_shows_the_admin_apis_message_and_changes_nothing(
        self, pages: Pages, fleet: Fleet, fields: dict[str, str], status: int, message: str
    ) -> None:
        """Same checks as POST …/inputs; the form comes back filled in; the version stays."""
        await fleet.group("web")
        response = await pages.post("/ui/groups/web/inputs", {**NEW_INPUT, **fields})
        assert response.status_code == status
        error = re.search(
            r'<p class="error" role="alert" id="form-error">(.*?)</p>', response.text, re.S
        )
        assert error and message in html.unescape(error.group(1)), response.text[-3000:]
        assert (
            f"{html.escape(fields.get('options', NEW_INPUT['options']))}</textarea>"
            in response.text
        )
        assert await fleet.data("GET", "/groups/web/inputs") == []
        assert await version(fleet) == 1

    async def test_the_api_and_the_form_refuse_the_same_options_with_the_same_words(
        self, pages: Pages, fleet: Fleet, http: httpx.AsyncClient
    ) -> None:
        """The page's message is the admin API's message, word for word."""
        await fleet.group("web")
        body = {"type": "syslog", "name": "s", "options": {"mode": "udp"}}
        api = await http.post("/api/v1/admin/groups/web/inputs", json=body, headers=ADMIN)
        form = await pages.post(
            "/ui/groups/web/inputs", {"type": "syslog", "name": "s", "options": "mode: udp"}
        )
        assert api.status_code == form.status_code == 422
        assert api.json()["error"]["message"] in text_of(form.text)

    async def test_editing_an_input_saves_every_field_and_clears_an_override(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        group = await fleet.group("web", {**DEMO, "indexOverride": "web"})
        (item,) = await fleet.data("GET", f"/groups/{group['id']}/inputs")
        form = text_of((await pages.get(f"/ui/inputs/{item['id']}")).text)
        assert "format: json" in form
        fields = {
            "name": "renamed",
            "options": "format: syslog",
            "indexOverride": "",
            "enabled": "on",
        }
        response = await pages.post(f"/ui/inputs/{item['id']}", fields)
        assert response.status_code == 303
        saved = await fleet.data("GET", f"/inputs/{item['id']}")
        assert (saved["name"], saved["options"], saved["indexOverride"]) == (
            "renamed",
            {"format": "syslog"},
            None,
        )
        assert await version(fleet) == 3

    async def test_a_refused_edit_keeps_the_typed_values(self, pages: Pages, fleet: Fleet) -> None:
        group = await fleet.group("web", DEMO)
        (item,) = await fleet.data("GET", f"/groups/{group['id']}/inputs")
        response = await pages.post(
            f"/ui/inputs/{item['id']}", {"name": "x", "options": "format: morse", "enabled": "on"}
        )
        assert response.status_code == 422
        assert "format: morse</textarea>" in response.text and "morse" in text_of(response.text)
        assert (await fleet.data("GET", f"/inputs/{item['id']}"))["options"] == {"format": "json"}

    async def test_disable_enable_and_delete(self, pages: Pages, fleet: Fleet) -> None:
        """Each bumps the version once; delete asks first."""
        group = await fleet.group("web", DEMO)
        (item,) = await fleet.data("GET", f"/groups/{group['id']}/inputs")
        await pages.post(f"/ui/inputs/{item['id']}/disable")
        assert (await fleet.data("GET", f"/inputs/{item['id']}"))["enabled"] is False
        assert "Disabled" in text_of((await pages.get("/ui/groups/web")).text)
        await pages.post(f"/ui/inputs/{item['id']}/enable")
        assert (await fleet.data("GET", f"/inputs/{item['id']}"))["enabled"] is True
        confirm = text_of((await pages.get(f"/ui/inputs/{item['id']}/delete")).text)
        assert "Delete input demo?" in confirm
        assert len(await fleet.data("GET", "/groups/web/inputs")) == 1
        response = await pages.post(f"/ui/inputs/{item['id']}/delete")
        assert response.headers["location"] == "/ui/groups/web?done=input-deleted#inputs"
        assert await fleet.data("GET", "/groups/web/inputs") == []
        assert await version(fleet) == 5


class TestPreview:
    @pytest.mark.parametrize("platform", ["linux", "kubernetes"])
    async def test_the_preview_is_what_an_agent_of_that_platform_gets(
        self, pages: Pages, fleet: Fleet, http: httpx.AsyncClient, platform: str
    ) -> None:
        """The page's YAML is the admin preview's bytes (which are the agents' bytes)."""
        await fleet.group("web", DEMO, {"type": "journald", "name": "j", "options": {}})
        api = await http.get(
            "/api/v1/admin/groups/web/preview", params={"platform": platform}, headers=ADMIN
        )
        page = (await pages.get("/ui/groups/web", platform=platform)).text
        shown = re.search(r'<pre class="yaml"[^>]*><code>(.*?)</code></pre>', page, re.S)
        assert shown and html.unescape(shown.group(1)) == api.text
        assert api.headers["x-config-etag"] in page

    async def test_an_unknown_platform_is_a_400_page(self, pages: Pages, fleet: Fleet) -> None:
        await fleet.group("web")
        response = await pages.get("/ui/groups/web", platform="windows")
        assert response.status_code == 400 and "platform must be one of" in text_of(response.text)


class TestTokens:
    async def test_a_minted_token_is_shown_once_with_the_install_one_liner(
        self, pages: Pages, fleet: Fleet, http: httpx.AsyncClient
    ) -> None:
        """The answer holds the token and the commands; no page ever shows it again."""
        await fleet.group("web")
        response = await pages.post(
            "/ui/groups/web/tokens", {"label": "rack 7", "ttlHours": "2", "maxUses": "3"}
        )
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        token = re.search(r"EBT_[A-Za-z0-9_-]{43}", response.text)
        assert token
        raw = token.group(0)
        text = text_of(response.text)
        assert (
            f"curl -fsSL https://get.logpulse.io | sudo LOGPULSE_API_URL=http://testserver"
            f" LOGPULSE_ENROL_TOKEN={raw} sh" in text
        )
        assert f"logpulse-agent enrol --api-url http://testserver --token {raw}" in text
        (listed,) = await fleet.data("GET", "/enrolment-tokens", group="web")
        assert (listed["label"], listed["maxUses"], listed["state"]) == ("rack 7", 3, "active")
        for path in ("/ui/groups/web", "/ui/groups", "/ui/agents"):
            assert raw not in (await pages.get(path)).text
        enrolled = await fleet.enrol_response(raw, hostname="new-host")
        assert enrolled.status_code == 201

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"maxUses": "0"}, "maxUses"),
            ({"maxUses": "many"}, "must be numbers"),
            ({"ttlHours": "-1"}, "expiry must be from 1 minute"),
        ],
    )
    async def test_a_refused_mint_says_why_and_mints_nothing(
        self, pages: Pages, fleet: Fleet, fields: dict[str, str], message: str
    ) -> None:
        await fleet.group("web")
        response = await pages.post("/ui/groups/web/tokens", fields)
        assert response.status_code == 422
        assert message in text_of(response.text) and "EBT_" not in response.text
        assert await fleet.data("GET", "/enrolment-tokens") == []

    async def test_revoking_a_token_stops_enrolments_with_it(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        await fleet.group("web")
        raw = await fleet.token("web")
        (listed,) = await fleet.data("GET", "/enrolment-tokens")
        response = await pages.post(f"/ui/tokens/{listed['id']}/revoke")
        assert response.headers["location"] == "/ui/groups/web?done=token-revoked#tokens"
        assert (await fleet.enrol_response(raw)).status_code == 401
