"""Spawning Vector, its pid file, and recognising a Vector left behind by a killed agent.

Vector runs in its own session (``start_new_session=True``): a Ctrl-C on the agent's terminal
goes to the agent's process group only, so the agent can stop Vector gracefully itself; and
Vector survives the agent's death (SIGKILL, OOM) instead of dying with it. Its stdin is
/dev/null and its stdout and stderr are one ``O_APPEND`` descriptor on ``vector.log``.

A Vector is *ours* when its command line carries every ``--config-yaml <path>`` we pass, and
one more proof holds: it is the very process the pid file names (same pid *and* start time, so
a recycled pid never matches), it carries our marker variable in its environment, or it runs
our Vector binary. An unrelated process that happens to reuse the pid is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import structlog

from logpulse_agent.errors import StateError
from logpulse_agent.state import atomic

log = structlog.get_logger("logpulse_agent.vector.supervisor")

# Set in Vector's environment; its value is the pid file path of the agent that spawned it.
MARKER_ENV = "LOGPULSE_VECTOR_PIDFILE"
# Vector throttles every internal log call site by default (lib/tracing-limit; window set by
# --internal-log-rate-limit, default 10 s): a second "Vector has reloaded." inside the window
# becomes "Internal log [...] is being suppressed" and a third is not logged at all. A 1 s window
# keeps the flood protection; VectorSupervisor.reload() spaces SIGHUPs further apart than that.
LOG_RATE_LIMIT = 1
_CREATE_TIME_SLACK = 0.05


@dataclass(frozen=True)
class PidRecord:
    """What the pid file says about the Vector the agent last spawned."""

    pid: int
    create_time: float | None = None


@dataclass(frozen=True)
class ProcessInfo:
    """What psutil could tell about a process (None where it was denied)."""

    pid: int
    cmdline: tuple[str, ...]
    exe: str | None
    create_time: float | None
    marker: str | None


def vector_args(vector_bin: str, config_paths: Sequence[Path]) -> list[str]:
    """``vector --config-yaml P1 --config-yaml P2 …``: every file parsed as YAML whatever its
    name; by name alone, anything not ending in .yaml/.yml/.json is read as TOML
    (``Format::from_path`` / ``Format::default`` in vectordotdev/vector src/config/format.rs)."""
    args = [vector_bin, "--internal-log-rate-limit", str(LOG_RATE_LIMIT)]
    for path in config_paths:
        args += ["--config-yaml", str(path)]
    return args


def has_config_args(cmdline: Sequence[str], config_paths: Sequence[Path]) -> bool:
    """Whether ``cmdline`` passes every one of ``config_paths`` with ``--config-yaml``."""
    pairs = set(itertools.pairwise(cmdline))
    prefix = "--config-yaml="
    pairs |= {("--config-yaml", arg[len(prefix) :]) for arg in cmdline if arg.startswith(prefix)}
    return bool(config_paths) and all(("--config-yaml", str(p)) in pairs for p in config_paths)


def is_our_vector(
    info: ProcessInfo,
    *,
    config_paths: Sequence[Path],
    pid_path: Path,
    record: PidRecord | None,
    binaries: Iterable[str],
) -> bool:
    """Whether ``info`` is a Vector this agent spawned on these config paths (pure)."""
    if not has_config_args(info.cmdline, config_paths):
        return False
    if (
        record is not None
        and record.pid == info.pid
        and record.create_time is not None
        and info.create_time is not None
        and abs(record.create_time - info.create_time) <= _CREATE_TIME_SLACK
    ):
        return True
    if info.marker == str(pid_path):
        return True
    shown = {info.exe, info.cmdline[0] if info.cmdline else None}
    return any(name in shown for name in binaries)


def read_pid_file(path: Path) -> PidRecord | None:
    """The pid file's record; None when it is missing or unusable."""
    try:
        value = atomic.read_json(path)
    except StateError:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return PidRecord(value)
    if isinstance(value, dict) and isinstance(value.get("pid"), int) and value["pid"] > 0:
        created = value.get("create_time")
        if isinstance(created, bool) or not isinstance(created, (int, float)):
            return PidRecord(value["pid"])
        return PidRecord(value["pid"], float(created))
    return None


def write_pid_file(path: Path, pid: int) -> None:
    """Record ``pid`` and its start time atomically (raises :class:`StateError`)."""
    try:
        created: float | None = psutil.Process(pid).create_time()
    except psutil.Error:
        created = None
    atomic.write_json(path, {"pid": pid, "create_time": created})


