"""The Starlette application of the reference control plane: :func:`create_app`.

The factory opens (and migrates) the database at once, so an app handed to
``httpx.ASGITransport`` works without a lifespan; the lifespan only runs the periodic sweeps
and closes the database on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from logpulse_agent.server import (
    admin_dataplane_routes,
    admin_fleet_routes,
    admin_routes,
    agent_routes,
    checkpointer,
    config_versions,
    ingest_routes,
    rollout_routes,
    rollouts,
    ui,
)
from logpulse_agent.server.admin_auth import setup_admin_token
from logpulse_agent.server.agents import DEFAULT_OFFLINE_THRESHOLD
from logpulse_agent.server.configs import DEFAULT_CACHE_SIZE, ConfigCache
from logpulse_agent.server.context import ServerContext, context
from logpulse_agent.server.errors import ApiError
from logpulse_agent.server.http import (
    DEFAULT_BODY_LIMIT,
    JSON_TYPE,
    api_error_handler,
    http_exception_handler,
    ok,
    unhandled_error_handler,
)
from logpulse_agent.server.ingest import DEFAULT_INGEST_BODY_LIMIT, Ingest
from logpulse_agent.server.ingest_counters import DEFAULT_FLUSH_INTERVAL
from logpulse_agent.server.openapi import OpenApi
from logpulse_agent.server.render import IngestSettings, render_config
from logpulse_agent.server.store import Store
from logpulse_agent.server.sweeps import DEFAULT_ROLLOUT_INTERVAL, DEFAULT_SWEEP_INTERVAL, Sweeper

DEFAULT_INGEST_URL = "http://127.0.0.1:8088"
HEARTBEAT_BODY_LIMIT = 256 * 1024
BULK_BODY_LIMIT = 1024 * 1024


async def health(request: Request) -> Response:
    ctx = context(request)
    return ok({"status": "ok", "schemaVersion": ctx.store.schema_version})


async def openapi_json(request: Request) -> Response:
    return Response(context(request).api.json_bytes, media_type=JSON_TYPE)


def create_app(
    db_path: str | Path,
    *,
    admin_token: str | None = None,
    ingest: IngestSettings | None = None,
    clock: Callable[[], float] = time.time,
    offline_threshold: float = DEFAULT_OFFLINE_THRESHOLD,
    sweep_interval: float | None = DEFAULT_SWEEP_INTERVAL,
    body_limit: int = DEFAULT_BODY_LIMIT,
    heartbeat_body_limit: int = HEARTBEAT_BODY_LIMIT,
    bulk_body_limit: int = BULK_BODY_LIMIT,
    config_cache_size: int = DEFAULT_CACHE_SIZE,
    ingest_body_limit: int = DEFAULT_INGEST_BODY_LIMIT,
    ingest_flush_interval: float | None = DEFAULT_FLUSH_INTERVAL,
    heartbeat_interval: float = rollouts.DEFAULT_HEARTBEAT_INTERVAL,
    rollout_interval: float | None = DEFAULT_ROLLOUT_INTERVAL,
    checkpoint_interval: float | None = checkpointer.DEFAULT_INTERVAL,
) -> Starlette:
    """The server over the SQLite file ``db_path`` (created and migrated as needed).

    ``ingest`` is where agents send events (default ``http://127.0.0.1:8088``); a URL the
    renderer refuses raises ``ValueError`` here. ``admin_token`` is the admin bearer token;
    without one, the token stored at the first start is used, or one is generated — then
    ``app.state.generated_admin_token`` holds it so the caller can show it once. ``clock``
    (Unix seconds) drives every time the server stores or compares: token expiry, action
    deadlines, heartbeats, the ``offline_threshold``.
    ``sweep_interval`` is the period of the background sweeps; ``None`` disables them (tests
    call ``app.state.ctx.sweeper.run_once()``). ``rollout_interval`` is how often staged
    rollouts are advanced (``None``: never by themselves, tests call
    ``sweeper.run_rollouts_once()``); ``heartbeat_interval`` is the agents' (two missed ones
    make an admitted agent a failure). ``checkpoint_interval``: while the app runs (lifespan),
    WAL checkpoints run on a thread that often instead of inside a request
    (:mod:`.checkpointer`); ``None`` leaves them to SQLite. The HEC ingest
    (``/services/collector/…``) accepts bodies up to ``ingest_body_limit`` bytes (compressed
    and inflated) and writes its counters every ``ingest_flush_interval`` seconds (and before
    every admin read; ``None``: only then and at shutdown).
    """
    ingest = ingest or IngestSettings(endpoint=DEFAULT_INGEST_URL)
    render_config([], "linux", ingest)  # ValueError now, not on the first poll, for a bad URL
    store = Store(db_path, clock=clock)
    token_hash, generated = setup_admin_token(store, admin_token)
    with store.write() as conn:
        config_versions.snapshot_missing(conn, clock())
        config_versions.settings_changed(conn, repr(ingest))
        rollouts.set_heartbeat_interval(conn, heartbeat_interval)
    sweeper = Sweeper(store, clock=clock, offline_threshold=offline_threshold)
    ctx = ServerContext(
        store=store,
        api=OpenApi.load(),
        configs=ConfigCache(ingest, config_cache_size),
        sweeper=sweeper,
        clock=clock,
        offline_threshold=offline_threshold,
        admin_token_hash=token_hash,
        body_limit=body_limit,
        heartbeat_body_limit=heartbeat_body_limit,
        bulk_body_limit=bulk_body_limit,
        ingest=Ingest(store, clock, body_limit=ingest_body_limit),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        wal = None
        if checkpoint_interval is not None:
            wal = checkpointer.Checkpointer(store, checkpoint_interval)
            wal.start()
        tasks = []
        if sweep_interval is not None:
            tasks.append(loop.create_task(sweeper.run_forever(sweep_interval)))
        if rollout_interval is not None:
            tasks.append(loop.create_task(sweeper.run_rollouts_forever(rollout_interval)))
        if ingest_flush_interval is not None:
            tasks.append(loop.create_task(ctx.ingest.counters.run_forever(ingest_flush_interval)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            ctx.ingest.counters.flush()
            if wal is not None:
                wal.stop()
            store.close()

    routes: list[BaseRoute] = [
        Route("/healthz", health, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        *agent_routes.routes,
        *admin_routes.routes,
        *admin_fleet_routes.routes,
        *admin_dataplane_routes.routes,
        *ingest_routes.routes,
        *rollout_routes.routes,
        ui.mount(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: api_error_handler,
            HTTPException: http_exception_handler,
            Exception: unhandled_error_handler,
        },
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.ui = ui.state(clock=clock, form_limit=body_limit)
    app.state.generated_admin_token = generated
    return app
