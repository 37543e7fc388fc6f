"""Accessible basics of every page, checked in the HTML: one h1 and a main landmark, a label
for every form control, a caption and column headers for every table, a language, and badges
that carry a word (readable without colour)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.server.harness import DEMO, Fleet
from tests.ui.pages import Pages

pytestmark = pytest.mark.anyio


class Structure(HTMLParser):
    """What the checks need from one page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.tables = 0
        self.captions = 0
        self.header_cells = 0
        self.h1 = 0
        self.main = 0
        self.lang: str | None = None
        self.badges: list[str] = []
        self._badge_depth = 0
        self._badge_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a)
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"] or "")
        self.tables += tag == "table"
        self.captions += tag == "caption"
        self.header_cells += tag == "th"
        self.h1 += tag == "h1"
        self.main += tag == "main"
        if tag == "span" and "badge" in (a.get("class") or "").split():
            self._badge_depth, self._badge_text = 1, ""
        elif self._badge_depth and tag == "span":
            self._badge_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self._badge_depth and tag == "span":
            self._badge_depth -= 1
            if not self._badge_depth:
                self.badges.append(self._badge_text.strip())

    def handle_data(self, data: str) -> None:
        if self._badge_depth == 1:  # the badge's own word, not its tooltip
            self._badge_text += data


async def every_page(pages: Pages, fleet: Fleet) -> dict[str, str]:
    """One of each page, with a fleet behind it so tables and badges are filled."""
    group = await fleet.group("web", DEMO)
    agent = await fleet.enrol(group["id"], hostname="web-1")
    await fleet.heartbeat(agent)
    await fleet.enrol(group["id"], hostname="web-2")
    (item,) = await fleet.data("GET", f"/groups/{group['id']}/inputs")
    found = {
        path: (await pages.get(path)).text
        for path in (
            "/ui/agents",
            f"/ui/agents/{agent.id}",
            f"/ui/agents/{agent.id}/revoke",
            "/ui/groups",
            "/ui/groups/web",
            f"/ui/inputs/{item['id']}",
            "/ui/upgrades",
        )
    }
    found["token"] = (await pages.post("/ui/groups/web/tokens", {"maxUses": "1"})).text
    review = (await pages.post("/ui/upgrade/review", {"mode": "filter"})).text
    found["review"] = review
    fields = [("mode", "filter"), ("targetVersion", "0.4.2")]
    fields.append(("digest", re.findall(r'name="digest" value="(\w+)"', review)[0]))
    location = (await pages.post("/ui/upgrade", fields)).headers["location"]
    found["progress"] = (await pages.get(location)).text
    found["error"] = (await pages.get("/ui/agents/nope")).text
    return found


async def test_every_page_has_the_accessible_basics(pages: Pages, fleet: Fleet) -> None:
    found = await every_page(pages, fleet)
    pages.client.cookies.clear()  # signed out: the sign-in form
    found["signin"] = (await pages.client.get("/ui/signin")).text
    for path, html in found.items():
        page = Structure()
        page.feed(html)
        assert page.lang == "en", path
        assert (page.h1, page.main) == (1, 1), path
        for control in page.controls:
            labelled = control.get("id") in page.label_for or control.get("aria-label")
            assert labelled, (path, control)
        assert page.captions == page.tables, path
        if page.tables:
            assert page.header_cells, path
        assert all(page.badges), (path, page.badges)


async def test_badges_say_their_state_in_words(pages: Pages, fleet: Fleet) -> None:
    """Online, Offline, behind, Enabled…: the word is there, colour only repeats it."""
    found = await every_page(pages, fleet)
    words: set[str] = set()
    for html in found.values():
        page = Structure()
        page.feed(html)
        words.update(page.badges)
    assert {"Online", "Offline", "Enabled", "Active", "Pending"} <= words
