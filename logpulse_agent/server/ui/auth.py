"""Who may see the fleet pages: sign-in with the admin token, sessions, CSRF, sign-out.

Every page handler is wrapped by :func:`signed_in`. A GET without a live session is sent to
the sign-in form (and back afterwards). A POST must come from a live session, from this site
(``Origin``), and carry the session's CSRF token in its hidden ``csrf`` field; otherwise it is
refused (401 or 403) before the handler runs, so nothing changes. An :class:`ApiError` raised by
a domain function becomes an error page with the same status and message the admin API gives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import quote

import structlog
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logpulse_agent.server.context import ServerContext, context
from logpulse_agent.server.errors import ApiError
from logpulse_agent.server.tokens import AGENT_PREFIX, ENROLMENT_PREFIX, matches
from logpulse_agent.server.ui.forms import Form, read_form, same_origin
from logpulse_agent.server.ui.sessions import (
    COOKIE_PATH,
    PRESESSION_COOKIE,
    PRESESSION_MAX_AGE,
    SESSION_COOKIE,
    Session,
    SessionStore,
    same_secret,
)
from logpulse_agent.server.ui.templating import now_utc, redirect, render

log = structlog.get_logger("logpulse.server.ui")

HOME = "/ui/agents"
SIGN_IN = "/ui/signin"


@dataclass
class UiState:
    """What the fleet pages keep beside the server context (``app.state.ui``)."""

    sessions: SessionStore
    form_limit: int  # bytes of one form post


@dataclass
class UiRequest:
    """A request from a signed-in browser; ``form`` is empty for a GET."""

    request: Request
    ctx: ServerContext
    session: Session
    form: Form

    @property
    def now(self) -> float:
        return self.ctx.clock()

    def page(self, template: str, status: int = 200, **values: Any) -> Response:
        """``template`` with what every signed-in page needs (CSRF token, current time)."""
        return render(
            template,
            status,
            csrf=self.session.csrf,
            now=now_utc(self.now),
            path=self.request.url.path,
            **values,
        )


UiHandler = Callable[[UiRequest], Awaitable[Response]]


def ui_state(request: Request) -> UiState:
    state = request.app.state.ui
    assert isinstance(state, UiState)
    return state


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path of the fleet pages, never another site."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def error_page(status: int, message: str, session: Session | None = None) -> Response:
    csrf = session.csrf if session is not None else None
    return render("error.html", status, message=message, csrf=csrf)


def _set_cookie(response: Response, request: Request, name: str, value: str, **kw: int) -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        **kw,  # type: ignore[arg-type]
    )


def signed_in(handler: UiHandler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler(ui)`` with the session, origin and CSRF checks of the module docstring."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        state = ui_state(request)
        session = state.sessions.get(request.cookies.get(SESSION_COOKIE))
        form: Form = ImmutableMultiDict()
        if request.method in ("GET", "HEAD"):
            if session is None:
                if request.query_params.get("fragment"):
                    return error_page(401, "Your session has ended; sign in again.")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect(f"{SIGN_IN}?next={quote(target, safe='')}")
        else:
            if not same_origin(request):
                return error_page(403, "This form was sent from another site; nothing changed.")
            if session is None:
                return error_page(401, "Your session has ended; sign in again. Nothing changed.")
            try:
                form = await read_form(request, state.form_limit)
            except ApiError as exc:
                return error_page(exc.status, exc.message, session)
            if not same_secret(session.csrf, form.get("csrf")):
                return error_page(
                    403,
                    "This form is missing its security token or the token is stale (open the"
                    " page again and retry); nothing changed.",
                    session,
                )
        ui = UiRequest(request, context(request), session, form)
        try:
            return await handler(ui)
        except ApiError as exc:
            return error_page(exc.status, exc.message, session)
        except Exception:
            log.exception("ui.page_crashed", path=request.url.path, method=request.method)
            return error_page(500, "Internal error: the server log has the details.", session)

    return endpoint


async def signin_form(request: Request) -> Response:
    state = ui_state(request)
    target = safe_next(request.query_params.get("next"))
    if state.sessions.get(request.cookies.get(SESSION_COOKIE)) is not None:
        return redirect(target)
    return _signin_page(request, state, target)


def _signin_page(
    request: Request, state: UiState, target: str, status: int = 200, message: str | None = None
) -> Response:
    presession = request.cookies.get(PRESESSION_COOKIE) or ""
    if not 32 <= len(presession) <= 64:
        presession = state.sessions.new_presession()
    response = render(
        "signin.html",
        status,
        signin_csrf=state.sessions.presession_csrf(presession),
        next=target,
        message=message,
    )
    _set_cookie(response, request, PRESESSION_COOKIE, presession, max_age=PRESESSION_MAX_AGE)
    return response


async def signin(request: Request) -> Response:
    """Check the admin token; on success a new session and a redirect to ``next``."""
    state = ui_state(request)
    ctx = context(request)
    if not same_origin(request):
        return error_page(403, "This form was sent from another site; nothing changed.")
    try:
        form = await read_form(request, state.form_limit)
    except ApiError as exc:
        return error_page(exc.status, exc.message)
    target = safe_next(form.get("next"))
    presession = request.cookies.get(PRESESSION_COOKIE)
    if not presession or not same_secret(
        state.sessions.presession_csrf(presession), form.get("csrf")
    ):
        message = "The sign-in form had expired or lost its security token; try again."
        return _signin_page(request, state, target, 403, message)
    token = form.get("token", "").strip()
    if not token or not matches(token, ctx.admin_token_hash):
        message = "That admin token is not valid."
        if token.startswith((AGENT_PREFIX, ENROLMENT_PREFIX)):
            message = "That is an agent or enrolment token; sign in with the admin token."
        return _signin_page(request, state, target, 401, message)
    state.sessions.drop(request.cookies.get(SESSION_COOKIE))
    session_id, _ = state.sessions.create()
    response = redirect(target)
    _set_cookie(response, request, SESSION_COOKIE, session_id)
    response.delete_cookie(PRESESSION_COOKIE, path=COOKIE_PATH)
    return response


@signed_in
async def signout(ui: UiRequest) -> Response:
    ui_state(ui.request).sessions.drop(ui.request.cookies.get(SESSION_COOKIE))
    response = redirect(SIGN_IN)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


routes = [
    Route("/signin", signin_form, methods=["GET"]),
    Route("/signin", signin, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
]
