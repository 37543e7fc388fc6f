"""The admin API seen from the ``logpulse-server`` admin commands: requests, errors, tables.

Every failure becomes a :class:`click.ClickException` with one line — the server's own error
message and status, or why the server could not be reached — so commands exit 1 with it.
Each admin command (:func:`admin_command`) takes ``--url`` (``LOGPULSE_SERVER_URL``),
``--admin-token`` (``LOGPULSE_ADMIN_TOKEN``) and ``--json`` (print the API's data instead of
the readable form).

Agents supply some of what is printed (hostnames, versions, error messages), so the readable
form passes every value through :func:`printable`: an enrolled host cannot write escape
sequences to the operator's terminal. ``--json`` output is ASCII-escaped JSON already.
"""

from __future__ import annotations

import functools
import getpass
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import click
import httpx

from logpulse_agent import __version__
from logpulse_agent.redact import redact

DEFAULT_URL = "http://127.0.0.1:8080"
ADMIN_PREFIX = "/api/v1/admin"
_DURATION_RE = re.compile(r"([0-9]+)\s*([smhd]?)")  # fullmatch; int() reads any Unicode digit
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# C0 (with ESC, so no escape sequence survives), DEL, C1, line/paragraph separators and the
# bidirectional overrides/isolates that can make a line read differently from its bytes.
_UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(value: Any) -> str:
    """``str(value)`` safe for a terminal: unsafe characters shown as ``\\xNN``/``\\uNNNN``."""
    return _UNSAFE_RE.sub(_escape, str(value))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class AdminClient:
    """A synchronous client of one server's admin API."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        event_hooks: dict[str, list[Callable[[Any], Any]]] | None = None,
    ) -> None:
        if not token:
            raise click.ClickException(
                "no admin token: pass --admin-token or set LOGPULSE_ADMIN_TOKEN"
            )
        self.url = url.rstrip("/")
        headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"logpulse-server-cli/{__version__}",
            # Who acted, for the rollout audit trail (the admin token is shared).
            "X-LogPulse-Actor": cli_actor(),
        }
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, event_hooks=event_hooks
        )

    def close(self) -> None:
        self._http.close()

    def raw(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The answer to ``method`` on the admin ``path``; raises on any non-2xx status."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method, ADMIN_PREFIX + path, json=json_body, params=params or None
            )
        except httpx.HTTPError as exc:
            reason = redact(str(exc)) or type(exc).__name__
            raise click.ClickException(
                f"cannot reach logpulse-server at {self.url}: {reason}"
            ) from None
        if response.is_success:
            return response
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text.strip()[:200] or response.reason_phrase
        raise click.ClickException(
            f"{printable(redact(str(message)))} (HTTP {response.status_code})"
        )

    def call(self, method: str, path: str, json_body: Any = None, **params: Any) -> Any:
        """The ``data`` of a JSON answer (``None`` for 204)."""
        response = self.raw(method, path, json_body=json_body, params=params)
        if response.status_code == 204:
            return None
        try:
            return response.json()["data"]
        except (ValueError, KeyError, TypeError):
            raise click.ClickException(
                f"unexpected answer from {self.url}: not a JSON data envelope"
            ) from None


def cli_actor() -> str:
    """``cli:<local user name>``, or ``cli`` when the system cannot say who runs it."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = ""
    return f"cli:{user}" if user else "cli"


def parse_duration(text: str) -> int:
    """Seconds in ``"90"``, ``"30m"``, ``"24h"`` or ``"7d"``."""
    match = _DURATION_RE.fullmatch(text.strip().lower())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 24h or 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value``; the value is read as JSON when it parses (``port=514`` is a number)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r} is not key=value")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def ago(stamp: str | None, now: datetime | None = None) -> str:
    """``"42s ago"``, ``"5m ago"``, ``"3h ago"``, ``"2d ago"`` or ``"never"``."""
    if stamp is None:
        return "never"
    then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    seconds = max(0, int(((now or datetime.now(timezone.utc)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table with left-aligned columns, two spaces apart; cells :func:`printable`."""
    cells = [[str(h) for h in headers]]
    cells += [["-" if c is None else printable(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def health_cell(health: dict[str, Any] | None) -> str:
    """``healthy``, ``degraded: <reason>``…, or ``-`` while the agent reports none."""
    if not health:
        return "-"
    reason = health.get("reason")
    return _clip(f"{health['state']}: {reason}" if reason else str(health["state"]))


def rate_cell(ingest: dict[str, Any] | None) -> str:
    """Events per second this server's ingest received from the agent; ``-`` if it never did."""
    if not ingest or not ingest.get("events"):
        return "-"
    return f"{ingest.get('eventsPerSecond', 0):.1f}"


def agent_rows(agents: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """The ``agents list`` table rows: who, where, how healthy, which versions."""
    rows = []
    for a in agents:
        seen = ago(a["lastHeartbeatAt"])
        state = a["status"] if a["status"] == "revoked" else f"{a['status']} ({seen})"
        error = a["configError"]
        last_error = "-" if not error else f"v{error['configVersion']}: {error['message']}"
        last_error = _clip(last_error)
        target = a["groupConfigVersion"]
        rows.append(
            [
                a["hostname"],
                a["groupSlug"] or "-",
                state,
                a["agentVersion"],
                a["vectorVersion"],
                f"{a['appliedConfigVersion']}/{'-' if target is None else target}",
                "yes" if a["vectorRunning"] else "no",
                health_cell(a.get("health")),
                rate_cell(a.get("ingest")),
                last_error,
                a["id"],
            ]
        )
    return rows


AGENT_HEADERS = (
    "HOST",
    "GROUP",
    "STATUS",
    "AGENT",
    "VECTOR",
    "CONFIG",
    "RUNNING",
    "HEALTH",
    "EVENTS/s",
    "LAST ERROR",
    "ID",
)


class Session:
    """One admin command's connection and output mode."""

    def __init__(self, client: AdminClient, as_json: bool) -> None:
        self.client, self.as_json = client, as_json

    def call(self, method: str, path: str, json_body: Any = None, **params: Any) -> Any:
        return self.client.call(method, path, json_body, **params)

    def emit(self, data: Any, text: str) -> None:
        """Print ``data`` as JSON with ``--json``, else ``text`` with each line
        :func:`printable` (values that may hold a newline are escaped by the caller)."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2))
        else:
            click.echo("\n".join(printable(line) for line in text.split("\n")))


def admin_command(group: click.Group | None, name: str | None = None) -> Callable[..., Any]:
    """Declare ``fn(session, **args)`` as an admin command of ``group`` (or a lone command)."""

    def decorate(fn: Callable[..., None]) -> click.Command:
        @functools.wraps(fn)
        def run(url: str, admin_token: str | None, as_json: bool, **kwargs: Any) -> None:
            client = AdminClient(url, admin_token)
            try:
                fn(Session(client, as_json), **kwargs)
            finally:
                client.close()

        run = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON data.")(
            run
        )
        run = click.option(
            "--admin-token", envvar="LOGPULSE_ADMIN_TOKEN", help="Admin bearer token."
        )(run)
        run = click.option(
            "--url",
            envvar="LOGPULSE_SERVER_URL",
            default=DEFAULT_URL,
            show_default=True,
            help="The server's base URL.",
        )(run)
        return click.command(name)(run) if group is None else group.command(name)(run)

    return decorate
