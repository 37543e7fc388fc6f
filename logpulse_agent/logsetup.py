"""structlog set-up: JSON lines when stderr is not a terminal, readable console lines on one,
and the same events as JSON lines in ``log_dir/agent.log`` (size-rotated).

Every event passes :func:`redact_processor` first, so a token that slipped into a field or an
exception text is masked before any renderer sees it.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

from logpulse_agent.errors import StateError
from logpulse_agent.redact import redact, redact_value

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Mask tokens in every value, including rendered exception text."""
    for key, value in list(event_dict.items()):
        event_dict[key] = redact_value(value)
    return event_dict


def _redact_rendered(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
    # format_exc_info turns exc_info into text; mask whatever it produced.
    if isinstance(event_dict.get("exception"), str):
        event_dict["exception"] = redact(event_dict["exception"])
    return event_dict


# Every event, from structlog or the standard library, passes these before its renderer.
SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    redact_processor,
]


def configure_logging(
    log_file: Path | None,
    *,
    level: int = logging.INFO,
    stream: TextIO | None = None,
    console: bool | None = None,
) -> None:
    """Route structlog (and stdlib logging) to ``stream`` and to ``log_file`` (``Layout.
    agent_log``, size-rotated) when given.

    ``console`` forces the readable renderer on or off; by default it follows ``isatty()``.
    Raises :class:`StateError` when its directory cannot be created or the file opened.
    """
    stream = stream or sys.stderr
    if console is None:
        console = stream.isatty()
    handlers = [_handler(logging.StreamHandler(stream), json_lines=not console)]
    if log_file is not None:
        handlers.append(_handler(_agent_log(log_file), json_lines=True))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO with the URL; keep it quiet.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _agent_log(log_file: Path) -> logging.Handler:
    """``log_file``, size-rotated; :class:`StateError` when it cannot be opened."""
    try:
        log_file.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        return logging.handlers.RotatingFileHandler(
            log_file, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS
        )
    except OSError as exc:
        # An unusable log_dir is an operator error: one clear line, not a traceback.
        raise StateError(f"cannot write logs to {log_file.parent}: {exc.strerror or exc}") from exc


def _handler(handler: logging.Handler, *, json_lines: bool) -> logging.Handler:
    """``handler`` rendering every event as a JSON line, or as a readable console line."""
    renderer: list[Any] = (
        [
            structlog.processors.format_exc_info,
            _redact_rendered,
            structlog.processors.JSONRenderer(),
        ]
        if json_lines
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=SHARED,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
        )
    )
    return handler
