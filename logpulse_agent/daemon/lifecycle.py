"""``logpulse-agent run``: the daemon's life, read top to bottom.

    run ─► prepare (dirs, status.json, READY=1, watchdog)
        ─► wait_for_enrolment (enrol from a bootstrap token, or wait saying why)
        ─► build_agent (daemon/compose.py: every part, from the settings)
        ─► startup   (Vector's global options, leftover Vectors stopped, results of an upgrade
                      that restarted us reconciled, the tasks started)
        ─► main_loop (until SIGTERM/SIGINT)
        ─► shutdown  (tasks cancelled, Vector stopped gracefully, last status written)

One event loop, no threads. A task that raises is logged with its traceback and restarted with
backoff (:mod:`.tasks`); it never takes the others down. The signal handlers only set an event
(:meth:`Daemon.request_stop`); the loop acts on it, and ``run`` returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
from collections.abc import Mapping
from dataclasses import dataclass, replace

import structlog

from logpulse_agent import __version__
from logpulse_agent.config.decisions import retry_ceiling
from logpulse_agent.controlplane.enrol import enrol, find_bootstrap_token
from logpulse_agent.controlplane.identity import Identity, IdentityStore
from logpulse_agent.daemon.compose import Agent, build_agent
from logpulse_agent.daemon.sdnotify import Notifier
from logpulse_agent.daemon.tasks import cancel_and_wait, guarded
from logpulse_agent.errors import AgentError
from logpulse_agent.settings import Settings
from logpulse_agent.state import atomic
from logpulse_agent.status.sections import IdentityStatus
from logpulse_agent.status.tracker import StatusTracker
from logpulse_agent.vector.options import render_global_options, secret_command

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Running:
    """The tasks :meth:`Daemon.startup` started: the workers, and Vector's supervisor."""

    workers: list[asyncio.Task[None]]
    vector: asyncio.Task[None]


class Daemon:
    """Everything ``run`` owns; ``request_stop()`` is what the signal handlers call."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] = os.environ) -> None:
        self.settings = settings
        self.environ = environ
        self.layout = settings.layout
        self.identities = IdentityStore(self.layout)
        self.status = StatusTracker(self.layout.status, __version__)
        self.notifier = Notifier(environ)
        self.stopping = asyncio.Event()
        self.rng = random.Random()

    def request_stop(self) -> None:
        self.stopping.set()

    async def run(self) -> int:
        """The whole life of the daemon; returns its exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        self.layout.ensure_dirs()
        self.status.write()
        # READY at once (waiting for enrolment is a normal state, not a slow start-up) and the
        # watchdog from the same loop, so a wedged loop is restarted by systemd.
        self.notifier.ready()
        watchdog = asyncio.create_task(self.notifier.watchdog(), name="watchdog")
        try:
            identity = await self.wait_for_enrolment()
            if identity is None:
                return 0
            self.status.set(
                IdentityStatus(identity.agent_id, identity.group_id, identity.api_url),
                replace(self.status.control_plane, state="connecting"),
            )
            async with build_agent(
                self.settings, identity, tracker=self.status, environ=self.environ, rng=self.rng
            ) as agent:
                running = await self.startup(agent, identity)
                await self.main_loop()
                await self.shutdown(agent, running)
            return 0
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)

    async def wait_for_enrolment(self) -> Identity | None:
        """Enrol from LOGPULSE_ENROL_TOKEN or bootstrap-token; else wait, saying so once.
        None when a stop was requested meanwhile."""
        told = ""
        check_every = min(5.0, self.settings.poll_interval)
        while not self.identities.is_enrolled():
            token = find_bootstrap_token(self.settings, self.environ)
            if token is None or not self.settings.api_url:
                why = "no bootstrap token" if token is None else "no api_url setting"
                if told != why:
                    log.warning(
                        "agent.waiting_for_enrolment",
                        reason=why,
                        fix="run 'logpulse-agent enrol', or provide LOGPULSE_ENROL_TOKEN or "
                        f"{self.settings.bootstrap_token_file} together with api_url",
                    )
                    told = why
                    self.status.set(replace(self.status.control_plane, state="waiting-enrolment"))
            else:
                try:
                    await enrol(
                        self.settings, token, api_url=self.settings.api_url, environ=self.environ
                    )
                    break
                except AgentError as exc:
                    if told != str(exc):
                        log.error("agent.enrol_failed", error=str(exc))
                        told = str(exc)
                    check_every = retry_ceiling(self.settings.poll_interval)
            if await self._sleep_or_stop(check_every):
                return None
        return self.identities.load()

    async def startup(self, agent: Agent, identity: Identity) -> Running:
        """Prepare Vector's files and processes, reconcile, start the tasks."""
        layout = self.layout
        atomic.write_text(
            layout.globals_config,
            render_global_options(layout.vector_data, secret_command(layout.token)),
            mode=0o640,
        )
        await agent.supervisor.clean_stale()
        await agent.supervisor.refresh_version()
        # An upgrade this process is the result of: done/failed into the journal (durable)
        # before the in-flight record goes; the first heartbeat carries it.
        agent.executor.reconcile()
        # Vector state changes are published as they happen; the feed's tick catches the rest.
        agent.supervisor.on_state = agent.feed.on_vector_state
        workers = [
            asyncio.create_task(guarded(name, factory), name=name)
            for name, factory in agent.workers().items()
        ]
        vector = asyncio.create_task(guarded("vector", agent.supervisor.run), name="vector")
        self.notifier.notify("STATUS=running")
        log.info("agent.started", agent_id=identity.agent_id, version=__version__)
        return Running(workers, vector)

    async def main_loop(self) -> None:
        """Run until a stop is requested (SIGTERM, SIGINT)."""
        await self.stopping.wait()

    async def shutdown(self, agent: Agent, running: Running) -> None:
        """Stop the tasks, then Vector (gracefully, bounded), then write the last status."""
        log.info("agent.stopping")
        self.notifier.stopping()
        await cancel_and_wait(running.workers)
        await agent.supervisor.stop()
        await cancel_and_wait([running.vector])
        agent.feed.publish()
        log.info("agent.stopped")

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Sleep; True when a stop was requested meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return self.stopping.is_set()


async def run_daemon(settings: Settings, environ: Mapping[str, str] = os.environ) -> int:
    return await Daemon(settings, environ).run()