def remove_pid_file(path: Path, pid: int) -> None:
    """Remove the pid file if it still names ``pid`` (a newer Vector may own it by now)."""
    record = read_pid_file(path)
    if record is not None and record.pid == pid:
        with contextlib.suppress(StateError):
            atomic.remove(path)


def binaries_of(vector_bin: str) -> set[str]:
    """The spellings of ``vector_bin`` a process running it may show (argv[0], resolved exe)."""
    names = {vector_bin}
    found = shutil.which(vector_bin)  # a bare "vector" is looked up on PATH, as exec does
    if found:
        names |= {found, os.path.realpath(found)}
    return names


def _info(proc: psutil.Process) -> ProcessInfo | None:
    try:
        with proc.oneshot():
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            cmdline = tuple(proc.cmdline())
            created = proc.create_time()
            try:
                exe: str | None = proc.exe()
            except psutil.AccessDenied:
                exe = None
        try:
            marker = proc.environ().get(MARKER_ENV)
        except psutil.AccessDenied:
            marker = None
    except psutil.Error:  # gone meanwhile, or not ours to inspect
        return None
    return ProcessInfo(proc.pid, cmdline, exe, created, marker)


def find_stale(
    *, vector_bin: str, config_paths: Sequence[Path], pid_path: Path, exclude: Iterable[int]
) -> list[ProcessInfo]:
    """Live Vectors on our config paths that this supervisor does not own (blocking).

    Looks at the pid named by the pid file and scans the process table, so a Vector spawned
    just before the agent was killed, too early to be in the pid file, is found as well.
    """
    record = read_pid_file(pid_path)
    skip = set(exclude)
    binaries = binaries_of(vector_bin)
    found: dict[int, ProcessInfo] = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or ()
        if proc.pid in skip or not has_config_args(cmdline, config_paths):
            continue  # cheap filter first: environ and exe are only read for candidates
        info = _info(proc)
        if info is not None and is_our_vector(
            info, config_paths=config_paths, pid_path=pid_path, record=record, binaries=binaries
        ):
            found[info.pid] = info
    return list(found.values())


async def stop_foreign(info: ProcessInfo, grace: float, poll: float = 0.05) -> bool:
    """SIGTERM a process that is not our child, SIGKILL it after ``grace`` seconds.

    We cannot reap it (init or a subreaper will); it counts as gone once it is a zombie.
    Returns True when it had to be killed.
    """
    try:
        proc = psutil.Process(info.pid)
        created = info.create_time
        if created is not None and abs(proc.create_time() - created) > _CREATE_TIME_SLACK:
            return False  # the pid was recycled since we looked
        proc.terminate()
    except psutil.Error:
        return False
    if await _gone(proc, grace, poll):
        return False
    with contextlib.suppress(psutil.Error):
        proc.kill()
    await _gone(proc, 10.0, poll)
    return True


async def stop_stale(
    *,
    vector_bin: str,
    config_paths: Sequence[Path],
    pid_path: Path,
    exclude: set[int],
    grace: float,
) -> int:
    """Stop every leftover Vector :func:`find_stale` finds, drop a stale pid file; how many."""
    stale = await asyncio.to_thread(
        find_stale,
        vector_bin=vector_bin,
        config_paths=config_paths,
        pid_path=pid_path,
        exclude=exclude,
    )
    for info in stale:
        log.warning("vector.stale_found", pid=info.pid, cmdline=" ".join(info.cmdline))
        if await stop_foreign(info, grace):
            log.warning("vector.killed", pid=info.pid, grace=grace)
    record = read_pid_file(pid_path)
    if record is not None and record.pid not in exclude:
        remove_pid_file(pid_path, record.pid)
    return len(stale)


async def _gone(proc: psutil.Process, timeout: float, poll: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            pass
        await asyncio.sleep(poll)
    return False


async def spawn(
    vector_bin: str, config_paths: Sequence[Path], log_path: Path, env: Mapping[str, str]
) -> asyncio.subprocess.Process:
    """Start Vector detached in its own session, output appended to ``log_path``.

    Raises :class:`OSError` when the binary cannot be executed.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    try:
        return await asyncio.create_subprocess_exec(
            *vector_args(vector_bin, config_paths),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            env=dict(env),
            start_new_session=True,
        )
    finally:
        os.close(fd)
