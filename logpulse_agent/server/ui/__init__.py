"""The fleet pages of the reference server, under ``/ui/`` (SPEC §11.5).

Server-rendered HTML (Starlette + Jinja2, autoescaped), a little plain JavaScript served from
``/ui/static`` for self-refreshing tables and copy buttons, no build step and nothing from a
CDN. Signed in with the admin token (:mod:`.auth`, :mod:`.sessions`); every page reads and
changes the fleet through the same domain functions as the admin API.

    auth           sign-in / sign-out, the session + origin + CSRF checks of every page
    agents_pages   the agents table (filters, pagination, refresh) and an agent's page
    groups_pages   groups, a group's inputs, YAML preview and tokens
    inputs_pages   add / edit / enable / disable / delete an input
    tokens_pages   mint (shown once, with the install one-liner) and revoke tokens
    rollouts_pages staged rollouts: phases, counts, pause / resume / abort; version diffs
    upgrades_pages bulk upgrade: review the resolved count, confirm, aggregate progress
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from logpulse_agent.server.ui import (
    agents_pages,
    auth,
    groups_pages,
    inputs_pages,
    rollouts_pages,
    tokens_pages,
    upgrades_pages,
)
from logpulse_agent.server.ui.auth import HOME, UiState, error_page, ui_state
from logpulse_agent.server.ui.sessions import SESSION_COOKIE, SessionStore
from logpulse_agent.server.ui.templating import redirect

__all__ = ["UiState", "mount", "state"]

STATIC = Path(__file__).parent / "static"


async def home(request: Request) -> Response:
    return redirect(HOME)


async def not_found(request: Request) -> Response:
    session = ui_state(request).sessions.get(request.cookies.get(SESSION_COOKIE))
    return error_page(404, f"There is no page at {request.url.path}.", session)


def state(*, clock: Callable[[], float], form_limit: int) -> UiState:
    """The pages' own state for one app: an in-memory session store on the app's clock."""
    return UiState(sessions=SessionStore(clock=clock), form_limit=form_limit)


def mount() -> Mount:
    """Every page, the static files and an HTML 404, mounted at ``/ui``."""
    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        *auth.routes,
        *agents_pages.routes,
        *groups_pages.routes,
        *inputs_pages.routes,
        *tokens_pages.routes,
        *rollouts_pages.routes,
        *upgrades_pages.routes,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/{rest:path}", not_found),
    ]
    return Mount("/ui", routes=routes)
