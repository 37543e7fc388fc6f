"""The composition root: every part of an enrolled agent, built from the settings in one place.

    ControlPlaneClient ─► ConfigSync ───── applies configs ─────► VectorSupervisor
           │                  ▲ group version                          │ state changes
           ▼                  │                                        ▼
      HeartbeatLoop ── pending actions ──► ActionExecutor        StatusFeed ─► StatusTracker
           ▲  └──── snapshot of the status sections ◄─── handlers         (status.json)
           └───── heartbeat_now (asyncio.Event) ◄── a result waits (actions/registry.py)

Nothing here starts anything: :mod:`.lifecycle` runs and stops what :func:`build_agent` returns.
Intervals derive from ``poll_interval`` so that test and demo runs with short intervals back off
proportionally; at the default 10 s they are SPEC's values.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from logpulse_agent import __version__
from logpulse_agent.actions.executor import ActionExecutor
from logpulse_agent.actions.handler import ActionDeps
from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.actions.ledger import ActionLedger
from logpulse_agent.actions.registry import build_handlers
from logpulse_agent.config.decisions import retry_ceiling
from logpulse_agent.config.store import ConfigStore
from logpulse_agent.config.sync import ConfigSync
from logpulse_agent.controlplane.client import ControlPlaneClient, RetryPolicy, make_http_client
from logpulse_agent.controlplane.identity import Identity, IdentityStore
from logpulse_agent.daemon.status_feed import StatusFeed
from logpulse_agent.heartbeat.body import HeartbeatSnapshot
from logpulse_agent.heartbeat.loop import HeartbeatLoop
from logpulse_agent.settings import Settings
from logpulse_agent.status.tracker import StatusTracker
from logpulse_agent.upgrade.probation import Promoter
from logpulse_agent.upgrade.record import inflight_file
from logpulse_agent.vector.commands import candidate_validator
from logpulse_agent.vector.supervisor import VectorSupervisor


@dataclass(frozen=True)
class Agent:
    """The parts of an enrolled agent."""

    supervisor: VectorSupervisor
    sync: ConfigSync
    heartbeat: HeartbeatLoop
    executor: ActionExecutor
    feed: StatusFeed

    def workers(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """The tasks that run beside the supervisor, by name."""
        return {
            "config-sync": self.sync.run,
            "heartbeat": self.heartbeat.run,
            "actions": self.executor.run,
            "status": self.feed.run,
        }


@asynccontextmanager
async def build_agent(
    settings: Settings,
    identity: Identity,
    *,
    tracker: StatusTracker,
    environ: Mapping[str, str],
    rng: random.Random,
) -> AsyncIterator[Agent]:
    """Build every part for ``identity``; the HTTP client lives as long as the context."""
    layout = settings.layout
    supervisor = build_supervisor(settings, environ)  # Vector gets vector.commands.child_env
    async with make_http_client(settings, version=__version__) as http:
        client = ControlPlaneClient(
            http,
            identity.api_url,
            token=IdentityStore(layout).load_token(),
            retry=retry_policy(settings.poll_interval),
        )
        sync = build_config_sync(settings, client, identity, supervisor, tracker, environ, rng)
        ledger = ActionLedger(layout.ledger)
        journal = ActionJournal(layout.outbox, legacy_reported=ledger.legacy_reported)
        heartbeat_now = asyncio.Event()
        executor = ActionExecutor(
            journal=journal,
            ledger=ledger,
            handlers=build_handlers(ActionDeps(settings, layout, http, __version__)),
            notify=heartbeat_now.set,
        )
        feed = StatusFeed(
            tracker=tracker,
            supervisor=supervisor,
            journal=journal,
            inflight=inflight_file(layout.upgrade_inflight),
            interval=min(5.0, settings.poll_interval / 2),
        )
        heartbeat = HeartbeatLoop(
            # Each heartbeat retries briefly; the next one reports fresh state instead.
            send=functools.partial(
                client.heartbeat,
                identity.agent_id,
                retry=retry_policy(settings.poll_interval, max_attempts=3),
            ),
            snapshot=feed.heartbeat_snapshot,
            journal=journal,
            on_actions=executor.submit,
            on_config_version=sync.on_group_version,
            status=tracker,
            interval=settings.heartbeat_interval,
            poll_interval=settings.poll_interval,
            wake=heartbeat_now,
            rng=rng,
            on_success=promotion(settings),
        )
        yield Agent(supervisor, sync, heartbeat, executor, feed)


def promotion(settings: Settings) -> Callable[[HeartbeatSnapshot], bool]:
    """After a ``2xx`` heartbeat: promote a release on upgrade probation (SPEC §11.4)."""
    layout = settings.layout
    promoter = Promoter(layout.upgrade_probation, layout.upgrade_promoted, __version__)

    def after(snapshot: HeartbeatSnapshot) -> bool:
        vector, config = snapshot.status.vector, snapshot.status.config
        return promoter.after_heartbeat(
            vector_running=vector is not None and vector.running, config_empty=config.empty
        )

    return after


def build_config_sync(
    settings: Settings,
    client: ControlPlaneClient,
    identity: Identity,
    supervisor: VectorSupervisor,
    tracker: StatusTracker,
    environ: Mapping[str, str],
    rng: random.Random,
) -> ConfigSync:
    """Config sync polling ``client`` for this agent, validating candidates with Vector."""
    layout = settings.layout
    return ConfigSync(
        store=ConfigStore(layout),
        fetch=functools.partial(client.fetch_config, identity.agent_id),
        validate=candidate_validator(settings.vector_bin, layout.globals_config, environ),
        vector=supervisor,
        status=tracker,
        poll_interval=settings.poll_interval,
        rng=rng,
    )


def build_supervisor(settings: Settings, env: Mapping[str, str]) -> VectorSupervisor:
    """Vector on the agent's global options plus the live config; restart backoff 1 s to 60 s."""
    layout, poll = settings.layout, settings.poll_interval
    return VectorSupervisor(
        vector_bin=settings.vector_bin,
        config_paths=[layout.globals_config, layout.live_config],
        log_path=layout.vector_log,
        pid_path=layout.vector_pid,
        env=env,
        backoff_initial=min(1.0, poll / 10),
        backoff_max=min(60.0, poll * 6),
        stable_after=min(60.0, poll * 6),
    )


def retry_policy(poll_interval: float, *, max_attempts: int | None = None) -> RetryPolicy:
    """Control-plane retries: from 1 s up to the 5-minute ceiling at the default poll."""
    return RetryPolicy(
        initial=min(1.0, poll_interval / 10),
        ceiling=retry_ceiling(poll_interval),
        max_attempts=max_attempts,
    )
