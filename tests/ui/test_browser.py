"""The fleet pages in a real headless Chromium against a real server process on 127.0.0.1.

Flows an operator goes through: sign in (and out); watch two enrolled agents go online without
reloading; add an input and watch the applied version catch up; mint a token and see it once;
bulk-upgrade by filter with the confirmed count and the aggregate progress; a hostile hostname
shown as text with no dialog; a form without its CSRF token refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.agent_harness import AgentProcess
from tests.live_server import LiveServer, start_live_server
from tests.ui import browser
from tests.ui.seed import HttpAgent, enrol

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("browser"),  # one server and one Chromium for the module
    pytest.mark.skipif(browser.missing_reason() is not None, reason=str(browser.missing_reason())),
]

WAIT_MS = 30_000  # bounded waits for what the page shows (agents and refreshes on a busy box)
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_live_server(tmp_path_factory.mktemp("ui-server"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    with browser.launch() as launched:
        yield launched


@pytest.fixture
def page(chromium: Browser, server: LiveServer) -> Iterator[Page]:
    """A fresh browser context (own cookies), signed in through the form."""
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(WAIT_MS)
    signed = context.new_page()
    browser.sign_in(signed, server.url, server.admin_token)
    yield signed
    context.close()


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[list[AgentProcess]]:
    """Real agents (with the Vector stand-in) made by a test; stopped afterwards."""
    made: list[AgentProcess] = []
    yield made
    for host in made:
        host.close()


def group_with_demo_input(server: LiveServer, slug: str) -> dict[str, Any]:
    group: dict[str, Any] = server.data("POST", "/groups", {"name": slug, "slug": slug})
    body = {"type": "demo_logs", "name": "demo", "options": {"format": "json"}}
    server.data("POST", f"/groups/{slug}/inputs", body)
    return group


def real_agent(
    server: LiveServer, hosts: list[AgentProcess], root: Path, token: str
) -> AgentProcess:
    host = AgentProcess(root, server.url, poll_interval=0.2, heartbeat_interval=0.5)
    hosts.append(host)
    enrolled = host.enrol(token)
    assert enrolled.returncode == 0, enrolled.stderr
    return host


def agent_id(host: AgentProcess) -> str:
    identity: dict[str, str] = json.loads((host.state_dir / "identity.json").read_text())
    return identity["agentId"]


def row(page: Page, agent: str) -> Any:
    return page.locator(f'tr[data-agent="{agent}"]')


class TestSignIn:
    def test_sign_in_keeps_the_token_out_of_the_browser_and_sign_out_ends_it(
        self, chromium: Browser, server: LiveServer
    ) -> None:
        """A wrong token is refused; the right one gives an HttpOnly, Strict cookie that page
        scripts cannot read; sign-out closes the pages again."""
        from playwright.sync_api import expect

        context = chromium.new_context()
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        page.goto(f"{server.url}/ui/agents")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Admin token").fill("ADM_not_the_token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("That admin token is not valid.")
        page.get_by_label("Admin token").fill(server.admin_token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Agents", exact=True)).to_be_visible()
        (cookie,) = [c for c in context.cookies() if c["name"] == "logpulse_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert server.admin_token not in cookie["value"]
        assert "logpulse_session" not in page.evaluate("document.cookie")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.goto(f"{server.url}/ui/groups")
        expect(page.get_by_label("Admin token")).to_be_visible()
        context.close()


class TestFleet:
    def test_two_enrolled_agents_go_online_without_a_reload(
        self, page: Page, server: LiveServer, hosts: list[AgentProcess], tmp_path: Path
    ) -> None:
        """Two real agents enrol (Offline, never seen), start, and turn Online in place."""
        from playwright.sync_api import expect

        group_with_demo_input(server, "pair")
        token = server.data("POST", "/enrolment-tokens", {"group": "pair", "maxUses": 2})["token"]
        pair = [real_agent(server, hosts, tmp_path / f"h{n}", token) for n in range(2)]
        ids = [agent_id(host) for host in pair]
        page.goto(f"{server.url}/ui/agents?group=pair")
        for agent in ids:
            expect(row(page, agent).locator(".badge.status-offline")).to_have_text(
                re.compile("^Offline")
            )
        expect(row(page, ids[0]).locator(".tip")).to_contain_text("never sent a heartbeat")
        page.evaluate("window.notReloaded = true")
        for host in pair:
            host.start()
        for agent in ids:
            expect(row(page, agent).locator(".badge.status-online")).to_be_visible()
        assert page.evaluate("window.notReloaded") is True
        badge = row(page, ids[0]).locator(".badge.status-online")
        badge.focus()  # keyboard users get the tooltip too: the last-seen time
        tip = badge.locator(".tip")
        expect(tip).to_contain_text("last seen")
        box = tip.bounding_box()
        assert box is not None and box["width"] > 40  # shown, not the 1-pixel hidden state

    def test_an_added_input_raises_the_version_and_the_agent_catches_up(
        self, page: Page, server: LiveServer, hosts: list[AgentProcess], tmp_path: Path
    ) -> None:
        """Add an input on the group page; the agents table shows the agent reach it."""
        from playwright.sync_api import expect

        group_with_demo_input(server, "catchup")
        token = server.data("POST", "/enrolment-tokens", {"group": "catchup"})["token"]
        host = real_agent(server, hosts, tmp_path / "host", token)
        host.start()
        agent = agent_id(host)
        page.goto(f"{server.url}/ui/agents?group=catchup")
        expect(row(page, agent).locator(".version")).to_have_text("2 / 2")

        page.goto(f"{server.url}/ui/groups/catchup")
        page.get_by_text("Add an input").click()
        form = page.locator("form", has=page.get_by_role("button", name="Add input"))
        form.get_by_label("Type", exact=True).select_option("demo_logs")
        form.get_by_label("Name", exact=True).fill("second source")
        form.get_by_label("Options").fill("format: syslog\ninterval: 1")
        form.get_by_role("button", name="Add input").click()
        expect(page.get_by_role("status")).to_contain_text("The input was added")
        expect(page.locator("#group-version")).to_have_text("3")
        expect(page.locator("table").first).to_contain_text("second source")

        page.goto(f"{server.url}/ui/agents?group=catchup")
        expect(row(page, agent).locator(".version")).to_have_text("3 / 3")
        expect(row(page, agent).locator(".badge.behind")).to_have_count(0)
        assert host.applied_version() == 3

    def test_a_minted_token_is_shown_once_and_enrols_a_host(
        self, page: Page, server: LiveServer
    ) -> None:
        """Mint on the group page: the token and install line appear once, copy works, the
        group page never shows it again, and a host enrols with it."""
        from playwright.sync_api import expect

        group_with_demo_input(server, "mint")
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.goto(f"{server.url}/ui/groups/mint")
        page.get_by_text("Mint an enrolment token").click()
        page.get_by_label("Label").fill("rack 7")
        page.get_by_label("Maximum uses").fill("2")
        page.get_by_role("button", name="Mint token").click()
        expect(page.get_by_role("heading", name="Enrolment token for mint")).to_be_visible()
        token = page.locator("#token-value").inner_text().strip()
        assert re.fullmatch(r"EBT_[A-Za-z0-9_-]{43}", token)
        install = page.locator("#install-cmd").inner_text()
        assert f"LOGPULSE_API_URL={server.url} LOGPULSE_ENROL_TOKEN={token} sh" in install
        page.get_by_role("button", name="Copy install command").click()
        expect(page.locator(".copied")).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == install.strip()

        page.goto(f"{server.url}/ui/groups/mint")
        expect(page.locator("#tokens")).to_contain_text("rack 7")
        assert token not in page.content()
        agent = enrol(server.url, token, "minted-host")
        assert server.data("GET", f"/agents/{agent.id}")["groupSlug"] == "mint"

    def test_bulk_upgrade_by_filter_confirms_the_count_and_adds_up_results(
        self, page: Page, server: LiveServer
    ) -> None:
        """Filter group=bulk, "upgrade all matching": the server counts 3, the confirm button
        says 3, and the progress page follows the agents' results without a reload."""
        from playwright.sync_api import expect

        for slug in ("bulk", "bystander"):
            group_with_demo_input(server, slug)
        tokens = {
            slug: server.data("POST", "/enrolment-tokens", {"group": slug})["token"]
            for slug in ("bulk", "bystander")
        }
        fleet = [enrol(server.url, tokens["bulk"], f"bulk-{n}") for n in range(3)]
        other = enrol(server.url, tokens["bystander"], "bystander-1")
        for agent in [*fleet, other]:
            agent.beat()

        page.goto(f"{server.url}/ui/agents")
        page.get_by_label("Group").select_option("bulk")
        page.get_by_role("button", name="Apply filters").click()
        expect(page.locator("#match-count")).to_have_text("3")
        page.get_by_role("button", name="Upgrade all agents matching the filters…").click()
        expect(page.locator("#resolved-count")).to_have_text("3")
        page.get_by_label("Target version").fill("0.4.2")
        page.get_by_role("button", name="Queue 3 upgrade actions").click()
        expect(page.locator("#count-pending")).to_have_text("3")

        outcomes = {0: "done", 1: "done", 2: "failed"}
        for n, agent in enumerate(fleet):
            report(agent, outcomes[n])
        expect(page.locator("#count-done")).to_have_text("2")
        expect(page.locator("#count-failed")).to_have_text("1")
        expect(page.locator("#progress-text")).to_contain_text("3 of 3 finished")
        assert server.data("GET", "/actions", agentId=other.id) == []

    def test_a_hostile_hostname_is_text_and_no_dialog_fires(
        self, page: Page, server: LiveServer
    ) -> None:
        """``<img src=x onerror=alert(1)>`` shows literally in the table (also after a live
        refresh) and on the agent's page; no element is made of it, no alert opens."""
        from playwright.sync_api import expect

        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        group_with_demo_input(server, "hostile")
        token = server.data("POST", "/enrolment-tokens", {"group": "hostile"})["token"]
        agent = enrol(server.url, token, HOSTILE, vectorVersion="<svg onload=alert(2)>")
        error = {"configVersion": 2, "message": "<img src=y onerror=alert(3)>", "at": None}
        agent.beat(configError={**error, "at": "2025-01-01T00:00:00Z"})

        page.goto(f"{server.url}/ui/agents?group=hostile")
        link = row(page, agent.id).locator("th.host a")
        expect(link).to_have_text(HOSTILE)
        first = page.locator(".updated").inner_text()
        expect(page.locator(".updated")).not_to_have_text(first)  # a live refresh happened
        expect(row(page, agent.id).locator("th.host a")).to_have_text(HOSTILE)
        assert page.locator("main img, main svg").count() == 0
        link.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE)
        expect(page.locator("pre.config-error")).to_have_text("<img src=y onerror=alert(3)>")
        assert page.locator("main img, main svg").count() == 0
        assert dialogs == []

    def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
        self, page: Page, server: LiveServer
    ) -> None:
        """With the hidden field removed from the add-input form, the post gets 403."""
        from playwright.sync_api import expect

        group_with_demo_input(server, "guarded")
        page.goto(f"{server.url}/ui/groups/guarded")
        page.get_by_text("Add an input").click()
        form = page.locator("form", has=page.get_by_role("button", name="Add input"))
        form.locator('input[name="csrf"]').evaluate("field => field.remove()")
        form.get_by_label("Type", exact=True).select_option("demo_logs")
        form.get_by_label("Name", exact=True).fill("sneaky")
        form.get_by_label("Options").fill("format: json")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            form.get_by_role("button", name="Add input").click()
        assert answer.value.status == 403
        expect(page.get_by_role("alert")).to_contain_text("missing its security token")
        assert len(server.data("GET", "/groups/guarded/inputs")) == 1
        assert server.data("GET", "/groups/guarded")["configVersion"] == 2


def report(agent: HttpAgent, status: str) -> None:
    """The agent picks up its pending upgrade and reports ``status`` for it."""
    (action,) = agent.beat()["pendingActions"]
    result = (
        {"fromVersion": "0.4.1", "toVersion": "0.4.2"}
        if status == "done"
        else {"error": "installer: checksum mismatch", "fromVersion": "0.4.1"}
    )
    agent.beat(actionResults=[{"actionId": action["id"], "status": status, "result": result}])
