"""The admin bearer token: where it comes from, and the check every admin route makes.

The token is ``LOGPULSE_ADMIN_TOKEN`` when set (any string the operator chooses), else one
generated at the first start and stored as its SHA-256 in ``server_settings``; ``serve`` prints
a generated token once, on stderr. Agent (``AGT_``) and bootstrap (``EBT_``) tokens are refused
with 403, anything else that does not match with 401.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response

from logpulse_agent.server import audit
from logpulse_agent.server.context import ServerContext, context
from logpulse_agent.server.errors import Forbidden, Unauthenticated
from logpulse_agent.server.http import bearer_token
from logpulse_agent.server.store import Store
from logpulse_agent.server.tokens import (
    ADMIN_PREFIX,
    AGENT_PREFIX,
    ENROLMENT_PREFIX,
    matches,
    mint,
    token_hash,
)

SETTING_KEY = "admin_token_sha256"

AdminHandler = Callable[[Request, ServerContext], Awaitable[Response]]


def setup_admin_token(store: Store, given: str | None) -> tuple[str, str | None]:
    """``(hash to check against, newly generated token or None)``.

    A ``given`` token wins and is not stored; otherwise the stored hash is used, and on the
    very first start a token is generated, its hash stored, and the token returned to be shown.
    """
    if given:
        return token_hash(given), None
    stored = store.get_setting(SETTING_KEY)
    if stored:
        return stored, None
    token = mint(ADMIN_PREFIX)
    store.set_setting(SETTING_KEY, token_hash(token))
    return token_hash(token), token


def require_admin(ctx: ServerContext, request: Request) -> None:
    token = bearer_token(request)
    if token is None:
        raise Unauthenticated("missing admin token; send Authorization: Bearer <admin token>")
    if matches(token, ctx.admin_token_hash):
        return
    if token.startswith((AGENT_PREFIX, ENROLMENT_PREFIX)):
        raise Forbidden("agent and enrolment tokens are not valid on the admin API")
    raise Unauthenticated("admin token is not valid")


def admin(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler(request, ctx)`` as an endpoint that first checks the admin token; the
    caller's ``X-LogPulse-Actor`` is the actor of what it does (:mod:`.audit`)."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        ctx = context(request)
        require_admin(ctx, request)
        with audit.acting(audit.request_actor(request)):
            return await handler(request, ctx)

    return endpoint
