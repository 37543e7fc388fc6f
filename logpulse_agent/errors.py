"""Every error the agent raises on purpose, and the CLI exit code each maps to.

    AgentError                    Base of everything below; ``str(err)`` is a one-line message.
    ├── SettingsError             A setting is missing or has an unusable value.
    ├── StateError                A file in the state or config directory is unreadable,
    │                             unwritable or corrupt.
    ├── NotEnrolled               The host has no identity yet (``status`` exits 2).
    ├── ControlPlaneError         Talking to the control plane did not give a usable answer.
    │   ├── TransientError        Network error, timeout, 5xx or 429, after the retries ran out.
    │   ├── TLSError              The TLS handshake failed (certificate, clock skew, CA bundle).
    │   ├── RevokedError          403/404 on an agent endpoint: revoked, deleted or not ours.
    │   ├── EnrolRejected         401 on enrol: unknown, expired, revoked or exhausted token.
    │   ├── UnknownGroup          404 on enrol: the ``groupSlug`` does not exist.
    │   ├── RequestRejected       Any other 4xx: the server refused what we sent.
    │   └── ProtocolError         The answer broke the protocol: bad JSON, missing or mistyped
    │                             fields, etag mismatch, body over the size cap.
    ├── VectorError               Something about the Vector child process.
    │   ├── ValidationFailed      ``vector validate`` rejected a candidate config.
    │   ├── ReloadFailed          Vector said its reload was not successful, or never confirmed.
    │   └── CrashLoop             Vector exited repeatedly right after a new config was applied.
    └── ActionError               A remote action could not be carried out (its result says why).

Messages never contain a token: whoever builds one from outside input passes it through
:func:`logpulse_agent.redact.redact` first.
"""

from __future__ import annotations

# Exit codes, in one place (click's own usage errors exit 2 as well).
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_DEGRADED = 1
EXIT_NOT_ENROLLED = 2


class AgentError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with when this reaches it."""

    exit_code = EXIT_FAILURE


class SettingsError(AgentError):
    """Raised when a setting is missing or has an unusable value."""

    def __init__(self, key: str, value: object, reason: str) -> None:
        self.key, self.value, self.reason = key, value, reason
        super().__init__(f"setting {key!r} has value {value!r}: {reason}")


class StateError(AgentError):
    """Raised when a file under the state or config directory cannot be read or written."""


class NotEnrolled(AgentError):
    """Raised when an enrolled identity is needed and the host has none."""

    exit_code = EXIT_NOT_ENROLLED


class ControlPlaneError(AgentError):
    """Raised when the control plane gave no usable answer."""


class TransientError(ControlPlaneError):
    """Raised when a request kept failing with network errors, timeouts, 5xx or 429."""


class TLSError(ControlPlaneError):
    """Raised when the TLS handshake with the control plane failed."""


class RevokedError(ControlPlaneError):
    """Raised on 403/404 from an agent endpoint: this agent was revoked or deleted."""


class EnrolRejected(ControlPlaneError):
    """Raised on 401 from enrol: the bootstrap token is unknown, expired, revoked or used up."""


class UnknownGroup(ControlPlaneError):
    """Raised on 404 from enrol: the requested group slug does not exist."""


class RequestRejected(ControlPlaneError):
    """Raised on any other 4xx: the server refused the request as sent."""


class ProtocolError(ControlPlaneError):
    """Raised when a response breaks the protocol (JSON, fields, types, etag, size)."""


class VectorError(AgentError):
    """Raised for failures of the Vector child process."""


class ValidationFailed(VectorError):
    """Raised when ``vector validate`` rejects a candidate config; ``report`` is its output."""

    def __init__(self, message: str, report: str = "") -> None:
        self.report = report
        super().__init__(message)


class ReloadFailed(VectorError):
    """Raised when Vector reported an unsuccessful reload or never confirmed one."""


class CrashLoop(VectorError):
    """Raised when Vector exits repeatedly shortly after a new config was applied."""


class ActionError(AgentError):
    """Raised when a remote action cannot be carried out; the message goes into its result."""
