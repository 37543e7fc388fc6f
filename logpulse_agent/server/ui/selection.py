"""A bulk selection of agents, resolved on the server: by filter or by hand.

The browser posts *how* it selected (the filter fields, or the ids it ticked); the server turns
that into the exact set of agents an action can reach (revoked ones never are) and a digest of
that set. The confirm form carries the digest back, and the selection is resolved again inside
the write transaction that creates the actions: if the fleet changed in between (an agent
enrolled, went offline under a status filter, was revoked), the digests differ and nothing is
created — the operator sees the new count and confirms again. So a bulk action never reaches a
host the operator did not see counted.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field

from starlette.datastructures import ImmutableMultiDict

from logpulse_agent.server import agent_filters, groups
from logpulse_agent.server.errors import BadRequest, Unprocessable
from logpulse_agent.server.ui.query import FILTER_FIELDS, AgentQuery

MODES = ("filter", "hand")
MAX_PICKED = 10_000  # the admin API's limit of agent ids per bulk request


def digest(agent_ids: list[str]) -> str:
    """A fingerprint of a set of agent ids (order does not matter)."""
    return hashlib.sha256("\n".join(sorted(agent_ids)).encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Selection:
    """How the agents were selected, and what that resolves to now."""

    mode: str
    query: AgentQuery | None  # mode "filter"
    picked: tuple[str, ...]  # mode "hand": the ids as ticked
    ids: list[str] = field(default_factory=list)  # reachable agents, by hostname

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def digest(self) -> str:
        return digest(self.ids)

    @property
    def left_out(self) -> int:
        """Ticked agents that are not reachable (revoked since the page was shown)."""
        return len(self.picked) - len(self.ids) if self.mode == "hand" else 0

    def fields(self) -> list[tuple[str, str]]:
        """The hidden form fields that select the same way again."""
        if self.query is not None:
            return [("mode", "filter"), *self.query.filters().items()]
        return [("mode", "hand")] + [("agent", agent_id) for agent_id in self.picked]


def parse(form: ImmutableMultiDict[str, str]) -> Selection:
    """How the form selects; :class:`BadRequest` / :class:`Unprocessable` when unusable."""
    mode = form.get("mode")
    if mode == "filter":
        query = AgentQuery.parse({k: v for k, v in form.items() if k in FILTER_FIELDS})
        return Selection("filter", query, ())
    if mode == "hand":
        picked = form.getlist("agent")
        unique = tuple(dict.fromkeys(agent_id.strip() for agent_id in picked if agent_id.strip()))
        if not unique:
            raise Unprocessable("no agents are selected: tick some, or upgrade by filter")
        if len(unique) > MAX_PICKED:
            raise Unprocessable(f"at most {MAX_PICKED} agents can be picked by hand")
        return Selection("hand", None, unique)
    raise BadRequest(f"selection mode must be one of {', '.join(MODES)}")


def resolve(
    conn: sqlite3.Connection, selection: Selection, *, now: float, threshold: float
) -> Selection:
    """``selection`` with ``ids`` filled in from the database as it is now."""
    if selection.query is not None:
        query = selection.query
        group_id = None if query.group is None else groups.resolve(conn, query.group)["id"]
        which = agent_filters.AgentFilter(
            now, threshold, group_id, query.status, query.host, query.health
        )
        ids = agent_filters.unrevoked_ids(conn, which)
    else:
        ids = agent_filters.unrevoked_among(conn, selection.picked)
    return Selection(selection.mode, selection.query, selection.picked, ids)
