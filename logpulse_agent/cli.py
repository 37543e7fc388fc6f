"""The ``logpulse-agent`` command line (SPEC §4).

Every failure is one line on stderr (``logpulse-agent: error: …``) and the exit code of the
error class (:mod:`logpulse_agent.errors`); tokens never appear in output.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from logpulse_agent import __version__
from logpulse_agent.errors import EXIT_NOT_ENROLLED, AgentError
from logpulse_agent.redact import redact
from logpulse_agent.settings import Settings, check_url, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"logpulse-agent: error: {redact(message)}", err=True)
    sys.exit(code)


def settings_options(func: F) -> F:
    """The options every subcommand shares: the settings file and the relocatable paths."""
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(path_type=Path),
            default=None,
            help="Settings file (default /etc/logpulse-agent/agent.yaml; env LOGPULSE_CONFIG).",
        ),
        click.option(
            "--config-dir",
            type=click.Path(path_type=Path),
            default=None,
            help="Directory of agent.yaml and the tokens.",
        ),
        click.option(
            "--state-dir", type=click.Path(path_type=Path), default=None, help="State directory."
        ),
        click.option(
            "--log-dir", type=click.Path(path_type=Path), default=None, help="Log directory."
        ),
        click.option(
            "--allow-insecure-http",
            is_flag=True,
            default=None,
            help="Allow plain http:// to a non-loopback control plane (unsafe).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _load(kwargs: dict[str, Any], **extra: Any) -> Settings:
    overrides = {
        "config_dir": kwargs.pop("config_dir"),
        "state_dir": kwargs.pop("state_dir"),
        "log_dir": kwargs.pop("log_dir"),
        "allow_insecure_http": kwargs.pop("allow_insecure_http"),
        **extra,
    }
    return load_settings(kwargs.pop("config_file"), os.environ, overrides)


def handle_errors(func: F) -> F:
    """Turn :class:`AgentError` into one clear line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AgentError as exc:
            _fail(str(exc), exc.exit_code)

    return wrapper  # type: ignore[return-value]


