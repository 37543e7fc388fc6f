"""The control-plane wire format (SPEC section 5): request bodies out, strict parsing in.

Pure: no I/O, no logging. Parsing is strict about what the agent relies on and lenient about
the rest: a successful JSON answer must be ``{"data": {...}}`` with every field present and of
the right type (a JSON ``true`` is not an integer), otherwise :class:`ProtocolError` names the
field; fields the agent does not know are ignored, so a newer server can add some.

One exception to "all or nothing": a malformed entry of ``pendingActions`` does not void the
heartbeat reply (which also acknowledged the action results just sent). It is left out of
``pending_actions`` and described in ``malformed_actions`` for the caller to log, and to report
``failed`` when it had a usable id.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from logpulse_agent.errors import ProtocolError
from logpulse_agent.redact import one_line, redact, redact_value

ActionStatus = Literal["running", "done", "failed"]
ACTION_STATUSES: tuple[str, ...] = get_args(ActionStatus)
ETAG_RE = re.compile(r"\s*sha256:[0-9a-f]{64}\s*", re.IGNORECASE)


def config_etag(body: bytes) -> str:
    """The etag of a config body (``x-config-etag``): ``sha256:<hex of the body>``."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def is_empty_config(body: bytes) -> bool:
    """Whether a config body is exactly ``{}`` (whitespace aside): the group has no enabled
    inputs, so the agent stops Vector. Such a body is never validated (Vector rejects it: "No
    sources defined in the config.")."""
    return b"".join(body.split()) == b"{}"


YAML = "application/yaml"


@dataclass(frozen=True)
class EnrolRequest:
    """Body of ``POST /api/v1/agents/enrol``; ``group_slug`` overrides the token's group."""

    bootstrap_token: str = field(repr=False)
    hostname: str
    platform: str
    os: str
    kernel: str
    agent_version: str
    vector_version: str | None
    group_slug: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "bootstrapToken": self.bootstrap_token,
            "hostname": self.hostname,
            "platform": self.platform,
            "os": self.os,
            "kernel": self.kernel,
            "agentVersion": self.agent_version,
            "vectorVersion": self.vector_version,
        }
        if self.group_slug:
            body["groupSlug"] = self.group_slug
        return body


@dataclass(frozen=True)
class EnrolResult:
    """The identity handed out by a successful enrolment."""

    agent_id: str
    agent_token: str = field(repr=False)
    group_id: str
    config_version: int


@dataclass(frozen=True)
class ConfigUnchanged:
    """The applied config is current (``204``)."""


@dataclass(frozen=True)
class ConfigUpdate:
    """A new Vector config (``200``), its etag already checked against ``body``."""

    version: int
    etag: str
    body: bytes = field(repr=False)

    @property
    def is_empty(self) -> bool:
        """True when the body is ``{}`` (:func:`is_empty_config`): Vector is stopped."""
        return is_empty_config(self.body)


@dataclass(frozen=True)
class ConfigErrorReport:
    """The last failed apply, reported in every heartbeat until a later version applies."""

    config_version: int
    message: str
    at: str  # RFC 3339 UTC timestamp

    def to_json(self) -> dict[str, Any]:
        return {
            "configVersion": self.config_version,
            "message": redact(self.message),
            "at": self.at,
        }


@dataclass(frozen=True)
class ActionResult:
    """The outcome of one remote action; also the record kept in the on-disk outbox."""

    action_id: str
    status: ActionStatus
    result: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "actionId": self.action_id,
            "status": self.status,
            "result": redact_value(self.result),
        }

    @classmethod
    def from_json(cls, obj: object) -> ActionResult:
        """Parse what :meth:`to_json` wrote; :class:`ProtocolError` when it is not that shape."""
        data = _get({"": obj}, "", _OBJECT, "action result")
        status = _get(data, "status", _STATUS, "action result")
        result = _get(data, "result", _OBJECT, "action result")
        return cls(_get(data, "actionId", _STRING, "action result"), status, result)


