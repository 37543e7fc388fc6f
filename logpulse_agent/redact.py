"""Masking of credentials in anything that may reach a log, a status file or an error message."""

from __future__ import annotations

import re
from typing import Any

# Agent tokens are ``AGT_`` + base64url, bootstrap tokens ``EBT_`` + base64url. Anything that
# starts like one is masked, whatever follows, so a truncated token is masked too.
TOKEN_RE = re.compile(r"\b(AGT|EBT)_[A-Za-z0-9_\-]+")
BEARER_RE = re.compile(r"(?i)(bearer\s+)\S+")


def redact(text: str) -> str:
    """Return ``text`` with every agent or bootstrap token and bearer credential masked."""
    text = TOKEN_RE.sub(lambda m: f"{m.group(1)}_***", text)
    return BEARER_RE.sub(r"\1***", text)


def one_line(value: str, limit: int = 80) -> str:
    """A string from outside made safe for a one-line message: redacted, whitespace flattened,
    cut to ``limit`` characters (the last one ``…``)."""
    flat = " ".join(redact(value).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def redact_value(value: Any) -> Any:
    """Redact strings inside ``value`` (nested dicts, lists and tuples), leaving the shape.

    Dict keys are strings too: a token used as a key is masked like one used as a value. Two
    keys that mask alike keep both values (the later one under ``key#2``, ``key#3`` …).
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            masked = redact(key) if isinstance(key, str) else key
            if masked != key:
                base, n = masked, 2
                while masked in out or masked in value:
                    masked, n = f"{base}#{n}", n + 1
            out[masked] = redact_value(item)
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    return value
