"""HTML out: the Jinja2 environment, its filters, and the headers every page carries.

Autoescaping is on for every template, so whatever an agent reported (hostname, versions,
config errors, action results) is text in the page, never markup. Pages also carry a strict
Content-Security-Policy (scripts and styles only from this server, no inline script, no
framing) as a second line of defence, and ``Cache-Control: no-store``: a page may show a freshly
minted enrolment token that must not linger in a cache.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse, RedirectResponse, Response

from logpulse_agent.server.admin_client import ago

DASH = "—"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def dash(value: Any) -> Any:
    """``—`` for a value that is absent (``None`` or empty), else the value."""
    return DASH if value is None or value == "" else value


def when(stamp: str | None) -> str:
    """An RFC 3339 time as ``2025-01-31 12:00:00 UTC``; ``—`` when absent."""
    if not stamp:
        return DASH
    return stamp.replace("T", " ").replace("Z", " UTC")


def since(stamp: str | None, now: datetime) -> str:
    """How long ago: ``42s ago``, ``5m ago`` … or ``never``."""
    return ago(stamp, now)


def number(value: Any) -> str:
    """``12,345`` for integers, one decimal for fractions, ``—`` when absent."""
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("logpulse_agent.server.ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(dash=dash, when=when, number=number)
    env.globals.update(since=since)
    return env


TEMPLATES = _environment()


def now_utc(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, tz=timezone.utc)


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` as a page with the security headers."""
    html = TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)


def redirect(url: str) -> Response:
    """303 See Other: after a form post the browser follows with a GET (no re-post on reload)."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
