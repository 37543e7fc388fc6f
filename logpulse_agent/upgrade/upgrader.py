"""The self-upgrade edge: launch the installer detached, observe it, reconcile after restart.

Flow (SPEC section 6). :meth:`Upgrader.start` writes the in-flight record first, downloads the
install script from ``install_url`` (:mod:`.download`), saves it 0700 under
``state_dir/upgrade/`` and runs ``/bin/sh <script>`` with ``LOGPULSE_VERSION=v<target>``, output
appended to ``log_dir/upgrade.log`` (:mod:`.installer_log`). The installer must survive the
agent's own restart, so it never runs as a plain child: where systemd is not PID 1 (containers,
tests) it is a process in its own session that a background thread reaps if it exits while we
live. The strategy is a :data:`~.launcher.Spawn` and can be replaced.

Under systemd the agent runs unprivileged as ``logpulse`` and cannot install anything itself.
It downloads nothing then: it only writes the validated version to
``state_dir/upgrade-request`` (atomically). The root ``logpulse-agent-upgrade.path`` unit sees the
file and starts the oneshot ``logpulse-agent-upgrade.service``, which removes the request,
re-validates the version, fetches the installer itself from the URL root configured and runs it
pinned to that version, appending to ``upgrade.log`` (``systemd/logpulse-agent-upgrade``). The
control plane can thus make root run nothing but the installer, at a strictly validated version.
The record's ``unit`` is then that service: the installer counts as running while the request
waits to be picked up or the service is activating; a request nobody picks up within
``pickup_timeout`` fails with a message naming the path unit.

After a restart, or while waiting, :meth:`Upgrader.reconcile` turns the record into a result:
:meth:`Upgrader.observe` gathers the facts, :func:`~.verdict.verdict` decides. The caller puts
that result into the journal and only *then* calls :meth:`clear_inflight`, so a crash between
the two re-reconciles instead of losing the result. Root's view of an upgrade probation
(:mod:`.probation`) is one of the facts: the new agent holds ``done`` until root kept its
release, the old one restarted by a rollback reports ``failed`` with root's reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import structlog

from logpulse_agent.clock import parse_rfc3339, utc_now
from logpulse_agent.controlplane.protocol import ActionResult
from logpulse_agent.errors import ActionError, StateError
from logpulse_agent.pids import pid_alive
from logpulse_agent.state import atomic
from logpulse_agent.state.layout import Layout
from logpulse_agent.upgrade.download import fetch_install_script
from logpulse_agent.upgrade.installer_log import InstallerLog
from logpulse_agent.upgrade.launcher import (
    Spawn,
    SpawnRequest,
    spawn_detached,
    systemd_is_pid1,
    systemd_unit_active,
)
from logpulse_agent.upgrade.probation import forget_finished, read_view
from logpulse_agent.upgrade.record import InFlightUpgrade, inflight_file, normalize_version
from logpulse_agent.upgrade.verdict import (
    UPGRADE_PATH_UNIT,
    UPGRADE_UNIT,
    Limits,
    Observation,
    Outcome,
    Verdict,
    verdict,
)

log = structlog.get_logger(__name__)


class Upgrader:
    """Starts the installer and reconciles its outcome; see the module docstring."""

    def __init__(
        self,
        *,
        install_url: str,
        layout: Layout,
        http: httpx.AsyncClient,
        allow_insecure_http: bool = False,
        systemd_pid1: Callable[[], bool] = systemd_is_pid1,
        spawn: Spawn | None = None,
        unit_active: Callable[[str], bool] = systemd_unit_active,
        now: Callable[[], datetime] = utc_now,
        max_age: timedelta = timedelta(minutes=30),
        download_timeout: float = 120.0,
        pickup_timeout: timedelta = timedelta(minutes=2),
    ) -> None:
        self.install_url = install_url
        self.layout = layout
        self.inflight_path = layout.upgrade_inflight
        self.request_path = layout.upgrade_request
        self.log_path = layout.upgrade_log
        self._record = inflight_file(self.inflight_path, now)
        self._log = InstallerLog(self.log_path, now)
        self._http = http
        self._allow_insecure_http = allow_insecure_http
        self._systemd_pid1 = systemd_pid1
        self._spawn = spawn
        self._unit_active = unit_active
        self._now = now
        self._max_age = max_age
        self._download_timeout = download_timeout
        self._pickup_timeout = pickup_timeout
        self._exit_codes: dict[int, int] = {}  # pid -> status, filled by the reaper thread
        self._gone_since: dict[str, datetime] = {}  # action id -> first seen without installer

    # --- starting ------------------------------------------------------------------------------
    def begin(self, record: InFlightUpgrade) -> None:
        """Record the upgrade as in flight (durably) before anything is announced or run; an
        earlier probation's outcome is forgotten (it is no answer to this upgrade)."""
        self.layout.state_dir.mkdir(parents=True, exist_ok=True)
        forget_finished(self.layout.upgrade_probation)
        self._record.save(record)

    async def start(self, record: InFlightUpgrade) -> None:
        """Record ``record`` on disk, fetch the installer and launch it detached.

        Returns once the installer runs (it is not awaited). Raises :class:`ActionError` when the
        download or the launch fails (the reason is also appended to ``upgrade.log``), and
        :class:`StateError` when the state directory cannot be written.
        """
        self.begin(record)
        version = f"v{record.to_version}"
        self._log.open_section(record.action_id, record.from_version, record.to_version)
        if self._spawn is None and self._systemd_pid1():
            self._request_privileged(record, version)
            return
        try:
            script = await self._fetch_script(record.action_id)
            launch = await (self._spawn or spawn_detached)(
                SpawnRequest(
                    script=script,
                    version=version,
                    log_path=self.log_path,
                    unit=f"logpulse-agent-upgrade-{short_id(record.action_id)}",
                    on_exit=self._on_exit,
                )
            )
        except Exception as exc:
            self._log.append(f"[logpulse-agent] upgrade to {version} not started: {exc}")
            raise
        self.begin(
            replace(record, pid=launch.pid, pid_create_time=launch.create_time, unit=launch.unit)
        )
        log.info(
            "upgrade.started",
            action_id=record.action_id,
            from_version=record.from_version,
            to_version=record.to_version,
            pid=launch.pid,
            unit=launch.unit,
        )

    def _request_privileged(self, record: InFlightUpgrade, version: str) -> None:
        """Ask the root upgrade service for ``version`` through the request file.

        The record names the unit before the request exists, so a crash in between can never
        leave an upgrade running that the record does not know about.
        """
        self.begin(replace(record, unit=UPGRADE_UNIT))
        try:
            atomic.write_text(self.request_path, version + "\n", mode=0o600)
        except StateError as exc:
            self._log.append(f"[logpulse-agent] upgrade to {version} not requested: {exc}")
            raise ActionError(f"cannot request the upgrade: {exc}") from None
        self._log.append(
            f"[logpulse-agent] requested {version} from {UPGRADE_PATH_UNIT} ({self.request_path})"
        )
        log.info(
            "upgrade.requested",
            action_id=record.action_id,
            from_version=record.from_version,
            to_version=record.to_version,
            request=str(self.request_path),
            unit=UPGRADE_UNIT,
        )

    async def _fetch_script(self, action_id: str) -> Path:
        body = await fetch_install_script(
            self._http,
            self.install_url,
            allow_insecure_http=self._allow_insecure_http,
            timeout=self._download_timeout,
        )
        directory = self.layout.upgrade_scripts
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in directory.glob("install-*.sh"):
            stale.unlink(missing_ok=True)
        script = directory / f"install-{short_id(action_id)}.sh"
        atomic.write_bytes(script, body, mode=0o700)
        return script

    def _on_exit(self, pid: int, status: int) -> None:
        """Called from the reaper thread when a detached installer exits while we live."""
        self._exit_codes[pid] = status
        self._log.append(f"[logpulse-agent] installer exited with status {status}")
        log.info("upgrade.installer_exited", pid=pid, status=status)

    # --- reconciling ---------------------------------------------------------------------------
    def inflight(self) -> InFlightUpgrade | None:
        """The recorded in-flight upgrade; a corrupt record is moved aside (logged) → None."""
        return self._record.load()

    def reconcile(
        self, running_version: str, *, settle: timedelta = timedelta(0)
    ) -> ActionResult | None:
        """The final result of the in-flight upgrade, or None (none recorded, or still running).

        ``done {fromVersion, toVersion}`` when ``running_version`` is the target, else
        ``failed {error, fromVersion, log}`` as :func:`~.verdict.verdict` decides. ``settle`` is
        how long a finished installer may take to get the agent restarted before that counts
        as a failure; the default 0 suits start-up, when the restart has happened. The record
        is left in place: call :meth:`clear_inflight` after the result is in the journal.
        """
        record = self.inflight()
        if record is None:
            return None
        observed = self.observe(record, running_version)
        limits = Limits(self._max_age, self._pickup_timeout, settle)
        return self._conclude(observed, verdict(observed, limits))

    def observe(self, record: InFlightUpgrade, running_version: str) -> Observation:
        """The facts about ``record`` now: versions, age, the installer's process or unit."""
        now = self._now()
        running = normalize_version(running_version)
        age = now - (parse_rfc3339(record.started_at) or now - self._max_age)
        status = self._exit_codes.get(record.pid) if record.pid is not None else None
        alive = False
        if running != record.to_version:  # done needs no look at processes or units
            alive = status is None and self._installer_alive(record)
        unclaimed = (
            alive
            and record.unit == UPGRADE_UNIT
            and self.request_path.exists()
            and not self._unit_active(UPGRADE_UNIT)
        )
        gone_since = now if alive else self._gone_since.setdefault(record.action_id, now)
        return Observation(
            record,
            running,
            age,
            status,
            alive,
            unclaimed,
            now - gone_since,
            self.request_path,
            read_view(self.layout.upgrade_probation),
        )

    def _conclude(self, observed: Observation, decided: Verdict) -> ActionResult | None:
        """Turn a verdict into the action's result (withdrawing an unclaimed request first)."""
        record = observed.record
        if decided.outcome is Outcome.WAIT:
            return None
        if decided.outcome is Outcome.DONE:
            log.info("upgrade.succeeded", action_id=record.action_id, to_version=record.to_version)
            versions = {"fromVersion": record.from_version, "toVersion": record.to_version}
            return ActionResult(record.action_id, "done", versions)
        if decided.withdraw_request:
            self.request_path.unlink(missing_ok=True)
            self._log.append(f"[logpulse-agent] {decided.error}")
        log.error("upgrade.failed", action_id=record.action_id, error=decided.error)
        result = {
            "error": decided.error,
            "fromVersion": record.from_version,
            "log": self.log_tail(record.action_id),
        }
        return ActionResult(record.action_id, "failed", result)

    def clear_inflight(self) -> None:
        """Forget the in-flight upgrade (after its result is safely in the journal)."""
        record = self.inflight()
        self._record.remove()
        forget_finished(self.layout.upgrade_probation)
        if record is not None:
            self._gone_since.pop(record.action_id, None)
            if record.unit == UPGRADE_UNIT:
                # A result is final: a request still lying there must not install later.
                self.request_path.unlink(missing_ok=True)
            script = self.layout.upgrade_scripts / f"install-{short_id(record.action_id)}.sh"
            script.unlink(missing_ok=True)

    def _installer_alive(self, record: InFlightUpgrade) -> bool:
        if record.pid is not None:
            return pid_alive(record.pid, record.pid_create_time)
        if record.unit == UPGRADE_UNIT and self.request_path.exists():
            return True  # asked for, not yet picked up by the path unit
        if record.unit is not None:
            return self._unit_active(record.unit)
        return False

    def log_tail(self, action_id: str) -> str:
        """The end of ``upgrade.log``'s section for ``action_id``, tokens masked."""
        return self._log.tail(action_id)


def short_id(action_id: str) -> str:
    """A unit- and file-name-safe form of an action id (the server chooses ids)."""
    safe = re.sub(r"[^A-Za-z0-9]", "", action_id)[:12]
    return safe or "action"
