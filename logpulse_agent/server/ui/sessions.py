"""Sign-in sessions of the fleet pages: a random id in a cookie, everything else on the server.

A signed-in browser holds only ``logpulse_session=<random id>`` (``HttpOnly``,
``SameSite=Strict``, ``Path=/ui``); the admin token is checked once, at sign-in, and never
stored in the browser or here. The server keeps, per session, a CSRF token and two times: a
session ends ``idle`` seconds after its last request or ``absolute`` seconds after sign-in,
whichever comes first. Sessions are keyed by the SHA-256 of their id, so a dump of this table
hands out no live cookie.

Sessions live in memory: a server restart signs everyone out. For the reference server that is
the honest trade (no table to migrate or clean, nothing secret on disk); the number of sessions
is bounded so that repeated sign-ins cannot grow memory without end.

Before sign-in there is no session. The sign-in form's CSRF token is an HMAC of a random
pre-session cookie under a key made at start-up, so anonymous visitors cost no memory, and a
sign-in always starts a *new* session id (a planted cookie cannot be promoted: no fixation).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

SESSION_COOKIE = "logpulse_session"
PRESESSION_COOKIE = "logpulse_presession"
COOKIE_PATH = "/ui"
DEFAULT_IDLE = 30 * 60.0  # seconds without a request
DEFAULT_ABSOLUTE = 12 * 3600.0  # seconds after sign-in, however busy
DEFAULT_LIMIT = 1000  # sessions kept; the least recently used one goes first
PRESESSION_MAX_AGE = 3600  # seconds a sign-in form stays usable


@dataclass
class Session:
    """One signed-in browser: its CSRF token, when it signed in and when it was last seen."""

    csrf: str
    created: float
    seen: float


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def same_secret(expected: str, given: str | None) -> bool:
    """Whether ``given`` equals ``expected``, compared in constant time (``None`` never does)."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


class SessionStore:
    """The sessions of one server process, with an injected ``clock`` (Unix seconds)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        idle: float = DEFAULT_IDLE,
        absolute: float = DEFAULT_ABSOLUTE,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.clock = clock
        self.idle = idle
        self.absolute = absolute
        self.limit = limit
        self._key = secrets.token_bytes(32)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self) -> tuple[str, Session]:
        """A new session: ``(id for the cookie, session)``."""
        now = self.clock()
        session_id = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), created=now, seen=now)
        with self._lock:
            self._sessions[_digest(session_id)] = session
            while len(self._sessions) > self.limit:
                self._sessions.popitem(last=False)
        return session_id, session

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.seen > self.idle or now - session.created > self.absolute

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (its idle clock restarts), else ``None``."""
        if not session_id:
            return None
        key = _digest(session_id)
        now = self.clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[key]
                return None
            session.seen = now
            self._sessions.move_to_end(key)
            return session

    def drop(self, session_id: str | None) -> None:
        """End the session (sign-out); an unknown id is a no-op."""
        if session_id:
            with self._lock:
                self._sessions.pop(_digest(session_id), None)

    def __len__(self) -> int:
        return len(self._sessions)

    @staticmethod
    def new_presession() -> str:
        """A random value for the pre-session cookie of a sign-in form."""
        return secrets.token_urlsafe(32)

    def presession_csrf(self, presession: str) -> str:
        """The sign-in form's CSRF token for the browser holding ``presession``."""
        return hmac.new(self._key, presession.encode("utf-8"), hashlib.sha256).hexdigest()