class OneLineErrors(click.Group):
    """Click's own usage errors (missing option, bad value, unknown command) as one line,
    ``logpulse-agent: error: …`` with a pointer to ``--help``, instead of its usage block.

    Tokens typed into the wrong place (``enrol EBT_…``) are masked like everywhere else.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        try:
            code = super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `logpulse-agent`: the help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "logpulse-agent"
            _fail(f"{exc.format_message().rstrip('.')} (see '{where} --help')", exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        sys.exit(code if isinstance(code, int) else 0)


# Help texts are given as ``help=``, not taken from docstrings: the release bundle is compiled
# without docstrings (python -OO) to keep the daemon small, and ``--help`` must survive that.
@click.group(
    cls=OneLineErrors,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="LogPulse agent: enrols with LogPulse, applies its group's Vector config, runs Vector.",
)
@click.version_option(
    __version__, "--version", prog_name="logpulse-agent", message="%(prog)s %(version)s"
)
def main() -> None:
    pass


@main.command("enrol", help="Enrol this host with a bootstrap token and store its agent token.")
@click.option("--api-url", required=True, help="Control-plane URL, e.g. https://api.logpulse.io")
@click.option(
    "--token",
    envvar="LOGPULSE_ENROL_TOKEN",
    default=None,
    help="Bootstrap token EBT_… (or env LOGPULSE_ENROL_TOKEN).",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Read the bootstrap token from this file.",
)
@click.option("--group", "group_slug", default=None, help="Group slug overriding the token's.")
@click.option("--force", is_flag=True, help="Re-enrol a host that is already enrolled.")
@settings_options
@handle_errors
def enrol_cmd(
    api_url: str,
    token: str | None,
    token_file: Path | None,
    group_slug: str | None,
    force: bool,
    **kwargs: Any,
) -> None:
    from logpulse_agent.controlplane.enrol import enrol, read_token_file
    from logpulse_agent.controlplane.identity import IdentityStore
    from logpulse_agent.logsetup import configure_logging

    settings = _load(kwargs, api_url=api_url)
    if settings.api_url and check_url("api_url", settings.api_url, settings.allow_insecure_http):
        click.echo(
            f"logpulse-agent: warning: {settings.api_url} is plain http: the agent token "
            "travels unencrypted",
            err=True,
        )
    if token and token_file:
        _fail("give either --token or --token-file, not both", 2)
    if token_file is not None:
        token = read_token_file(token_file)
    if not token:
        _fail("no bootstrap token: pass --token, --token-file or set LOGPULSE_ENROL_TOKEN", 2)
    identities = IdentityStore(settings.layout)
    if identities.is_enrolled() and not force:
        ident = identities.load()
        _fail(
            f"this host is already enrolled as agent {ident.agent_id}; "
            "pass --force to enrol it again",
            1,
        )
    # enrol reports through one line and its exit status; keep library events off stderr.
    configure_logging(None, stream=io.StringIO())
    identity = asyncio.run(
        enrol(
            settings,
            str(token),
            api_url=str(settings.api_url),
            environ=os.environ,
            group_slug=group_slug,
        )
    )
    click.echo(f"enrolled: agent id {identity.agent_id} in group {identity.group_id}")
    click.echo(
        "next: start the agent with 'systemctl enable --now logpulse-agent' "
        "(or 'logpulse-agent run' in the foreground)"
    )


@main.command("run", help="Run the agent daemon in the foreground (systemd runs this).")
@click.option("--vector-bin", default=None, help="Vector binary.")
@click.option("--poll-interval", type=float, default=None, help="Seconds between config polls.")
@click.option("--heartbeat-interval", type=float, default=None, help="Seconds between heartbeats.")
@settings_options
@handle_errors
def run_cmd(
    vector_bin: str | None,
    poll_interval: float | None,
    heartbeat_interval: float | None,
    **kwargs: Any,
) -> None:
    from logpulse_agent.daemon.lifecycle import run_daemon
    from logpulse_agent.logsetup import configure_logging

    settings = _load(
        kwargs,
        vector_bin=vector_bin,
        poll_interval=poll_interval,
        heartbeat_interval=heartbeat_interval,
    )
    configure_logging(settings.layout.agent_log)
    for key in ("api_url", "install_url"):
        url = getattr(settings, key)
        if url and check_url(key, url, settings.allow_insecure_http):
            import structlog

            structlog.get_logger("logpulse_agent.cli").warning(
                "settings.insecure_http",
                setting=key,
                url=url,
                risk="tokens and configs travel unencrypted and can be tampered with",
            )
    sys.exit(asyncio.run(run_daemon(settings)))


@main.command(
    "status",
    help="Show what the running daemon last recorded (no network). "
    "Exit 0 healthy, 1 degraded, 2 not enrolled.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@settings_options
@handle_errors
def status_cmd(as_json: bool, **kwargs: Any) -> None:
    from logpulse_agent.controlplane.identity import IdentityStore
    from logpulse_agent.status.report import assess, load_snapshot, render_json, render_text
    from logpulse_agent.upgrade.probation import status_fields

    settings = _load(kwargs)
    snap = load_snapshot(settings.layout.status)
    if not IdentityStore(settings.layout).is_enrolled():
        if as_json:
            click.echo(render_json(snap or {}, "not-enrolled", ["this host is not enrolled"]))
        else:
            click.echo(
                "logpulse-agent: not enrolled (run 'logpulse-agent enrol --api-url URL "
                "--token EBT_…')"
            )
        sys.exit(EXIT_NOT_ENROLLED)
    if snap is None:
        snap = {"agentVersion": __version__}
    # Root's view of an upgrade probation, live (even while the new agent crash-loops).
    snap["probation"] = status_fields(settings.layout.upgrade_probation)
    health, reasons = assess(snap, time.time())
    if as_json:
        click.echo(render_json(snap, health, reasons))
    else:
        click.echo(render_text(snap, health, reasons, time.time()))
    sys.exit(0 if health == "healthy" else 1)


@main.command(
    "vector-secret", help="Vector's exec secret backend: JSON request on stdin, secrets on stdout."
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Agent token file (default <config_dir>/agent-token).",
)
@settings_options
def vector_secret_cmd(token_file: Path | None, **kwargs: Any) -> None:
    from logpulse_agent.vector.secret_backend import main as secret_main

    if token_file is None:
        try:
            token_file = _load(kwargs).token_file
        except AgentError as exc:
            _fail(str(exc))
            return
    sys.exit(secret_main(token_file, sys.stdin.buffer, sys.stdout.buffer))
