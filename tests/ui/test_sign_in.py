"""Signing in to the fleet pages: the admin token once, then only a random session cookie;
sessions end on sign-out and when idle or old; nothing is shown to a browser without one."""

from __future__ import annotations

import httpx
import pytest

from logpulse_agent.server.ui.sessions import DEFAULT_ABSOLUTE, DEFAULT_IDLE, SESSION_COOKIE
from tests.server.harness import ADMIN_TOKEN, FakeClock, Fleet
from tests.ui.pages import Pages, csrf_of, text_of

pytestmark = pytest.mark.anyio


def session_cookie_header(response: httpx.Response) -> str:
    (header,) = [
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")
    ]
    return header


class TestSignIn:
    async def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(
        self, http: httpx.AsyncClient
    ) -> None:
        """GET /ui/agents?status=online without a session → 303 to the form, ``next`` kept."""
        response = await http.get("/ui/agents", params={"status": "online"})
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/signin?next=%2Fui%2Fagents%3Fstatus%3Donline"
        form = await http.get(response.headers["location"])
        assert form.status_code == 200
        assert 'type="password"' in form.text and 'value="/ui/agents?status=online"' in form.text

    async def test_the_right_token_gives_a_random_httponly_strict_cookie_never_the_token(
        self, http: httpx.AsyncClient
    ) -> None:
        """The cookie is a fresh random id (HttpOnly, SameSite=Strict, Path=/ui), not the token."""
        pages = Pages(http)
        response = await pages.sign_in()
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/agents"
        header = session_cookie_header(response)
        attributes = {part.strip().lower() for part in header.split(";")[1:]}
        assert {"httponly", "path=/ui", "samesite=strict"} <= attributes
        value = header.split(";")[0].split("=", 1)[1]
        assert len(value) >= 40 and ADMIN_TOKEN not in header and value not in ADMIN_TOKEN
        page = await http.get("/ui/agents")
        assert page.status_code == 200 and "<h1>Agents</h1>" in page.text
        assert ADMIN_TOKEN not in page.text

    async def test_a_wrong_token_is_refused_with_a_message_and_no_session(
        self, http: httpx.AsyncClient
    ) -> None:
        """401, the form again with "not valid", no session cookie; pages stay closed."""
        response = await Pages(http).sign_in("ADM_wrong")
        assert response.status_code == 401
        assert "That admin token is not valid." in response.text
        assert not any(
            h.startswith(SESSION_COOKIE) for h in response.headers.get_list("set-cookie")
        )
        assert (await http.get("/ui/agents")).status_code == 303

    async def test_an_agent_token_is_refused_with_a_message_naming_it(
        self, http: httpx.AsyncClient, fleet: Fleet
    ) -> None:
        """An AGT_ token is not an admin token; the message says what it is, never echoes it."""
        group = await fleet.group("web")
        agent = await fleet.enrol(group["id"])
        response = await Pages(http).sign_in(agent.token)
        assert response.status_code == 401
        assert "agent or enrolment token" in response.text
        assert agent.token not in response.text

    async def test_a_sign_in_without_the_forms_csrf_token_is_refused(
        self, http: httpx.AsyncClient
    ) -> None:
        """A sign-in post lacking the pre-session CSRF value (login CSRF) gets 403, no session."""
        await http.get("/ui/signin")
        response = await http.post("/ui/signin", data={"token": ADMIN_TOKEN, "csrf": "forged"})
        assert response.status_code == 403
        assert (await http.get("/ui/agents")).status_code == 303

    @pytest.mark.parametrize(
        "target", ["https://evil.example/", "//evil.example/x", "/api/v1/admin/groups", "/ui\\x"]
    )
    async def test_next_only_ever_leads_to_a_fleet_page(
        self, http: httpx.AsyncClient, target: str
    ) -> None:
        """An off-site or non-UI ``next`` is replaced by the agents page (no open redirect)."""
        form = await http.get("/ui/signin", params={"next": target})
        response = await http.post(
            "/ui/signin", data={"csrf": csrf_of(form.text), "token": ADMIN_TOKEN, "next": target}
        )
        assert response.headers["location"] == "/ui/agents"

    async def test_a_planted_session_cookie_is_never_promoted(
        self, http: httpx.AsyncClient
    ) -> None:
        """Signing in with a cookie someone planted yields a new id; the planted one stays
        worthless (no session fixation)."""
        planted = "planted-by-someone-else-0123456789abcdefghijklmnop"
        http.cookies.set(SESSION_COOKIE, planted, path="/ui")
        header = session_cookie_header(await Pages(http).sign_in())
        assert header.split(";")[0] != f"{SESSION_COOKIE}={planted}"
        http.cookies.clear()
        http.cookies.set(SESSION_COOKIE, planted, path="/ui")
        assert (await http.get("/ui/agents")).status_code == 303


class TestSessionEnd:
    async def test_sign_out_ends_the_session_on_the_server(
        self, pages: Pages, http: httpx.AsyncClient
    ) -> None:
        """After sign-out the old cookie opens nothing, even if the browser kept it."""
        old = http.cookies.get(SESSION_COOKIE)
        response = await pages.post("/ui/signout")
        assert response.status_code == 303 and response.headers["location"] == "/ui/signin"
        http.cookies.set(SESSION_COOKIE, old or "", path="/ui")
        assert (await http.get("/ui/agents")).status_code == 303

    async def test_an_idle_session_ends(self, pages: Pages, clock: FakeClock) -> None:
        """No request for longer than the idle limit: the next page asks to sign in again."""
        clock.advance(DEFAULT_IDLE - 1)
        assert (await pages.get("/ui/agents")).status_code == 200
        clock.advance(DEFAULT_IDLE - 1)  # idle time counts from the last request
        assert (await pages.get("/ui/agents")).status_code == 200
        clock.advance(DEFAULT_IDLE + 1)
        assert (await pages.get("/ui/agents")).status_code == 303

    async def test_a_busy_session_still_ends_after_the_absolute_limit(
        self, pages: Pages, clock: FakeClock
    ) -> None:
        """Requests every few minutes do not keep a session alive past its absolute limit."""
        elapsed = 0.0
        while elapsed + DEFAULT_IDLE / 2 < DEFAULT_ABSOLUTE:
            clock.advance(DEFAULT_IDLE / 2)
            elapsed += DEFAULT_IDLE / 2
            assert (await pages.get("/ui/agents")).status_code == 200
        clock.advance(DEFAULT_ABSOLUTE - elapsed + 1)
        assert (await pages.get("/ui/agents")).status_code == 303

    async def test_a_post_from_an_ended_session_is_refused_and_changes_nothing(
        self, pages: Pages, clock: FakeClock, fleet: Fleet
    ) -> None:
        """401 with a sign-in hint; the group is not created."""
        clock.advance(DEFAULT_IDLE + 1)
        response = await pages.post("/ui/groups", {"name": "late"})
        assert response.status_code == 401
        assert "sign in again" in text_of(response.text)
        assert await fleet.data("GET", "/groups") == []

    async def test_the_live_table_answers_401_once_the_session_ended(
        self, pages: Pages, clock: FakeClock
    ) -> None:
        """The refresh request gets 401 (the script then says so) instead of a sign-in page."""
        clock.advance(DEFAULT_IDLE + 1)
        response = await pages.get("/ui/agents", fragment="1")
        assert response.status_code == 401
