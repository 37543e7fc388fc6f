"""``logpulse-agent run``: wires the four cooperating tasks and handles signals.

    config sync ── validates/applies configs ──► Vector supervisor ◄── keeps Vector alive
    heartbeat  ── reports health, delivers results ──► action executor ── runs actions

One event loop, no threads. A task that raises is logged with its traceback and restarted with
backoff; it never takes the others down. SIGTERM/SIGINT only set an event; the loop then stops
the tasks, stops Vector gracefully, writes the final status and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Mapping

import structlog

from logpulse_agent import __version__
from logpulse_agent.actions.executor import ActionExecutor
from logpulse_agent.actions.handler import ActionDeps
from logpulse_agent.actions.journal import ActionJournal
from logpulse_agent.actions.ledger import ActionLedger
from logpulse_agent.actions.registry import build_handlers
from logpulse_agent.clock import rfc3339
from logpulse_agent.config.decisions import retry_ceiling, should_poll_now
from logpulse_agent.config.store import ConfigStore
from logpulse_agent.config.sync import ConfigSync
from logpulse_agent.controlplane.client import ControlPlaneClient, RetryPolicy, make_http_client
from logpulse_agent.controlplane.enrol import enrol, find_bootstrap_token
from logpulse_agent.controlplane.identity import Identity, IdentityStore
from logpulse_agent.controlplane.protocol import ActionResult, ConfigErrorReport, Heartbeat
from logpulse_agent.daemon.sdnotify import Notifier
from logpulse_agent.daemon.tasks import cancel_and_wait, guarded
from logpulse_agent.errors import AgentError
from logpulse_agent.heartbeat.loop import HeartbeatLoop
from logpulse_agent.settings import Settings
from logpulse_agent.state import atomic
from logpulse_agent.state.records import RecordFile
from logpulse_agent.status.tracker import StatusTracker
from logpulse_agent.upgrade.record import InFlightUpgrade, inflight_file
from logpulse_agent.vector.commands import validate
from logpulse_agent.vector.options import render_global_options, secret_command
from logpulse_agent.vector.supervisor import VectorState, VectorSupervisor

log = structlog.get_logger(__name__)

# Variables that must never reach Vector's environment (it would expose them to its config).
PRIVATE_ENV = ("LOGPULSE_ENROL_TOKEN",)


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
        self._vector_started: tuple[int | None, str | None] = (None, None)

    def request_stop(self) -> None:
        self.stopping.set()

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Sleep; True when a stop was requested meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return self.stopping.is_set()

    async def wait_for_enrolment(self) -> Identity | None:
        """Enrol from LOGPULSE_ENROL_TOKEN or bootstrap-token; else wait, saying so once."""
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
                    self.status.update(control_plane="waiting-enrolment")
            else:
                try:
                    await enrol(self.settings, token, api_url=self.settings.api_url)
                    break
                except AgentError as exc:
                    if told != str(exc):
                        log.error("agent.enrol_failed", error=str(exc))
                        told = str(exc)
                    check_every = retry_ceiling(self.settings.poll_interval)
            if await self._sleep_or_stop(check_every):
                return None
        return self.identities.load()

    async def run(self) -> int:
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
            self.status.update(
                identity={
                    "agentId": identity.agent_id,
                    "groupId": identity.group_id,
                    "apiUrl": identity.api_url,
                },
                control_plane="connecting",
            )
            await self._run_enrolled(identity)
            return 0
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)

    def _vector_env(self) -> dict[str, str]:
        return {k: v for k, v in self.environ.items() if k not in PRIVATE_ENV}

    async def _run_enrolled(self, identity: Identity) -> None:
        settings, store = self.settings, self.layout
        poll = settings.poll_interval
        atomic.write_text(
            store.globals_config,
            render_global_options(store.vector_data, secret_command(store.token)),
            mode=0o640,
        )
        vector_env = self._vector_env()
        supervisor = VectorSupervisor(
            vector_bin=settings.vector_bin,
            config_paths=[store.globals_config, store.live_config],
            log_path=settings.log_dir / "vector.log",
            pid_path=store.vector_pid,
            env=vector_env,
            backoff_initial=min(1.0, poll / 10),
            backoff_max=min(60.0, poll * 6),
            stable_after=min(60.0, poll * 6),
        )
        await supervisor.clean_stale()
        await supervisor.refresh_version()
        async with make_http_client(settings, version=__version__) as http:
            client = ControlPlaneClient(
                http,
                identity.api_url,
                token=self.identities.load_token(),
                retry=RetryPolicy(initial=min(1.0, poll / 10), ceiling=retry_ceiling(poll)),
            )
            # Heartbeats retry briefly and then report fresh state next time (HeartbeatLoop).
            brief_retry = RetryPolicy(
                initial=min(1.0, poll / 10), ceiling=retry_ceiling(poll), max_attempts=3
            )
            ledger = ActionLedger(store.ledger)
            outbox = ActionJournal(store.outbox, legacy_reported=ledger.legacy_reported)
            upgrades = inflight_file(store.upgrade_inflight)

            async def validate_candidate(candidate: os.PathLike[str]) -> None:
                await validate(settings.vector_bin, [store.globals_config, candidate], vector_env)

            sync = ConfigSync(
                store=ConfigStore(store),
                fetch=lambda since, etag: client.fetch_config(identity.agent_id, since, etag),
                validate=validate_candidate,
                vector=supervisor,
                status=self.status,
                poll_interval=poll,
                rng=self.rng,
            )

            def build(results: tuple[ActionResult, ...]) -> Heartbeat:
                rejected = sync.rejected
                return Heartbeat(
                    agent_version=__version__,
                    vector_version=supervisor.version,
                    applied_config_version=sync.applied.version,
                    vector_running=supervisor.state is VectorState.RUNNING,
                    vector_uptime_seconds=int(supervisor.uptime()),
                    config_error=None
                    if rejected is None
                    else ConfigErrorReport(rejected.version, rejected.message, rejected.at),
                    action_results=results,
                )

            def on_config_version(version: int | None) -> None:
                if should_poll_now(version, sync.applied):
                    sync.poke()

            executor_box: list[ActionExecutor] = []
            heartbeat = HeartbeatLoop(
                send=lambda body: client.heartbeat(identity.agent_id, body, retry=brief_retry),
                build=build,
                outbox=outbox,
                on_actions=lambda actions: executor_box[0].submit(actions),
                on_config_version=on_config_version,
                status=self.status,
                interval=settings.heartbeat_interval,
                poll_interval=poll,
                rng=self.rng,
            )
            executor = ActionExecutor(
                journal=outbox,
                ledger=ledger,
                handlers=build_handlers(ActionDeps(settings, store, http, __version__)),
                notify=heartbeat.wake,
            )
            executor_box.append(executor)
            # An upgrade this process is the result of: done/failed into the outbox (durable)
            # before the in-flight record goes; the first heartbeat carries it.
            executor.reconcile()

            # Vector state changes are published as they happen; the slow tick catches the
            # rest (uptime start, pending results, the in-flight upgrade record).
            supervisor.on_state = lambda _: self._publish_vector(supervisor, outbox, upgrades)

            async def publish_status() -> None:
                while True:
                    self._publish_vector(supervisor, outbox, upgrades)
                    await asyncio.sleep(min(5.0, poll / 2))

            workers = [
                asyncio.create_task(guarded(name, factory), name=name)
                for name, factory in (
                    ("config-sync", sync.run),
                    ("heartbeat", heartbeat.run),
                    ("actions", executor.run),
                    ("status", publish_status),
                )
            ]
            vector_task = asyncio.create_task(guarded("vector", supervisor.run), name="vector")
            self.notifier.notify("STATUS=running")
            log.info("agent.started", agent_id=identity.agent_id, version=__version__)
            await self.stopping.wait()
            log.info("agent.stopping")
            self.notifier.stopping()
            await cancel_and_wait(workers)
            await supervisor.stop()
            await cancel_and_wait([vector_task])
            self._publish_vector(supervisor, outbox, upgrades)
            log.info("agent.stopped")

    def _publish_vector(
        self,
        supervisor: VectorSupervisor,
        outbox: ActionJournal,
        upgrades: RecordFile[InFlightUpgrade],
    ) -> None:
        # Wall-clock start of the current Vector, computed once per pid so the snapshot only
        # changes (and is rewritten) when something really changed.
        pid = supervisor.pid if supervisor.state is VectorState.RUNNING else None
        if pid != self._vector_started[0]:
            started = None
            if pid is not None:
                started = rfc3339(time.time() - supervisor.uptime())
            self._vector_started = (pid, started)
        started = self._vector_started[1]
        inflight = upgrades.load()
        self.status.update(
            vector={
                "state": supervisor.state.value,
                "pid": supervisor.pid,
                "running": supervisor.state is VectorState.RUNNING,
                "shouldRun": supervisor.should_run,
                "startedAt": started,
                "version": supervisor.version,
            },
            pending_results=len(outbox.pending()),
            inflight_upgrade=None
            if inflight is None
            else {
                "actionId": inflight.action_id,
                "fromVersion": inflight.from_version,
                "toVersion": inflight.to_version,
                "startedAt": inflight.started_at,
            },
        )


async def run_daemon(settings: Settings, environ: Mapping[str, str] = os.environ) -> int:
    return await Daemon(settings, environ).run()
