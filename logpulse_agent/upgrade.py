"""The self-upgrade edge: fetch the install script, run it detached, reconcile after restart.

Flow (SPEC section 6). :meth:`Upgrader.start` writes the in-flight record first, downloads the
install script from ``install_url`` (TLS verified by the injected client, no redirect from
https to http, 1 MiB cap, non-2xx is an :class:`ActionError`), saves it 0700 under
``state_dir/upgrade/`` and runs ``/bin/sh <script>`` with ``LOGPULSE_VERSION=v<target>``, output
appended to ``log_dir/upgrade.log``. The installer must survive the agent's own restart, so it
never runs as a plain child: where systemd is not PID 1 (containers, tests) it is a process in its
own session that a background thread reaps if it exits while we live. The strategy is a
:data:`Spawn` and can be replaced.

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
``done`` once the agent runs the target version, ``failed`` with the log tail once the installer
is gone (or older than ``max_age``) and the version did not change, ``None`` while it still runs.
The caller puts that result into the outbox and only *then* calls :meth:`clear_inflight`, so a
crash between the two re-reconciles instead of losing the result. Under upgrade probation
(:mod:`logpulse_agent.probation`) root's verdict comes first: the new agent holds ``done``
until root kept its release, and the old agent restarted by a rollback reports ``failed`` with
root's reason (``probation: restarted 5 times; rolled back from 0.2.0 to 0.1.0``).

On disk, ``state_dir/upgrade-inflight.json`` (mode 0600)::

    {"actionId", "fromVersion", "toVersion", "startedAt", "pid", "pidCreateTime", "unit"}

``pid``/``pidCreateTime`` identify a detached installer (a reused pid is not mistaken for it),
``unit`` a systemd one; all three are null until the installer has been launched.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import structlog

from logpulse_agent import atomic, probation
from logpulse_agent.errors import ActionError, SettingsError, StateError
from logpulse_agent.outbox import utc_now
from logpulse_agent.protocol import ActionResult
from logpulse_agent.redact import redact
from logpulse_agent.settings import check_url
from logpulse_agent.upgrade_launch import (
    Launch,
    Spawn,
    SpawnRequest,
    pid_alive,
    spawn_detached,
    spawn_systemd_run,
    systemd_is_pid1,
    systemd_unit_active,
)

log = structlog.get_logger(__name__)

# The SPEC's pattern, used with fullmatch and ASCII-only \d: a trailing newline or non-ASCII
# digits do not slip through ``$``/``\d`` the way they would with re.match.
VERSION_RE = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$", re.ASCII)
MAX_VERSION_LEN = 64
MAX_SCRIPT_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
LOG_TAIL_LINES = 40
LOG_TAIL_BYTES = 64 * 1024
LOG_ROTATE_BYTES = 1024 * 1024
INFLIGHT_FILE = "upgrade-inflight.json"
REQUEST_FILE = "upgrade-request"
UPGRADE_UNIT = "logpulse-agent-upgrade.service"
UPGRADE_PATH_UNIT = "logpulse-agent-upgrade.path"


# --- the target version -------------------------------------------------------------------------


def parse_target_version(payload: object) -> str:
    """The ``targetVersion`` of an ``upgrade_agent`` payload without its leading ``v``.

    Raises :class:`ActionError` with a one-line message when the payload is not an object, the
    field is missing or not a string, or the string is not strictly ``[v]X.Y.Z[-pre][+build]``:
    the value reaches a shell, so nothing else gets through.
    """
    if not isinstance(payload, dict):
        raise ActionError("upgrade_agent payload must be an object with a 'targetVersion'")
    if "targetVersion" not in payload:
        raise ActionError("upgrade_agent payload has no 'targetVersion'")
    value = payload["targetVersion"]
    if not isinstance(value, str):
        raise ActionError("'targetVersion' must be a string such as \"0.4.2\"")
    if len(value) > MAX_VERSION_LEN or not VERSION_RE.fullmatch(value):
        shown = redact(value[:40]) + ("…" if len(value) > 40 else "")
        raise ActionError(f"'targetVersion' {shown!r} is not a version such as 0.4.2")
    return normalize_version(value)


def normalize_version(version: str) -> str:
    """``version`` without one leading ``v``: ``v0.4.2`` and ``0.4.2`` compare equal."""
    return version[1:] if version.startswith("v") else version


@dataclass(frozen=True)
class InFlightUpgrade:
    """An upgrade that was started and has no final result yet (versions without ``v``)."""

    action_id: str
    from_version: str
    to_version: str
    started_at: str  # RFC 3339 UTC
    pid: int | None = None
    pid_create_time: float | None = None
    unit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, obj: object) -> InFlightUpgrade:
        """Parse what :meth:`to_json` wrote; :class:`StateError` when it is not that shape."""
        if not isinstance(obj, dict):
            raise StateError("in-flight upgrade record is not a JSON object")
        values: dict[str, Any] = {}
        for name, kinds in _FIELD_TYPES.items():
            value = obj.get(_camel(name))
            optional = name in ("pid", "pid_create_time", "unit")
            if value is None and optional:
                continue
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise StateError(
                    f"in-flight upgrade record: field {_camel(name)!r} is missing or mistyped"
                )
            values[name] = value
        return cls(**values)


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "action_id": str,
    "from_version": str,
    "to_version": str,
    "started_at": str,
    "pid": int,
    "pid_create_time": (int, float),
    "unit": str,
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Upgrader:
    """Starts the installer and reconciles its outcome; see the module docstring."""

    def __init__(
        self,
        *,
        install_url: str,
        state_dir: Path,
        log_dir: Path,
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
        self.state_dir = Path(state_dir)
        self.log_path = Path(log_dir) / "upgrade.log"
        self.inflight_path = self.state_dir / INFLIGHT_FILE
        self.request_path = self.state_dir / REQUEST_FILE
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

    # --- starting -------------------------------------------------------------------------

    def begin(self, record: InFlightUpgrade) -> None:
        """Record the upgrade as in flight (durably) before anything is announced or run."""
        probation.forget_finished(self.state_dir)
        self._write_inflight(record)

    async def start(self, record: InFlightUpgrade) -> None:
        """Record ``record`` on disk, fetch the installer and launch it detached.

        Returns once the installer runs (it is not awaited). Raises :class:`ActionError` when the
        download or the launch fails (the reason is also appended to ``upgrade.log``), and
        :class:`StateError` when the state directory cannot be written.
        """
        self._write_inflight(record)
        version = f"v{record.to_version}"
        self._open_log_section(record)
        if self._spawn is None and self._systemd_pid1():
            self._request_privileged(record, version)
            return
        try:
            script = await self._fetch_script(record.action_id)
            spawn = self._spawn or spawn_detached
            launch = await spawn(
                SpawnRequest(
                    script=script,
                    version=version,
                    log_path=self.log_path,
                    unit=f"logpulse-agent-upgrade-{_short_id(record.action_id)}",
                    on_exit=self._on_exit,
                )
            )
        except Exception as exc:
            self._append_log(f"[logpulse-agent] upgrade to {version} not started: {exc}")
            raise
        self._write_inflight(
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
        self._write_inflight(replace(record, unit=UPGRADE_UNIT))
        try:
            atomic.write_text(self.request_path, version + "\n", mode=0o600)
        except StateError as exc:
            self._append_log(f"[logpulse-agent] upgrade to {version} not requested: {exc}")
            raise ActionError(f"cannot request the upgrade: {exc}") from None
        self._append_log(
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
        try:
            body = await asyncio.wait_for(self._download(), self._download_timeout)
        except asyncio.TimeoutError:
            raise ActionError(
                f"downloading the install script from {redact(self.install_url)} timed out "
                f"after {self._download_timeout:g} s"
            ) from None
        directory = self.state_dir / "upgrade"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in directory.glob("install-*.sh"):
            stale.unlink(missing_ok=True)
        script = directory / f"install-{_short_id(action_id)}.sh"
        atomic.write_bytes(script, body, mode=0o700)
        return script

    async def _download(self) -> bytes:
        url = self.install_url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                check_url("install_url", url, self._allow_insecure_http)
            except SettingsError as exc:
                raise ActionError(f"refusing to fetch the install script: {exc}") from None
            try:
                target, body = await self._get_once(url)
            except httpx.HTTPError as exc:
                reason = redact(str(exc)) or type(exc).__name__
                raise ActionError(
                    f"downloading the install script from {redact(url)} failed: {reason}"
                ) from None
            if target is None:
                if not body.strip():
                    raise ActionError(f"install script at {redact(url)} is empty")
                return body
            if urlsplit(url).scheme == "https" and urlsplit(target).scheme != "https":
                raise ActionError(
                    f"install script at {redact(url)} redirects to {redact(target)}: "
                    "a redirect from https to plain http is refused"
                )
            url = target
        raise ActionError(f"install script at {redact(self.install_url)}: too many redirects")

    async def _get_once(self, url: str) -> tuple[str | None, bytes]:
        """One GET: ``(redirect target, b"")`` or ``(None, body)``; ActionError on non-2xx."""
        request = self._http.build_request("GET", url)
        # The client may be shared with the control-plane calls: never send it credentials.
        request.headers.pop("Authorization", None)
        response = await self._http.send(request, stream=True, follow_redirects=False)
        try:
            if response.is_redirect and "location" in response.headers:
                return urljoin(url, response.headers["location"]), b""
            if not response.is_success:
                raise ActionError(
                    f"downloading the install script from {redact(url)} failed: "
                    f"HTTP {response.status_code}"
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_SCRIPT_BYTES:
                    raise ActionError(
                        f"install script at {redact(url)} is larger than "
                        f"{MAX_SCRIPT_BYTES // 1024} KiB; refusing it"
                    )
            return None, bytes(body)
        finally:
            await response.aclose()

    def _on_exit(self, pid: int, status: int) -> None:
        """Called from the reaper thread when a detached installer exits while we live."""
        self._exit_codes[pid] = status
        self._append_log(f"[logpulse-agent] installer exited with status {status}")
        log.info("upgrade.installer_exited", pid=pid, status=status)

    # --- reconciling ----------------------------------------------------------------------

    def inflight(self) -> InFlightUpgrade | None:
        """The recorded in-flight upgrade; a corrupt record is moved aside (logged) → None."""
        try:
            data = atomic.read_json(self.inflight_path)
            return None if data is None else InFlightUpgrade.from_json(data)
        except StateError as exc:
            if not self.inflight_path.exists():
                raise
            moved = atomic.quarantine(self.inflight_path, self._now)
            log.error("upgrade.inflight_corrupt", problem=str(exc), moved_to=str(moved))
            return None

    def reconcile(
        self, running_version: str, *, settle: timedelta = timedelta(0)
    ) -> ActionResult | None:
        """The final result of the in-flight upgrade, or None (none recorded, or still running).

        ``done {fromVersion, toVersion}`` when ``running_version`` is the target. Otherwise
        ``failed {error, fromVersion, log}`` once the installer is gone, or has run past
        ``max_age``. ``settle`` is how long a finished installer may take to get the agent
        restarted before that counts as a failure; the default 0 suits start-up, when the
        restart has happened. A non-zero exit seen by our reaper fails at once. The record is
        left in place: call :meth:`clear_inflight` after the result is in the outbox.
        """
        record = self.inflight()
        if record is None:
            return None
        running = normalize_version(running_version)
        # Probation (SPEC 11.4) first: the new release is not done until root kept it.
        held = probation.verdict(probation.read_view(self.state_dir), record.to_version, running)
        if held is probation.WAIT:
            return None
        if isinstance(held, str):
            return self._failed(record, held)
        if running == record.to_version:
            log.info("upgrade.succeeded", action_id=record.action_id, to_version=running)
            result = {"fromVersion": record.from_version, "toVersion": record.to_version}
            return ActionResult(record.action_id, "done", result)
        now = self._now()
        age = now - _parse_time(record.started_at, now - self._max_age)
        status = self._exit_codes.get(record.pid) if record.pid is not None else None
        alive = status is None and self._installer_alive(record)
        unclaimed = (
            alive
            and record.unit == UPGRADE_UNIT
            and self.request_path.exists()
            and not self._unit_active(UPGRADE_UNIT)
        )
        if unclaimed and age >= self._pickup_timeout:
            self.request_path.unlink(missing_ok=True)
            seconds = int(self._pickup_timeout.total_seconds())
            error = (
                f"upgrade to {record.to_version} was not picked up within {seconds} s: "
                f"nothing consumed {self.request_path}; is {UPGRADE_PATH_UNIT} enabled? "
                f"(systemctl enable --now {UPGRADE_PATH_UNIT})"
            )
            self._append_log(f"[logpulse-agent] {error}")
        elif alive and age < self._max_age:
            return None
        elif alive:
            minutes = int(self._max_age.total_seconds() // 60)
            error = (
                f"upgrade to {record.to_version} did not finish within {minutes} minutes: "
                f"the installer is still running and the agent still runs {running}"
            )
        elif status:
            error = (
                f"upgrade to {record.to_version} failed: the installer exited with status {status}"
            )
        elif record.pid is None and record.unit is None:
            error = (
                f"upgrade to {record.to_version} did not take effect: the agent stopped before "
                f"the installer was launched and still runs {running}"
            )
        else:
            gone_since = self._gone_since.setdefault(record.action_id, now)
            if now - gone_since < settle:
                return None
            error = (
                f"upgrade to {record.to_version} did not take effect: agent still runs {running}"
            )
        return self._failed(record, error)

    def _failed(self, record: InFlightUpgrade, error: str) -> ActionResult:
        log.error("upgrade.failed", action_id=record.action_id, error=error)
        result = {
            "error": error,
            "fromVersion": record.from_version,
            "log": self.log_tail(record.action_id),
        }
        return ActionResult(record.action_id, "failed", result)

    def clear_inflight(self) -> None:
        """Forget the in-flight upgrade (after its result is safely in the outbox)."""
        record = self.inflight()
        atomic.remove(self.inflight_path)
        probation.forget_finished(self.state_dir)
        if record is not None:
            self._gone_since.pop(record.action_id, None)
            if record.unit == UPGRADE_UNIT:
                # A result is final: a request still lying there must not install later.
                self.request_path.unlink(missing_ok=True)
            (self.state_dir / "upgrade" / f"install-{_short_id(record.action_id)}.sh").unlink(
                missing_ok=True
            )

    def _installer_alive(self, record: InFlightUpgrade) -> bool:
        if record.pid is not None:
            return pid_alive(record.pid, record.pid_create_time)
        if record.unit == UPGRADE_UNIT and self.request_path.exists():
            return True  # asked for, not yet picked up by the path unit
        if record.unit is not None:
            return self._unit_active(record.unit)
        return False

    # --- upgrade.log ----------------------------------------------------------------------

    def log_tail(self, action_id: str, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines ``upgrade.log`` holds for ``action_id``, tokens masked."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        all_lines = text.splitlines()
        marker = _section_marker(action_id)
        starts = [i for i, line in enumerate(all_lines) if marker in line]
        section = all_lines[starts[-1] + 1 :] if starts else all_lines
        return redact("\n".join(section[-lines:]))

    def _open_log_section(self, record: InFlightUpgrade) -> None:
        try:
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(self.log_path, self.log_path.with_name("upgrade.log.1"))
        except OSError:
            pass  # missing (first upgrade) or not rotatable: appending below still works
        stamp = self._now().astimezone(timezone.utc).isoformat(timespec="seconds")
        self._append_log(
            f"=== {stamp} {_section_marker(record.action_id)}: "
            f"{record.from_version} -> v{record.to_version} ==="
        )

    def _append_log(self, line: str) -> None:
        try:
            self.log_path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            fd = os.open(
                self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640
            )
            try:
                os.write(fd, (redact(line) + "\n").encode("utf-8", errors="replace"))
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("upgrade.log_unwritable", path=str(self.log_path), error=str(exc))

    def _write_inflight(self, record: InFlightUpgrade) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        atomic.write_json(self.inflight_path, record.to_json(), mode=0o600)


def _short_id(action_id: str) -> str:
    """A unit- and file-name-safe form of an action id (the server chooses ids)."""
    safe = re.sub(r"[^A-Za-z0-9]", "", action_id)[:12]
    return safe or "action"


def _section_marker(action_id: str) -> str:
    return f"logpulse-agent upgrade action {' '.join(action_id.split())[:80]}"


def _parse_time(value: str, default: datetime) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


__all__ = [
    "REQUEST_FILE",
    "UPGRADE_UNIT",
    "VERSION_RE",
    "InFlightUpgrade",
    "Launch",
    "Spawn",
    "SpawnRequest",
    "Upgrader",
    "normalize_version",
    "parse_target_version",
    "spawn_detached",
    "spawn_systemd_run",
]
