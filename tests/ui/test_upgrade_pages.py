"""Bulk upgrade from the pages: the selection resolved on the server with its exact count,
confirmed against a digest, created through the admin API's checks, then added up."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.server.harness import Agent, Fleet
from tests.ui.pages import Pages, text_of

pytestmark = pytest.mark.anyio


def hidden(page: str, name: str) -> list[str]:
    return re.findall(rf'<input type="hidden" name="{name}" value="([^"]*)">', page)


async def web_and_db(fleet: Fleet) -> tuple[list[Agent], list[Agent]]:
    """Three web agents (one revoked) and two db agents."""
    web, db = await fleet.group("web"), await fleet.group("db")
    webs = [await fleet.enrol(web["id"], hostname=f"web-{n}") for n in range(3)]
    dbs = [await fleet.enrol(db["id"], hostname=f"db-{n}") for n in range(2)]
    await fleet.data("POST", f"/agents/{webs[2].id}/revoke")
    return webs, dbs


async def confirm(pages: Pages, review: str, version: str = "0.4.2") -> httpx.Response:
    """Post the review page's confirmation form as the browser would."""
    fields = [("mode", hidden(review, "mode")[0])]
    for name in ("group", "status", "host", "agent"):
        fields += [(name, value) for value in hidden(review, name)]
    fields += [("digest", hidden(review, "digest")[0]), ("targetVersion", version)]
    fields.append(("deadlineMinutes", "30"))
    return await pages.post("/ui/upgrade", fields)


class TestReview:
    async def test_by_filter_counts_every_matching_reachable_agent_on_the_server(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        """group=web resolves to the two unrevoked web agents, not the rows on screen."""
        await web_and_db(fleet)
        review = await pages.post("/ui/upgrade/review", {"mode": "filter", "group": "web"})
        assert review.status_code == 200
        text = text_of(review.text)
        assert "Upgrade 2 agents" in text and "Queue 2 upgrade actions" in text
        assert "web-0" in text and "web-1" in text and "web-2" not in text and "db-0" not in text

    async def test_by_hand_counts_the_ticked_agents_less_revoked_ones(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        webs, dbs = await web_and_db(fleet)
        picked = [("mode", "hand")] + [("agent", a.id) for a in (webs[0], webs[2], dbs[1])]
        review = text_of((await pages.post("/ui/upgrade/review", picked)).text)
        assert "Upgrade 2 agents" in review and "less 1 that is revoked or gone" in review

    async def test_nothing_ticked_is_a_clear_refusal(self, pages: Pages, fleet: Fleet) -> None:
        response = await pages.post("/ui/upgrade/review", {"mode": "hand"})
        assert response.status_code == 422
        assert "no agents are selected" in text_of(response.text)


class TestConfirm:
    async def test_confirming_queues_one_action_per_agent_in_one_batch(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        webs, dbs = await web_and_db(fleet)
        review = (await pages.post("/ui/upgrade/review", {"mode": "filter", "group": "web"})).text
        response = await confirm(pages, review)
        assert response.status_code == 303
        batch = response.headers["location"].rsplit("/", 1)[1]
        queued = await fleet.data("GET", "/actions", batchId=batch)
        assert sorted(a["agentId"] for a in queued) == sorted([webs[0].id, webs[1].id])
        assert {a["payload"]["targetVersion"] for a in queued} == {"0.4.2"}
        assert {a["batchId"] for a in queued} == {batch}
        assert await fleet.data("GET", "/actions", agentId=dbs[0].id) == []

    async def test_a_selection_that_changed_after_review_queues_nothing(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        """An agent enrolled between review and confirm: 409, the new count shown, no action."""
        await web_and_db(fleet)
        review = (await pages.post("/ui/upgrade/review", {"mode": "filter", "group": "web"})).text
        await fleet.enrol((await fleet.data("GET", "/groups/web"))["id"], hostname="web-late")
        response = await confirm(pages, review)
        assert response.status_code == 409
        text = text_of(response.text)
        assert "the selection changed" in text and "Upgrade 3 agents" in text
        assert await fleet.data("GET", "/actions") == []
        again = await confirm(pages, response.text)
        assert again.status_code == 303
        assert len(await fleet.data("GET", "/actions")) == 3

    @pytest.mark.parametrize(
        ("version", "message"), [("latest", "targetVersion"), ("1.2.3; reboot", "targetVersion")]
    )
    async def test_a_bad_version_is_refused_like_the_admin_api_does(
        self, pages: Pages, fleet: Fleet, version: str, message: str
    ) -> None:
        await web_and_db(fleet)
        review = (await pages.post("/ui/upgrade/review", {"mode": "filter", "group": "web"})).text
        response = await confirm(pages, review, version)
        assert response.status_code == 422
        assert message in text_of(response.text)
        assert await fleet.data("GET", "/actions") == []


class TestProgress:
    async def test_progress_adds_up_results_as_agents_report_them(
        self, pages: Pages, fleet: Fleet
    ) -> None:
        """pending → running/done/failed counts and the failure's reason, per batch."""
        group = await fleet.group("web")
        agents = [await fleet.enrol(group["id"], hostname=f"web-{n}") for n in range(4)]
        review = (await pages.post("/ui/upgrade/review", {"mode": "filter", "group": "web"})).text
        location = (await confirm(pages, review)).headers["location"]
        start = text_of((await pages.get(location)).text)
        assert "0 of 4 finished" in start
        outcomes = [
            ("done", {"fromVersion": "0.4.1", "toVersion": "0.4.2"}),
            ("done", {"fromVersion": "0.4.1", "toVersion": "0.4.2"}),
            ("failed", {"error": "installer: checksum mismatch", "fromVersion": "0.4.1"}),
            ("running", None),
        ]
        for agent, (status, result) in zip(agents, outcomes, strict=True):
            (action,) = await fleet.pending(agent)
            report = {"actionId": action["id"], "status": status}
            if result is not None:
                report["result"] = result
            await fleet.heartbeat(agent, actionResults=[report])
        page = (await pages.get(location, fragment="1")).text
        counts = dict(re.findall(r'id="count-(\w+)"><a href="\?status=\w+">(\d+)</a>', page))
        assert counts == {
            "pending": "0",
            "running": "1",
            "done": "2",
            "failed": "1",
            "cancelled": "0",
            "expired": "0",
        }
        assert "3 of 4 finished" in text_of(page)
        failed = text_of((await pages.get(location, status="failed")).text)
        assert (
            "web-2" in failed and "installer: checksum mismatch" in failed and "web-0" not in failed
        )
        listing = text_of((await pages.get("/ui/upgrades")).text)
        assert "0.4.2" in listing

    async def test_an_unknown_batch_is_a_404_page(self, pages: Pages) -> None:
        response = await pages.get("/ui/upgrades/0123456789abcdef0123456789abcdef")
        assert response.status_code == 404 and "no action batch" in text_of(response.text)
