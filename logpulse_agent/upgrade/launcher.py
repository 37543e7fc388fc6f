"""Launching the installer so that it survives the agent's own restart.

Two strategies (a :data:`Spawn` each): a detached process in its own session, reaped by a
background thread if it ends while the agent lives (hosts without systemd as PID 1: containers,
tests), and ``systemd-run`` (an agent running as root under systemd). The unprivileged agent under
systemd uses neither: :mod:`.upgrader` writes a request file for the root path unit.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import structlog

from logpulse_agent.errors import ActionError

log = structlog.get_logger(__name__)

# Unit states in which the oneshot upgrade service is still at work.
_BUSY_STATES = frozenset({"active", "activating", "deactivating", "reloading"})


# --- launching the installer ------------------------------------------------------------------


@dataclass(frozen=True)
class SpawnRequest:
    """What to launch: ``/bin/sh script`` with ``LOGPULSE_VERSION=version``, output appended
    to ``log_path``."""

    script: Path
    version: str  # "v0.4.2", already validated
    log_path: Path
    unit: str  # systemd unit name to use, when the strategy makes one
    on_exit: Callable[[int, int], None] | None = None  # (pid, status) if we see it exit


@dataclass(frozen=True)
class Launch:
    """What a strategy started: a detached ``pid`` (with its create time) or a systemd ``unit``."""

    pid: int | None = None
    create_time: float | None = None
    unit: str | None = None


Spawn = Callable[[SpawnRequest], Awaitable[Launch]]
SH = "/bin/sh"


def systemd_is_pid1() -> bool:
    """True when systemd manages this host (``/run/systemd/system`` and PID 1 is ``systemd``)."""
    try:
        return (
            Path("/run/systemd/system").is_dir()
            and Path("/proc/1/comm").read_text().strip() == "systemd"
        )
    except OSError:
        return False


def systemd_unit_active(unit: str) -> bool:
    """True while ``unit`` is active, activating or deactivating (``systemctl is-active``).

    The state is read from the output, not the exit status: ``is-active`` exits non-zero for
    ``activating``, which is the whole life of a oneshot service.
    """
    try:
        done = subprocess.run(
            ["systemctl", "is-active", unit],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.stdout.decode("ascii", "replace").strip() in _BUSY_STATES


async def spawn_detached(request: SpawnRequest) -> Launch:
    """Run the installer in its own session, not awaited; a daemon thread reaps it.

    Used where systemd is not PID 1. The process keeps running when the agent exits (it is
    not killed with the agent's process group or session), and no zombie is left while we live.
    """
    return _popen_detached(request)


def _popen_detached(request: SpawnRequest) -> Launch:
    # The bootstrap token has no business in an upgrade (the host is enrolled already).
    env = {k: v for k, v in os.environ.items() if k != "LOGPULSE_ENROL_TOKEN"}
    env["LOGPULSE_VERSION"] = request.version
    request.log_path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    fd = os.open(request.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        try:
            process = subprocess.Popen(
                [SH, str(request.script)],
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                env=env,
                cwd="/",
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise ActionError(f"cannot start the installer: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    # Read before the reaper may collect it: a zombie still has its create time.
    create_time: float | None
    try:
        create_time = psutil.Process(process.pid).create_time()
    except psutil.Error:
        create_time = None

    def reap() -> None:
        status = process.wait()
        if request.on_exit is not None:
            request.on_exit(process.pid, status)

    threading.Thread(target=reap, name=f"reap-installer-{process.pid}", daemon=True).start()
    return Launch(pid=process.pid, create_time=create_time)


async def spawn_systemd_run(request: SpawnRequest) -> Launch:
    """Run the installer as its own transient systemd unit, outside the agent's cgroup.

    ``systemd-run`` returns once the unit is started; ``--collect`` removes it after it exits.
    Only for an agent that runs as root and is given this strategy explicitly (``spawn=``): the
    default under systemd is the request file of the module docstring, since the ``logpulse``
    user may not start units.
    """
    argv = [
        "systemd-run",
        f"--unit={request.unit}",
        "--collect",
        "--quiet",
        f"--setenv=LOGPULSE_VERSION={request.version}",
        "--property=StandardInput=null",
        f"--property=StandardOutput=append:{request.log_path}",
        f"--property=StandardError=append:{request.log_path}",
        SH,
        str(request.script),
    ]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        raise ActionError(f"cannot run systemd-run: {exc.strerror or exc}") from None
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise ActionError("systemd-run did not return within 30 s") from None
    if process.returncode != 0:
        detail = " ".join(stderr.decode("utf-8", "replace").split())[:300]
        raise ActionError(f"systemd-run failed with status {process.returncode}: {detail}")
    return Launch(unit=request.unit)
