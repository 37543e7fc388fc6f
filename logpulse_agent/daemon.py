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
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone

import structlog

from logpulse_agent import __version__, atomic
from logpulse_agent.actions import ActionExecutor, ActionLedger
from logpulse_agent.client import ControlPlaneClient, RetryPolicy, make_http_client
from logpulse_agent.config_decisions import retry_ceiling, should_poll_now
from logpulse_agent.config_sync import ConfigSync
from logpulse_agent.enrol import enrol, find_bootstrap_token
from logpulse_agent.errors import AgentError
from logpulse_agent.heartbeat import HeartbeatLoop
from logpulse_agent.outbox import Outbox
from logpulse_agent.probation import Promoter
from logpulse_agent.protocol import ActionResult, ConfigErrorReport, Heartbeat
from logpulse_agent.sdnotify import Notifier
from logpulse_agent.settings import Settings
from logpulse_agent.state import Identity, StateStore
from logpulse_agent.status import StatusTracker
from logpulse_agent.upgrade import Upgrader
from logpulse_agent.vector.cli import validate
from logpulse_agent.vector.options import render_global_options, secret_command
from logpulse_agent.vector.supervisor import VectorState, VectorSupervisor

log = structlog.get_logger(__name__)

# Variables that must never reach Vector's environment (it would expose them to its config).
PRIVATE_ENV = ("LOGPULSE_ENROL_TOKEN",)


async def guarded(name: str, factory: Callable[[], Awaitable[None]]) -> None:
    """Run ``factory()`` forever: an unexpected exception is logged and the task restarted."""
    delay = 1.0
    while True:
        try:
            await factory()
            log.error("task.returned", task=name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task.crashed", task=name, restart_in=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 60.0)


async def cancel_and_wait(tasks: list[asyncio.Task[None]], retry: float = 0.1) -> None:
    """Cancel ``tasks`` and return once every one has ended.

    A task still running is cancelled again every ``retry`` seconds: on Python < 3.12
    ``asyncio.wait_for`` swallows a cancellation that arrives just as the future it waits for
    completes (https://github.com/python/cpython/issues/86296), and every loop here waits for
    its wake-up event that way, so one ``cancel()`` can be lost and the agent would hang on
    SIGTERM.
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry)


class Daemon:
    """Everything ``run`` owns; ``request_stop()`` is what the signal handlers call."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] = os.environ) -> None:
        self.settings = settings
        self.environ = environ
        self.store = StateStore(settings.config_dir, settings.state_dir)
        self.status = StatusTracker(self.store.status_path, __version__)
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
        while not self.store.is_enrolled():
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
                    await enrol(self.settings, self.store, token, api_url=self.settings.api_url)
                    break
                except AgentError as exc:
                    if told != str(exc):
                        log.error("agent.enrol_failed", error=str(exc))
                        told = str(exc)
                    check_every = retry_ceiling(self.settings.poll_interval)
            if await self._sleep_or_stop(check_every):
                return None
        return self.store.load_identity()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        self.store.ensure_dirs()
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
        settings, store = self.settings, self.store
        poll = settings.poll_interval
        atomic.write_text(
            store.globals_config,
            render_global_options(store.vector_data_dir, secret_command(store.token_path)),
            mode=0o640,
        )
        vector_env = self._vector_env()
        supervisor = VectorSupervisor(
            vector_bin=settings.vector_bin,
            config_paths=[store.globals_config, store.live_config],
            log_path=settings.log_dir / "vector.log",
            pid_path=store.vector_pid_path,
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
                token=store.load_token(),
                retry=RetryPolicy(initial=min(1.0, poll / 10), ceiling=retry_ceiling(poll)),
            )
            # Heartbeats retry briefly and then report fresh state next time (HeartbeatLoop).
            brief_retry = RetryPolicy(
                initial=min(1.0, poll / 10), ceiling=retry_ceiling(poll), max_attempts=3
            )
            outbox = Outbox(store.outbox_path)
            upgrader = Upgrader(
                install_url=settings.install_url,
                state_dir=settings.state_dir,
                log_dir=settings.log_dir,
                http=http,
                allow_insecure_http=settings.allow_insecure_http,
            )

            async def validate_candidate(candidate: os.PathLike[str]) -> None:
                await validate(settings.vector_bin, [store.globals_config, candidate], vector_env)

            sync = ConfigSync(
                store=store,
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

            promoter = Promoter(settings.state_dir, __version__)
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
                on_success=lambda body: promoter.after_heartbeat(
                    vector_running=body.vector_running, config_empty=sync.applied.empty
                ),
            )
            executor = ActionExecutor(
                outbox=outbox,
                ledger=ActionLedger(store.ledger_path),
                upgrader=upgrader,
                platform=settings.platform,
                agent_version=__version__,
                notify=heartbeat.wake,
            )
            executor_box.append(executor)
            # An upgrade this process is the result of: done/failed into the outbox (durable)
            # before the in-flight record goes; the first heartbeat carries it.
            executor.reconcile()

            # Vector state changes are published as they happen; the slow tick catches the
            # rest (uptime start, pending results, the in-flight upgrade record).
            supervisor.on_state = lambda _: self._publish_vector(supervisor, outbox, upgrader)

            async def publish_status() -> None:
                while True:
                    self._publish_vector(supervisor, outbox, upgrader)
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
            self._publish_vector(supervisor, outbox, upgrader)
            log.info("agent.stopped")

    def _publish_vector(self, supervisor: VectorSupervisor, outbox: Outbox, up: Upgrader) -> None:
        # Wall-clock start of the current Vector, computed once per pid so the snapshot only
        # changes (and is rewritten) when something really changed.
        pid = supervisor.pid if supervisor.state is VectorState.RUNNING else None
        if pid != self._vector_started[0]:
            started = None
            if pid is not None:
                ts = time.time() - supervisor.uptime()
                started = datetime.fromtimestamp(int(ts), timezone.utc).isoformat()
            self._vector_started = (pid, started)
        started = self._vector_started[1]
        inflight = up.inflight()
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
