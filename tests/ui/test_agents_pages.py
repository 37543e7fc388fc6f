"""The Agents table and an agent's page over HTTP: what they show, escaping, server-side
pagination and filters, the live fragment, and revoke / move / cancel."""

from __future__ import annotations

import re

import pytest
from starlette.applications import Starlette
from structlog.testing import capture_logs

from tests.server.harness import DEMO, FakeClock, Fleet
from tests.ui.pages import Pages, text_of

pytestmark = pytest.mark.anyio

HOSTILE = "<img src=x onerror=alert(1)>"


def hosts_in(page: str) -> list[str]:
    """The hostnames of the table's rows, in order."""
    return [
        text_of(m).strip() for m in re.findall(r"<th scope=\"row\" class=\"host\">(.*?)</th>", page)
    ]


class TestTable:
    async def test_rows_show_status_versions_and_applied_against_group_version(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        """Online with the last-seen tip, versions, ``1 / 2`` marked "behind", the error."""
        group = await fleet.group("web", DEMO)  # version 2
        agent = await fleet.enrol(group["id"], hostname="web-1")
        error = {
            "configVersion": 2,
            "message": "vector validate: bad",
            "at": "2025-01-01T00:00:00Z",
        }
        await fleet.heartbeat(agent, appliedConfigVersion=1, configError=error)
        page = (await pages.get("/ui/agents")).text
        text = text_of(page)
        assert hosts_in(page) == ["web-1"]
        assert "Online" in text and "last seen" in text
        assert "1 / 2" in text and "behind" in text
        assert "v2: vector validate: bad" in text
        assert "0.4.1" in text and "0.40.0" in text

    async def test_an_agent_that_stopped_beating_is_offline_with_its_last_seen_time(
        self, pages: Pages, fleet: Fleet, clock: FakeClock
    ) -> None:
        """Past the 5-minute threshold the badge says Offline; its tooltip the exact time."""
        group = await fleet.group("web")
        agent = await fleet.enrol(group["id"], hostname="quiet")
        await fleet.heartbeat(agent)
        clock.advance(301)
        text = text_of((await pages.get("/ui/agents")).text)
        assert "Offline" in text
        assert "last seen 2025-06-15 15:06:40 UTC (5m ago)" in text

    async def test_everything_an_agent_reports_is_escaped(self, pages: Pages, fleet: Fleet) -> None:
        """Hostname, OS, kernel, versions and config error appear as text, never as markup."""
        group = await fleet.group("web")
        agent = await fleet.enrol(
            group["id"],
            hostname=HOSTILE,
            os="<script>alert(2)</script>",
            kernel='"><svg onload=alert(3)>',
            vectorVersion="<b>0.57</b>",
        )
        error = {"configVersion": 1, "message": "<iframe src=//x>", "at": "2025-01-01T00:00:00Z"}
        await fleet.heartbeat(agent, vectorVersion="<i>v</i>", configError=error)
        for path in ("/ui/agents", f"/ui/agents/{agent.id}", "/ui/agents?fragment=1"):
            page = (await pages.get(path)).text
            for raw in ("<img", "<script>alert", "<svg", "<iframe", "<i>v</i>"):
                assert raw not in page, (path, raw)
            assert "&lt;img src=x onerror=alert(1)&gt;" in page, path
        agent_page = text_of((await pages.get(f"/ui/agents/{agent.id}")).text)
        assert HOSTILE in agent_page and "<iframe src=//x>" in agent_page

    async def test_pages_are_cut_on_the_server_with_a_total_and_links(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        """60 agents, 25 per page: page 3 holds rows 51-60 by hostname; links keep filters."""
        group = await fleet.group("web")
        token = await fleet.token(group["id"], maxUses=100)
        for n in range(60):
            response = await fleet.enrol_response(token, hostname=f"host-{n:03d}")
            assert response.status_code == 201
        page = (await pages.get("/ui/agents", per="25", page="3", group="web")).text
        assert hosts_in(page) == [f"host-{n:03d}" for n in range(50, 60)]
        assert "page 3 of 3" in text_of(page)
        assert "60 agents match" in text_of(page)
        assert 'href="/ui/agents?group=web&amp;page=2&amp;per=25" rel="prev"' in page
        first = (await pages.get("/ui/agents", per="25")).text
        assert hosts_in(first)[0] == "host-000" and len(hosts_in(first)) == 25
        beyond = (await pages.get("/ui/agents", per="25", page="9")).text
        assert hosts_in(beyond) == [] and "No agents match" in text_of(beyond)

    async def test_filters_by_group_status_and_host_text(self, pages: Pages, fleet: Fleet) -> None:
        """Each filter narrows the rows; a host search takes ``%`` and ``_`` literally."""
        web, db = await fleet.group("web"), await fleet.group("db")
        for name, group in (("web_1", web), ("web-2", web), ("db-1", db), ("db%1", db)):
            await fleet.enrol(group["id"], hostname=name)
        online = await fleet.enrol(db["id"], hostname="db-online")
        await fleet.heartbeat(online)
        assert hosts_in((await pages.get("/ui/agents", group="web")).text) == ["web-2", "web_1"]
        assert hosts_in((await pages.get("/ui/agents", status="online")).text) == ["db-online"]
        assert hosts_in((await pages.get("/ui/agents", host="B_")).text) == ["web_1"]
        assert hosts_in((await pages.get("/ui/agents", host="%")).text) == ["db%1"]
        both = await pages.get("/ui/agents", group="db", status="offline", host="db")
        assert hosts_in(both.text) == ["db%1", "db-1"]

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"status": "sleeping"}, "status must be one of online, offline, revoked"),
            ({"per": "7"}, "per must be one of 25, 50, 100, 200"),
            ({"page": "0"}, "page must be from 1 on"),
            ({"page": "x"}, "page must be a whole number"),
            ({"group": "nope"}, "no group with id or slug 'nope'"),
        ],
    )
    async def test_unusable_filters_answer_a_clear_error_page(
        self, pages: Pages, params: dict[str, str], message: str
    ) -> None:
        """4xx with one line saying what is wrong, never a 500."""
        response = await pages.get("/ui/agents", **params)
        assert 400 <= response.status_code < 500
        assert message in text_of(response.text)

    async def test_the_live_fragment_is_the_table_alone(self, pages: Pages, fleet: Fleet) -> None:
        """``fragment=1`` answers the summary, table and pager without the page around them."""
        group = await fleet.group("web")
        await fleet.enrol(group["id"], hostname="a")
        fragment = (await pages.get("/ui/agents", fragment="1")).text
        assert "<table" in fragment and "<html" not in fragment and "<form" not in fragment
        assert hosts_in(fragment) == ["a"]

    async def test_pages_carry_a_strict_content_security_policy_and_no_store(
        self, pages: Pages
    ) -> None:
        """Scripts only from this server, no framing, nothing cached."""
        response = await pages.get("/ui/agents")
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"


