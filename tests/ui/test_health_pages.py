"""Health and data plane on the pages (SPEC §11.1/§11.2): the state with its reason, the
health filter, events per second, the agent's health history and busiest components."""

from __future__ import annotations

import re

import pytest

from tests.server.harness import Agent, FakeClock, Fleet
from tests.ui.pages import Pages, text_of

pytestmark = pytest.mark.anyio

SINCE = "2025-06-15T14:00:00Z"


def health(state: str, reason: str | None = None) -> dict[str, object]:
    return {"state": state, "reason": reason, "since": SINCE}


def plane(events_out: int, window: int = 30, component: str = "out_3f2a") -> dict[str, object]:
    return {
        "windowSeconds": window,
        "eventsIn": events_out,
        "eventsOut": events_out,
        "errors": 41,
        "discarded": 0,
        "components": [
            {
                "id": component,
                "kind": "sink",
                "type": "splunk_hec_logs",
                "eventsIn": events_out,
                "eventsOut": events_out,
                "errors": 41,
                "discarded": 0,
            }
        ],
    }


def hosts_in(page: str) -> list[str]:
    cells = re.findall(r'<th scope="row" class="host">(.*?)</th>', page, re.S)
    return [text_of(cell) for cell in cells]


async def three(fleet: Fleet) -> tuple[Agent, Agent, Agent]:
    group = await fleet.group("web")
    ok, bad, silent = [await fleet.enrol(group["id"], hostname=h) for h in ("ok", "bad", "old")]
    await fleet.heartbeat(ok, health=health("healthy"), dataPlane=plane(900))
    reason = "sink out_3f2a: 41 request errors in 30 s (HTTP 403)"
    await fleet.heartbeat(bad, health=health("degraded", reason), dataPlane=plane(0))
    await fleet.heartbeat(silent)  # an agent from before SPEC §11.1
    return ok, bad, silent


async def test_the_table_shows_health_with_its_reason_and_events_per_second(
    pages: Pages, fleet: Fleet
) -> None:
    await three(fleet)
    page = (await pages.get("/ui/agents")).text
    text = text_of(page)
    assert "Degraded sink out_3f2a: 41 request errors in 30 s (HTTP 403)" in text
    assert "Healthy" in text
    assert '<td class="num">30</td>' in page  # 900 events sent in a 30 s window


async def test_the_health_filter_narrows_the_rows_and_a_bulk_selection(
    pages: Pages, fleet: Fleet
) -> None:
    ok, _, _ = await three(fleet)
    assert hosts_in((await pages.get("/ui/agents", health="degraded")).text) == ["bad"]
    # An agent from before SPEC §11.1 is judged by its older fields (Vector runs: healthy);
    # "unknown" is an agent never heard from.
    await fleet.enrol(ok.group_id, hostname="new")
    assert hosts_in((await pages.get("/ui/agents", health="unknown")).text) == ["new"]
    assert hosts_in((await pages.get("/ui/agents", health="healthy")).text) == ["ok", "old"]
    review = await pages.post("/ui/upgrade/review", {"mode": "filter", "health": "healthy"})
    assert "Upgrade 2 agents" in text_of(review.text)
    refused = await pages.get("/ui/agents", health="sick")
    assert refused.status_code == 400 and "health must be one of" in text_of(refused.text)


async def test_the_agent_page_has_the_health_history_and_components(
    pages: Pages, fleet: Fleet, clock: FakeClock
) -> None:
    _, bad, _ = await three(fleet)
    clock.advance(30)
    await fleet.heartbeat(bad, health=health("healthy"), dataPlane=plane(300))
    text = text_of((await pages.get(f"/ui/agents/{bad.id}")).text)
    history = text.split("Health history", 1)[1].split("Data plane", 1)[0]
    assert history.index("Healthy") < history.index("Degraded")  # newest first
    assert "41 request errors" in history
    assert "out_3f2a sink splunk_hec_logs 300 300 41 0" in text
    assert "30 s: 300 in, 300 out, 41 errors, 0 discarded" in text


async def test_what_an_agent_reports_about_its_health_is_escaped(
    pages: Pages, fleet: Fleet
) -> None:
    group = await fleet.group("web")
    agent = await fleet.enrol(group["id"])
    await fleet.heartbeat(
        agent,
        health=health("failed", "<img src=x onerror=alert(1)>"),
        dataPlane=plane(1, component="<script>alert(2)</script>"),
    )
    for path in ("/ui/agents", f"/ui/agents/{agent.id}"):
        page = (await pages.get(path)).text
        assert "<img src=x" not in page and "<script>alert" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
