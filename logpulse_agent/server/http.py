"""HTTP edges shared by every route: envelopes, bounded body reading, bearer tokens, errors."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from logpulse_agent.server.errors import (
    ApiError,
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)

log = structlog.get_logger("logpulse.server")

JSON_TYPE = "application/json"
DEFAULT_BODY_LIMIT = 64 * 1024

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A successful answer: ``{"data": data}``."""
    return Response(_dumps({"data": data}), status, headers=headers, media_type=JSON_TYPE)


def error(status: int, code: str, message: str) -> Response:
    """An error answer: ``{"error": {"code", "message"}}``."""
    body = _dumps({"error": {"code": code, "message": message}})
    return Response(body, status, media_type=JSON_TYPE)


def isotime(ts: float | None) -> str | None:
    """Unix seconds as RFC 3339 UTC (``2025-01-31T12:00:00Z``), ``None`` stays ``None``."""
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or ``None`` when absent or garbled."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def is_json_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` declares JSON: ``application/json`` or ``…/…+json``, with
    any parameters. No header at all counts as JSON: the body is read as JSON and judged so."""
    if content_type is None:
        return True
    media = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def read_json(request: Request, limit: int = DEFAULT_BODY_LIMIT) -> Any:
    """The request body parsed as JSON, read up to ``limit`` bytes.

    Raises :class:`UnsupportedMediaType` when ``Content-Type`` names something else,
    :class:`PayloadTooLarge` past the limit (checked on ``Content-Length`` first, then
    while streaming, so a chunked body cannot grow unbounded) and :class:`BadRequest` when the
    bytes are not UTF-8 JSON.
    """
    content_type = request.headers.get("content-type")
    if not is_json_type(content_type):
        raise UnsupportedMediaType(
            f"request body is {(content_type or '')[:80]!r}; send it as application/json"
        )
    declared = request.headers.get("content-length")
    too_large = f"request body is over the {limit // 1024} KiB limit"
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(too_large)
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise BadRequest("request body is empty; a JSON object was expected", code="invalid_json")
    try:
        value = _DECODER.decode(raw.decode("utf-8"))  # strict: no UTF-8-encoded surrogates
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="invalid_json",
        ) from None
    except ValueError:  # an integer of thousands of digits (Python's int conversion limit)
        raise BadRequest(
            "request body has a number too large to read", code="invalid_json"
        ) from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply", code="invalid_json") from None
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        # Stored results are walked recursively later (redaction, rendering): refuse here.
        raise BadRequest(
            f"request body is nested deeper than {MAX_DEPTH} levels", code="invalid_json"
        )
    if b"\\u" in raw:  # only escapes can smuggle in a lone surrogate, which no UTF-8 can hold
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(
                "request body has a \\u escape of a lone surrogate (not a character)",
                code="invalid_json",
            ) from None
        except RecursionError:
            raise BadRequest("request body is nested too deeply", code="invalid_json") from None
    return value


MAX_DEPTH = 64


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects/arrays more than ``limit`` levels (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"request body is not valid JSON: {name} is not a number", code="invalid_json")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 reads as inf
        raise BadRequest(
            f"request body has a number out of range: {text[:40]}", code="invalid_json"
        )
    return value


# One decoder for every request: json.loads with any option builds a new one per call (~7 µs).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


QUERY_INT_MAX = 2**62


def query_int(request: Request, name: str, default: int, *, minimum: int = 0) -> int:
    """An integer query parameter, ``default`` when absent; 400 when unusable (or past what
    SQLite's 64-bit integers hold)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name!r} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise BadRequest(f"query parameter {name!r} must be at least {minimum}, got {value}")
    if value > QUERY_INT_MAX:
        raise BadRequest(f"query parameter {name!r} must be at most {QUERY_INT_MAX}, got {raw}")
    return value


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status >= 500:
        log.error("request.failed", path=request.url.path, code=exc.code, message=exc.message)
    return error(exc.status, exc.code, exc.message)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no such route or method) in the error envelope."""
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    response = error(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with its traceback, answered as a plain 500."""
    log.exception("request.crashed", path=request.url.path, method=request.method)
    return error(500, "internal_error", "internal server error; see the server log")
