"""Who asked: the actor recorded in a rollout's audit trail.

The admin API has one admin token, so the token cannot say who is calling. Callers name
themselves in the ``X-LogPulse-Actor`` header instead: ``logpulse-server`` admin commands send
``cli:<local user>``, the fleet pages ``ui:<…>``; a request without the header is
``admin-api``, and what the server decides on its own (a halt, a phase passing) is ``server``.
The name is not authenticated — it records which tool acted, not a verified person — and is
cut to 64 safe characters.

:func:`acting` sets the actor for the duration of one admin request (a context variable, so
concurrent requests do not see each other's); domain code reads it with :func:`actor`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starlette.requests import Request

HEADER = "x-logpulse-actor"
DEFAULT_API_ACTOR = "admin-api"
SERVER = "server"
MAX_LENGTH = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._@:+-]")

_actor: ContextVar[str] = ContextVar("logpulse_actor", default=SERVER)


def actor() -> str:
    """Who is acting now: the admin request's caller, or ``server``."""
    return _actor.get()


def clean(name: str) -> str:
    """``name`` reduced to safe characters (others become ``_``), at most 64 of them."""
    return _UNSAFE.sub("_", name.strip())[:MAX_LENGTH]


def request_actor(request: Request) -> str:
    """The actor an admin request names in ``X-LogPulse-Actor``, else ``admin-api``."""
    named = clean(request.headers.get(HEADER, ""))
    return named or DEFAULT_API_ACTOR


@contextmanager
def acting(name: str) -> Iterator[None]:
    """Record ``name`` as the actor of what happens inside the block."""
    token = _actor.set(name)
    try:
        yield
    finally:
        _actor.reset(token)
