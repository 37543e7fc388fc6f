"""Rollouts (SPEC §11.3) and version diffs on the pages: phase progress and counts, pause /
resume / abort through the same command the admin API runs, audited as the fleet pages."""

from __future__ import annotations

import re

import pytest

from tests.server.harness import DEMO, Fleet
from tests.ui.pages import Pages, text_of

pytestmark = pytest.mark.anyio

STAGED = {"strategy": "staged", "phases": [1, "100%"], "soakSeconds": 60, "maxFailures": 0}


async def staged_change(fleet: Fleet) -> str:
    """Group web (staged, two agents) whose input change started a rollout; its id."""
    group = await fleet.group("web", DEMO)
    for n in range(2):
        await fleet.enrol(group["id"], hostname=f"web-{n}")
    await fleet.data("PATCH", "/groups/web", {"rollout": STAGED})
    await fleet.data("POST", "/groups/web/inputs", {**DEMO, "name": "second"})
    rollout: str = (await fleet.data("GET", "/groups/web/rollout"))["id"]
    return rollout


async def test_the_rollout_shows_its_phases_and_counts(pages: Pages, fleet: Fleet) -> None:
    rollout = await staged_change(fleet)
    listing = text_of((await pages.get("/ui/rollouts")).text)
    assert "web: version 2 → 3" in listing and "Running" in listing
    page = (await pages.get(f"/ui/rollouts/{rollout}")).text
    text = text_of(page)
    assert "phase 1 of 2" in text
    assert re.search(r'id="rollout-admitted">1<', page)
    assert re.search(r'id="rollout-waiting">1<', page)
    assert "Pause rollout" in text and "Abort and roll back" in text
    group = text_of((await pages.get("/ui/groups/web")).text)
    assert "phases 1, 100%, soak 60 s, at most 0 failures" in group
    assert "web: version 2 → 3" in group


async def test_pause_resume_and_abort_are_audited_as_the_fleet_pages(
    pages: Pages, fleet: Fleet
) -> None:
    rollout = await staged_change(fleet)
    paused = await pages.post(f"/ui/rollouts/{rollout}/pause", {"reason": "lunch"})
    assert paused.headers["location"] == f"/ui/rollouts/{rollout}?done=pause"
    assert (await fleet.data("GET", "/groups/web/rollout"))["state"] == "paused"
    await pages.post(f"/ui/rollouts/{rollout}/resume")
    assert (await fleet.data("GET", "/groups/web/rollout"))["state"] == "running"
    confirm = text_of((await pages.get(f"/ui/rollouts/{rollout}/abort")).text)
    assert "Abort the rollout of version 3 of group web?" in confirm
    assert (await fleet.data("GET", "/groups/web/rollout"))["state"] == "running"
    await pages.post(f"/ui/rollouts/{rollout}/abort")
    state = await fleet.data("GET", "/groups/web/rollout")
    assert state["state"] == "aborted"
    actors = {e["kind"]: e["actor"] for e in state["events"]}
    assert actors["paused"] == actors["resumed"] == actors["aborted"] == "ui:fleet-pages"
    page = text_of((await pages.get(f"/ui/rollouts/{rollout}")).text)
    assert "Aborted" in page and state["reason"] in page
    refused = await pages.post(f"/ui/rollouts/{rollout}/pause")
    assert refused.status_code == 409 and "cannot pause" in text_of(refused.text)
    unknown = await pages.post(f"/ui/rollouts/{rollout}/explode")
    assert unknown.status_code == 404


async def test_the_diff_between_two_versions_shows_what_changed(pages: Pages, fleet: Fleet) -> None:
    group = await fleet.group("web", DEMO)  # version 2
    (item,) = await fleet.data("GET", f"/groups/{group['id']}/inputs")
    await fleet.data("PATCH", f"/inputs/{item['id']}", {"options": {"format": "syslog"}})
    page = (await pages.get("/ui/groups/web/diff")).text
    text = text_of(page)
    assert "version 2 → 3" in text and "1 line added, 1 removed" in text
    assert re.search(r'<span class="diff-remove">-\s+format: json</span>', page)
    assert re.search(r'<span class="diff-add">\+\s+format: syslog</span>', page)
    same = text_of((await pages.get("/ui/groups/web/diff", **{"from": "3", "to": "3"})).text)
    assert "byte for byte the same" in same
    missing = await pages.get("/ui/groups/web/diff", to="99")
    assert missing.status_code == 404 and "version 99 is not kept" in text_of(missing.text)
    assert "What changed from version 2 to 3" in text_of((await pages.get("/ui/groups/web")).text)
