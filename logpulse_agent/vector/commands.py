"""The two one-shot Vector commands the agent runs: ``vector --version`` and ``vector validate``.

Facts they rely on (vectordotdev/vector):

- ``vector --version`` prints ``vector 0.40.0 (x86_64-unknown-linux-gnu 1234abc 2024-07-29)``
  (target triple added in issue #1110).
- ``vector validate`` takes ``--no-environment`` (skip component build and health checks, so no
  network and no data directory are touched) and ``--config-yaml PATH`` (repeatable; no ``-c``);
  it prints its report on **stdout** and exits ``exitcode::CONFIG`` (78) when the config is
  rejected (``src/validate.rs``)::

      Failed to load ["/var/lib/logpulse-agent/vector.next.yaml"]
      ------------------------------------------------------------
      x Input "nope" for sink "out" doesn't match any components.

  A missing file never reaches the report: ``process_paths`` logs "Config file not found in
  path." on stderr and exits 78 (``src/config/loading/mod.rs``).
- Vector reads ``VECTOR_CONFIG``, ``VECTOR_CONFIG_YAML`` … from its environment as extra config
  paths (clap ``env =`` on the path options); :func:`child_env` drops them so the agent's own
  environment can never smuggle a second config in. It drops ``LOGPULSE_ENROL_TOKEN`` too:
  every Vector process, ``vector --version`` at enrolment included, runs without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeAlias

from logpulse_agent.errors import ValidationFailed
from logpulse_agent.redact import redact
from logpulse_agent.vector.logwatch import MAX_REASON, parse_line, summarize

EXIT_CONFIG = 78  # exitcode::CONFIG
StrPath: TypeAlias = "str | os.PathLike[str]"
_VERSION_RE = re.compile(r"^vector\s+v?(\d+\.\d+\.\d+[0-9A-Za-z.+-]*)", re.MULTILINE)
_NOT_FOR_VECTOR = frozenset(
    {
        "VECTOR_CONFIG",
        "VECTOR_CONFIG_YAML",
        "VECTOR_CONFIG_TOML",
        "VECTOR_CONFIG_JSON",
        "VECTOR_CONFIG_DIR",
        "LOGPULSE_ENROL_TOKEN",
    }
)


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for any Vector process: without the variables Vector would read as additional
    config paths, and without the agent's bootstrap token (Vector could expose it to its
    config)."""
    return {key: value for key, value in env.items() if key not in _NOT_FOR_VECTOR}


def parse_version(output: str) -> str | None:
    """``"vector 0.40.0 (x86_64-unknown-linux-gnu …)"`` → ``"0.40.0"``; None if not found."""
    match = _VERSION_RE.search(output)
    return match.group(1) if match else None


def validate_args(vector_bin: str, config_paths: Sequence[StrPath]) -> list[str]:
    """The argv of ``vector validate`` for ``config_paths``, every one forced to YAML."""
    args = [vector_bin, "validate", "--no-environment"]
    for path in config_paths:
        args += ["--config-yaml", os.fspath(path)]
    return args


def first_error(report: str, stderr: str = "") -> str | None:
    """The first error in a validate report (``x …`` lines), else the first ERROR log line."""
    for line in report.splitlines():
        if line.startswith("x "):
            text = redact(" ".join(line[2:].split()))
            return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"
    for raw in stderr.splitlines():
        parsed = parse_line(raw)
        if parsed is not None and parsed.level == "ERROR":
            return summarize(parsed)
    return None


def failure_message(returncode: int, report: str, stderr: str = "") -> str:
    """One line saying why validation failed, for logs, status and ``configError``."""
    reason = first_error(report, stderr)
    if reason:
        return f"vector validate rejected the config: {reason}"
    return f"vector validate failed with exit code {returncode}"


async def _communicate(
    args: Sequence[str], env: Mapping[str, str] | None, timeout: float
) -> tuple[int, str, str]:
    """Run ``args`` with stdin from /dev/null; (returncode, stdout, stderr).

    Raises :class:`OSError` when it cannot be executed, :class:`TimeoutError` after ``timeout``
    (the child is killed and reaped first, also when this coroutine is cancelled).
    """
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=None if env is None else child_env(env),
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


async def vector_version(
    vector_bin: str, env: Mapping[str, str] | None = None, timeout: float = 10
) -> str | None:
    """Vector's version from ``vector --version``; None when it is missing or fails."""
    try:
        returncode, out, _ = await _communicate([vector_bin, "--version"], env, timeout)
    except (OSError, asyncio.TimeoutError):
        return None
    return parse_version(out) if returncode == 0 else None


async def validate(
    vector_bin: str,
    config_paths: Sequence[StrPath],
    env: Mapping[str, str],
    timeout: float = 60,
) -> None:
    """Run ``vector validate --no-environment --config-yaml P…``; return when it passes.

    Raises :class:`ValidationFailed` on exit 78 or any other non-zero exit, on timeout and
    when the binary cannot be run; ``report`` holds Vector's stdout (and stderr), redacted.
    """
    args = validate_args(vector_bin, config_paths)
    try:
        returncode, out, err = await _communicate(args, env, timeout)
    except asyncio.TimeoutError:
        raise ValidationFailed(f"vector validate did not finish within {timeout:g}s") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValidationFailed(f"cannot run {vector_bin} validate: {reason}") from None
    if returncode == 0:
        return
    report = redact(out if not err.strip() else f"{out.rstrip()}\n{err}".lstrip())
    raise ValidationFailed(failure_message(returncode, out, err), report)


def candidate_validator(
    vector_bin: str, globals_path: StrPath, env: Mapping[str, str]
) -> Callable[[StrPath], Awaitable[None]]:
    """``validate`` for a candidate config together with the agent's global options, the way
    Vector will load the two (what config sync calls before installing a candidate)."""

    async def validate_candidate(candidate: StrPath) -> None:
        await validate(vector_bin, [globals_path, candidate], env)

    return validate_candidate
