"""The agents table's filters and page, read from a query string or a form, and written back.

The same :class:`AgentQuery` drives the table, its pager links, the self-refresh, and a bulk
upgrade "by filter": the selection is re-resolved on the server from these fields, never taken
from what the browser happened to display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from logpulse_agent.server.agents import HEALTH_FILTERS, STATUSES
from logpulse_agent.server.errors import BadRequest

DEFAULT_PER_PAGE = 50
PER_PAGE_CHOICES = (25, 50, 100, 200)
MAX_HOST_SEARCH = 253  # the longest DNS name
FILTER_FIELDS = ("group", "status", "health", "host")


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name) or ""
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {raw[:20]!r}") from None


@dataclass(frozen=True)
class AgentQuery:
    """Filters (``None``: not filtered), 1-based ``page`` and rows ``per`` page."""

    group: str | None = None  # slug or id
    status: str | None = None
    host: str | None = None  # case-insensitive part of the hostname
    health: str | None = None  # last reported state, or "unknown"
    page: int = 1
    per: int = DEFAULT_PER_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> AgentQuery:
        """From query parameters or form fields; :class:`BadRequest` for unusable values."""
        status = params.get("status") or None
        if status is not None and status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}, got {status[:20]!r}")
        health = params.get("health") or None
        if health is not None and health not in HEALTH_FILTERS:
            choices = ", ".join(HEALTH_FILTERS)
            raise BadRequest(f"health must be one of {choices}, got {health[:20]!r}")
        host = (params.get("host") or "").strip() or None
        if host is not None and len(host) > MAX_HOST_SEARCH:
            raise BadRequest(f"the host search is longer than {MAX_HOST_SEARCH} characters")
        page = _int(params, "page", 1)
        per = _int(params, "per", DEFAULT_PER_PAGE)
        if page < 1 or page > 10**9:
            raise BadRequest(f"page must be from 1 on, got {page}")
        if per not in PER_PAGE_CHOICES:
            choices = ", ".join(map(str, PER_PAGE_CHOICES))
            raise BadRequest(f"per must be one of {choices}, got {per}")
        group = (params.get("group") or "").strip() or None
        return cls(group=group, status=status, host=host, health=health, page=page, per=per)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per

    def filters(self) -> dict[str, str]:
        """The filter fields that are set (for hidden inputs and links)."""
        values = {
            "group": self.group,
            "status": self.status,
            "health": self.health,
            "host": self.host,
        }
        return {name: value for name, value in values.items() if value is not None}

    def link(self, **changes: Any) -> str:
        """The query string (with ``?``) for this query with ``changes``; defaults left out."""
        changed = replace(self, **changes)
        params = changed.filters()
        if changed.page != 1:
            params["page"] = str(changed.page)
        if changed.per != DEFAULT_PER_PAGE:
            params["per"] = str(changed.per)
        return "?" + urlencode(params) if params else "?"

    def pages(self, total: int) -> int:
        """How many pages ``total`` matching rows fill (at least one, empty or not)."""
        return max(1, math.ceil(total / self.per))
