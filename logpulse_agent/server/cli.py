"""``logpulse-server``: run the reference control plane (``serve``) and administer it.

``serve`` prints ``logpulse-server listening on http://HOST:PORT`` as its first stdout line once
the socket is bound (with ``--port 0`` the kernel picks the port, and this line is how tests and
the demo learn it). SIGTERM or SIGINT stop it gracefully and it exits 0.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

import click
import structlog

from logpulse_agent import __version__
from logpulse_agent.server import cli_config, cli_fleet, cli_ingest, cli_rollout

DEFAULT_DB = "logpulse-server.db"


def _configure_logging() -> None:
    """Server events as JSON lines on stderr (readable when stderr is a terminal)."""
    renderer = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _public_url(sock: socket.socket) -> str:
    """The URL agents reach this server at: the bound one, or this host's name for 0.0.0.0/::."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        return f"http://{socket.gethostname()}:{port}"
    return _url(sock)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="logpulse-server")
def main() -> None:
    """The LogPulse reference control plane: agent protocol + admin API over SQLite."""


@main.command()
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    envvar="LOGPULSE_SERVER_DB",
    show_default=True,
    help="SQLite file (created if missing).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port; 0 picks a free one (see the first stdout line).",
)
@click.option(
    "--ingest-url",
    envvar="LOGPULSE_INGEST_URL",
    help="HEC ingest base URL put in agents' configs. Default: this server's own (public) URL,"
    " whose /services/collector/event counts the events.",
)
@click.option(
    "--public-url",
    envvar="LOGPULSE_PUBLIC_URL",
    help="The base URL agents reach this server at (e.g. behind a TLS proxy). Default: the"
    " bound address, or this host's name when listening on 0.0.0.0 or ::.",
)
@click.option(
    "--offline-threshold",
    type=click.FloatRange(min=0.001),
    default=300.0,
    show_default=True,
    help="Seconds without a heartbeat before an agent is offline.",
)
@click.option(
    "--sweep-interval",
    type=click.FloatRange(min=0.01),
    default=15.0,
    show_default=True,
    help="Seconds between sweeps (action expiry, offline marks).",
)
@click.option(
    "--heartbeat-interval",
    type=click.FloatRange(min=0.01),
    default=30.0,
    show_default=True,
    help="The agents' heartbeat interval (their LOGPULSE_HEARTBEAT_INTERVAL): a staged rollout "
    "counts an admitted agent silent for two of them as failed.",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (costly at fleet scale).",
)
@click.option(
    "--keep-alive",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Seconds an idle connection is kept open. Above the agents' poll interval (e.g. 15) "
    "they reuse one connection instead of connecting (and, behind TLS, handshaking) for every "
    "request; each idle connection costs the server about 10 KiB.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=None,
    help="Open connections admitted at once; a connection beyond them gets 503 and is closed, "
    "those already open keep working. Default: 16384, or fewer if the open-file limit (raised "
    "to its hard limit at start) leaves less room.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds a connection has to complete a request's line and headers before it is "
    "closed (default: 10).",
)
def serve(
    db_path: Path,
    host: str,
    port: int,
    ingest_url: str | None,
    public_url: str | None,
    offline_threshold: float,
    sweep_interval: float,
    heartbeat_interval: float,
    access_log: bool,
    keep_alive: int,
    max_connections: int | None,
    header_timeout: float | None,
) -> None:
    """Run the server. The admin token is LOGPULSE_ADMIN_TOKEN, else one made at first start."""
    import uvicorn

    from logpulse_agent.server.app import create_app
    from logpulse_agent.server.render import IngestSettings
    from logpulse_agent.server.serving import (
        DEFAULT_HEADER_TIMEOUT,
        ConnectionLimits,
        default_max_connections,
        raise_open_file_limit,
        uvicorn_config,
    )
    from logpulse_agent.server.store import StoreError

    _configure_logging()
    # Bound first: the rendered sinks point at this server's own URL, which --port 0 only
    # knows once the kernel picked the port.
    sock = _bind(host, port)
    endpoint = ingest_url or (public_url or _public_url(sock)).rstrip("/")
    option = "--ingest-url" if ingest_url else "--public-url"
    try:
        app = create_app(
            db_path,
            admin_token=os.environ.get("LOGPULSE_ADMIN_TOKEN") or None,
            ingest=IngestSettings(endpoint=endpoint),
            offline_threshold=offline_threshold,
            sweep_interval=sweep_interval,
            heartbeat_interval=heartbeat_interval,
        )
    except StoreError as exc:
        sock.close()
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:
        sock.close()
        raise click.ClickException(f"{option} {endpoint!r}: {exc}") from None
    generated = app.state.generated_admin_token
    if generated:
        click.echo(
            f"logpulse-server: generated the admin token (shown only now; it is stored hashed"
            f" in {db_path}, set LOGPULSE_ADMIN_TOKEN to choose your own): {generated}",
            err=True,
        )
    open_files = raise_open_file_limit()
    limits = ConnectionLimits(
        max_connections=max_connections or default_max_connections(open_files),
        header_timeout=header_timeout or DEFAULT_HEADER_TIMEOUT,
    )
    config = uvicorn_config(app, limits, keep_alive=keep_alive, access_log=access_log)
    server = uvicorn.Server(config)
    # Everything built so far (modules, the OpenAPI document and its validators) lives as long
    # as the process: move it out of the collector's view so the full collections that a busy
    # server triggers scan only what requests allocate, keeping their pauses (and p99) short.
    gc.collect()
    gc.freeze()

    # Installed before the "listening" line, so a stop requested at any moment from then on
    # is honoured. While uvicorn runs it has its own handlers (graceful shutdown); afterwards
    # it restores these and re-raises the signal, which they turn into a quiet no-op, so a
    # requested stop ends with exit status 0.
    def _request_stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _request_stop)
    click.echo(f"logpulse-server listening on {_url(sock)}")
    sys.stdout.flush()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    click.echo("logpulse-server stopped", err=True)


for _command in (
    cli_config.group,
    cli_config.input_,
    cli_config.preview,
    cli_fleet.token,
    cli_fleet.agents,
    cli_fleet.upgrade,
    cli_fleet.actions,
    cli_ingest.tail,
    cli_ingest.ingest,
    cli_rollout.rollout,
):
    main.add_command(_command)

if __name__ == "__main__":
    main()