@dataclass(frozen=True)
class Heartbeat:
    """Body of ``POST /api/v1/agents/{id}/heartbeat``."""

    agent_version: str
    vector_version: str | None
    applied_config_version: int
    vector_running: bool
    vector_uptime_seconds: float | int
    config_error: ConfigErrorReport | None
    action_results: tuple[ActionResult, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The SPEC's camelCase body; ``actionResults`` only when there are results to deliver."""
        body: dict[str, Any] = {
            "agentVersion": self.agent_version,
            "vectorVersion": self.vector_version,
            "appliedConfigVersion": self.applied_config_version,
            "vectorRunning": self.vector_running,
            "vectorUptimeSeconds": self.vector_uptime_seconds,
            "configError": None if self.config_error is None else self.config_error.to_json(),
        }
        if self.action_results:
            body["actionResults"] = [r.to_json() for r in self.action_results]
        return body


@dataclass(frozen=True)
class PendingAction:
    """An action the server wants executed; ``payload`` is checked by the action's executor."""

    id: str
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class MalformedAction:
    """A ``pendingActions`` entry that was left out; ``id`` is set when it had a usable one."""

    index: int
    id: str | None
    reason: str


@dataclass(frozen=True)
class HeartbeatReply:
    """The answer to a heartbeat; ``config_version`` is None when the server did not send it."""

    pending_actions: tuple[PendingAction, ...]
    config_version: int | None
    malformed_actions: tuple[MalformedAction, ...] = ()


def decode_json(body: bytes, what: str) -> object:
    """Parse a JSON body; :class:`ProtocolError` with a one-line reason when it is not JSON."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise ProtocolError(f"{what} is not valid JSON: {exc.msg} at {where}") from None
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not valid JSON: not UTF-8 text") from None


def parse_enrol_response(obj: object) -> EnrolResult:
    """Parse the ``201`` answer of enrol; the token must be ``AGT_…`` (redaction relies on it)."""
    where = "enrol response"
    data = _data(obj, where)
    return EnrolResult(
        agent_id=_get(data, "data.agentId", _STRING, where),
        agent_token=_get(data, "data.agentToken", _AGENT_TOKEN, where),
        group_id=_get(data, "data.groupId", _STRING, where),
        config_version=_get(data, "data.configVersion", _COUNT, where),
    )


def parse_heartbeat_response(obj: object) -> HeartbeatReply:
    """Parse the ``200`` answer of a heartbeat; see the module docstring for bad actions.

    ``configVersion`` is an extension: absent or null gives ``config_version=None``.
    """
    where = "heartbeat response"
    data = _data(obj, where)
    entries = _get(data, "data.pendingActions", _LIST, where)
    config_version = None
    if data.get("configVersion") is not None:
        config_version = _get(data, "data.configVersion", _COUNT, where)
    actions: list[PendingAction] = []
    malformed: list[MalformedAction] = []
    for index, entry in enumerate(entries):
        where = f"heartbeat response: pendingActions[{index}]"
        try:
            item = _get({"": entry}, "", _OBJECT, where)
            actions.append(
                PendingAction(
                    id=_get(item, "id", _STRING, where),
                    type=_get(item, "type", _STRING, where),
                    payload=_get(item, "payload", _OBJECT, where),
                )
            )
        except ProtocolError as exc:
            raw_id = entry.get("id") if isinstance(entry, dict) else None
            usable = raw_id if isinstance(raw_id, str) and raw_id else None
            malformed.append(MalformedAction(index, usable, str(exc)))
    return HeartbeatReply(tuple(actions), config_version, tuple(malformed))


def parse_config_headers(headers: Mapping[str, str]) -> tuple[int, str]:
    """Check a config ``200``'s headers; return ``(x-config-version, x-config-etag)``.

    ``headers`` may be any mapping (names are matched case-insensitively). The Content-Type must
    be ``application/yaml`` (parameters such as ``charset`` allowed); the etag must read
    ``sha256:<64 hex>`` and is returned in lower case.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    _header(lower, "content-type", "application/yaml", lambda v: _media_type(v) == YAML)
    version = _header(
        lower, "x-config-version", "a non-negative integer", re.compile(r"\s*\d+\s*").fullmatch
    )
    etag = _header(lower, "x-config-etag", "sha256:<64 hex>", lambda v: ETAG_RE.fullmatch(v))
    return int(version), etag.strip().lower()


def _header(
    headers: Mapping[str, str], name: str, expected: str, test: Callable[[str], Any]
) -> str:
    value = headers.get(name)
    if value is None:
        raise ProtocolError(f"config response: header {name} is missing, expected {expected}")
    if not test(value):
        raise ProtocolError(
            f"config response: header {name} is {one_line(value)}, expected {expected}"
        )
    return value


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def parse_config_update(headers: Mapping[str, str], body: bytes) -> ConfigUpdate:
    """Check a config ``200`` and verify its etag against the body (a mismatch is corruption)."""
    version, etag = parse_config_headers(headers)
    actual = config_etag(body)
    if actual != etag:
        raise ProtocolError(
            f"config response: etag mismatch, x-config-etag says {etag[:19]}… but the body "
            f"hashes to {actual[:19]}…; refusing a corrupt or truncated config"
        )
    return ConfigUpdate(version, etag, body)


def parse_error_body(body: bytes) -> str | None:
    """``"code: message"`` of an ``{"error": {...}}`` body, redacted, on one line; else None."""
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    error = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(error, dict):
        return None
    parts = [error.get(k) for k in ("code", "message")]
    text = ": ".join(p for p in parts if isinstance(p, str) and p)
    return one_line(text, limit=300) if text else None


# What a field must be: (description for the error message, test).
_Kind = tuple[str, Callable[[Any], bool]]
_STRING: _Kind = ("a non-empty string", lambda v: isinstance(v, str) and v != "")
_COUNT: _Kind = (
    "a non-negative integer",
    lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
)
_OBJECT: _Kind = ("an object", lambda v: isinstance(v, dict))
_LIST: _Kind = ("a list", lambda v: isinstance(v, list))
_AGENT_TOKEN: _Kind = ("an AGT_ token", lambda v: isinstance(v, str) and v.startswith("AGT_"))
_STATUS: _Kind = (" or ".join(ACTION_STATUSES), lambda v: v in ACTION_STATUSES)


def _get(data: Mapping[str, Any], name: str, kind: _Kind, where: str) -> Any:
    """``data[last part of name]`` when present and of ``kind``, else :class:`ProtocolError`.

    ``name`` is the dotted path shown in the message (``data.agentId``); ``""`` checks the
    document itself. The value is never echoed: it may be a token or arbitrarily long.
    """
    key = name.rsplit(".", 1)[-1]
    subject = f"{where}: field '{name}'" if name else where
    if key not in data:
        raise ProtocolError(f"{subject} is missing")
    value = data[key]
    expected, test = kind
    if not test(value):
        raise ProtocolError(f"{subject} must be {expected}, got {_json_type(value)}")
    return value


def _data(obj: object, where: str) -> dict[str, Any]:
    """The payload of a ``{"data": {...}}`` envelope."""
    envelope = _get({"": obj}, "", _OBJECT, where)
    data: dict[str, Any] = _get(envelope, "data", _OBJECT, where)
    return data


def _json_type(value: object) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)  # null, true, false
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a negative number" if isinstance(value, (int, float)) and value < 0 else "a number"