class TestAgentPage:
    async def test_shows_identity_heartbeat_error_and_actions(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        """The page lists the config error and each action with its state and outcome."""
        group = await fleet.group("web", DEMO)
        agent = await fleet.enrol(group["id"], hostname="web-1", os="Debian 12")
        first, second = await fleet.upgrade(agent), await fleet.upgrade(agent, version="0.5.0")
        results = [
            {"actionId": first[0]["id"], "status": "failed", "result": {"error": "disk full\nx"}},
            {"actionId": second[0]["id"], "status": "running"},
        ]
        await fleet.heartbeat(agent, actionResults=results, appliedConfigVersion=2)
        text = text_of((await pages.get(f"/ui/agents/{agent.id}")).text)
        assert "web-1" in text and "Debian 12" in text and agent.id in text
        assert "Failed" in text and "disk full" in text and "Running" in text
        assert "0.5.0" in text and "2 / 2" in text
        assert "None: the last config the agent received applied." in text

    async def test_a_config_error_without_a_time_still_shows(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        """``at`` is optional in a heartbeat's configError: the page shows — for it."""
        group = await fleet.group("web")
        agent = await fleet.enrol(group["id"])
        await fleet.heartbeat(agent, configError={"configVersion": 1, "message": "bad yaml"})
        response = await pages.get(f"/ui/agents/{agent.id}")
        assert response.status_code == 200
        assert "Version 1, —: bad yaml" in text_of(response.text)

    async def test_an_unknown_agent_is_a_404_page(self, pages: Pages) -> None:
        response = await pages.get("/ui/agents/0123456789abcdef0123456789abcdef")
        assert response.status_code == 404
        assert "no agent with id" in text_of(response.text)

    async def test_revoke_asks_first_then_revokes(self, pages: Pages, fleet: Fleet) -> None:
        """GET shows a confirmation (nothing changes); the POST revokes and cancels actions."""
        group = await fleet.group("web")
        agent = await fleet.enrol(group["id"], hostname="web-1")
        (action,) = await fleet.upgrade(agent)
        confirm = await pages.get(f"/ui/agents/{agent.id}/revoke")
        assert "Revoke web-1?" in text_of(confirm.text)
        assert (await fleet.agent(agent))["status"] != "revoked"
        response = await pages.post(f"/ui/agents/{agent.id}/revoke")
        assert response.headers["location"] == f"/ui/agents/{agent.id}?done=revoked"
        assert (await fleet.agent(agent))["status"] == "revoked"
        assert (await fleet.data("GET", f"/actions/{action['id']}"))["status"] == "cancelled"
        assert "The agent was revoked" in text_of(
            (await pages.get(response.headers["location"])).text
        )

    async def test_move_asks_first_then_moves_and_resets_the_applied_version(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        """The confirmation names both groups; the POST moves through the admin API's rules."""
        web, db = await fleet.group("web", DEMO), await fleet.group("db")
        agent = await fleet.enrol(web["id"], hostname="web-1")
        await fleet.heartbeat(agent, appliedConfigVersion=2)
        confirm = text_of((await pages.get(f"/ui/agents/{agent.id}/move", group="db")).text)
        assert "Move web-1 to db?" in confirm and "resets to 0" in confirm
        response = await pages.post(f"/ui/agents/{agent.id}/move", {"group": "db"})
        assert response.status_code == 303
        moved = await fleet.agent(agent)
        assert (moved["groupId"], moved["appliedConfigVersion"]) == (db["id"], 0)
        refused = await pages.post(f"/ui/agents/{agent.id}/move", {"group": "nowhere"})
        assert refused.status_code == 404 and "no group" in text_of(refused.text)

    async def test_a_pending_action_can_be_cancelled_a_running_one_cannot(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        group = await fleet.group("web")
        agent = await fleet.enrol(group["id"])
        (pending,), (running,) = await fleet.upgrade(agent), await fleet.upgrade(agent)
        await fleet.heartbeat(
            agent, actionResults=[{"actionId": running["id"], "status": "running"}]
        )
        assert (await pages.post(f"/ui/actions/{pending['id']}/cancel")).status_code == 303
        assert (await fleet.data("GET", f"/actions/{pending['id']}"))["status"] == "cancelled"
        refused = await pages.post(f"/ui/actions/{running['id']}/cancel")
        assert refused.status_code == 409 and "only pending actions cancel" in text_of(refused.text)


class TestElsewhere:
    async def test_a_page_that_crashes_is_an_html_500_and_logged(
        self, pages: Pages, fleet: Fleet, app: Starlette
    ) -> None:
        """Garbage in the database (here a config error that is not JSON) gives an error page
        that points at the server log, and the log has the traceback's event."""
        group = await fleet.group("web")
        agent = await fleet.enrol(group["id"])
        with app.state.ctx.store.write() as conn:
            conn.execute("UPDATE agent_registrations SET last_config_error = '{not json'")
        with capture_logs() as logs:
            response = await pages.get(f"/ui/agents/{agent.id}")
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("text/html")
        assert "the server log has the details" in text_of(response.text)
        assert [e["event"] for e in logs if e["log_level"] == "error"] == ["ui.page_crashed"]

    async def test_an_unknown_fleet_page_is_an_html_404(self, pages: Pages) -> None:
        response = await pages.get("/ui/nothing/here")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")

    async def test_the_root_leads_to_the_agents(self, pages: Pages) -> None:
        response = await pages.get("/ui/")
        assert (response.status_code, response.headers["location"]) == (303, "/ui/agents")

    async def test_the_script_and_stylesheet_are_served_by_the_server(self, pages: Pages) -> None:
        for name, kind in (("ui.js", "javascript"), ("ui.css", "text/css")):
            response = await pages.get(f"/ui/static/{name}")
            assert response.status_code == 200 and kind in response.headers["content-type"]
