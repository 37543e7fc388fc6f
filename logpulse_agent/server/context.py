"""What every route needs, built once by :func:`logpulse_agent.server.app.create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from logpulse_agent.server.configs import ConfigCache
from logpulse_agent.server.ingest import Ingest
from logpulse_agent.server.openapi import OpenApi
from logpulse_agent.server.store import Store
from logpulse_agent.server.sweeps import Sweeper


@dataclass
class ServerContext:
    store: Store
    api: OpenApi
    configs: ConfigCache
    sweeper: Sweeper
    clock: Callable[[], float]
    offline_threshold: float
    admin_token_hash: str
    body_limit: int  # bytes, admin and enrol bodies
    heartbeat_body_limit: int  # bytes; results may carry an upgrade log tail
    bulk_body_limit: int  # bytes, bulk action creation (one id per agent)
    ingest: Ingest  # the HEC-compatible ingest: counters, recent events, pause
    # Moved agents that send no etag -> (group id, version) last served to them (in memory:
    # after a restart such an agent is simply served it once more). See agent_routes.config.
    served_after_move: dict[str, tuple[str, int]] = field(default_factory=dict)


def context(request: Request) -> ServerContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, ServerContext)
    return ctx
