"""The errors the server answers with, each one ``{"error": {"code", "message"}}``.

    ApiError                 Base; ``status`` is the HTTP status, ``code`` a stable word.
    ├── BadRequest           400 ``invalid_json`` / ``bad_request``: unparseable body or query.
    ├── Unauthenticated      401: no usable credentials, or credentials that match nothing.
    ├── EnrolRefused         401 ``enrolment_token_refused``: unknown, expired, revoked or
    │                        exhausted bootstrap token.
    ├── Forbidden            403: valid credentials, not for this (revoked, another agent's).
    ├── NotFound             404: the addressed group, input, token, agent or action is unknown.
    ├── Conflict             409: the request clashes with the current state.
    ├── PayloadTooLarge      413: the body is over the size limit.
    ├── UnsupportedMediaType 415: the body is declared as something other than JSON.
    └── Unprocessable        422 ``validation_failed``: well-formed JSON that breaks the schema
                             or a rule (unknown action type, bad input options).

Messages never contain a token: anything echoed from a request goes through
:func:`logpulse_agent.redact.redact` first.
"""

from __future__ import annotations

from logpulse_agent.redact import redact

MAX_MESSAGE = 500


class ApiError(Exception):
    """Base class; answered as ``status`` with ``{"error": {"code", "message"}}``."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        message = redact(message)
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        self.message = message
        if code is not None:
            self.code = code
        super().__init__(message)


class BadRequest(ApiError):
    """Raised when the body is not JSON or a query parameter is unusable."""

    status = 400
    code = "bad_request"


class Unauthenticated(ApiError):
    """Raised when the request carries no usable bearer token."""

    status = 401
    code = "unauthenticated"


class EnrolRefused(ApiError):
    """Raised when a bootstrap token is unknown, expired, revoked or used up."""

    status = 401
    code = "enrolment_token_refused"


class Forbidden(ApiError):
    """Raised when the token is valid but not for this resource, or revoked."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """Raised when the addressed object does not exist."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """Raised when the request clashes with the object's current state."""

    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    """Raised when a request body is over the size limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    """Raised when a JSON route gets a body whose ``Content-Type`` is not JSON."""

    status = 415
    code = "unsupported_media_type"


class Unprocessable(ApiError):
    """Raised when well-formed JSON breaks the schema or a rule of the server."""

    status = 422
    code = "validation_failed"
