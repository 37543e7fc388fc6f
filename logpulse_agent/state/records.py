"""Typed JSON records on disk: one way to read, check, write and set aside every state file.

A record is a frozen dataclass. :class:`RecordFile` binds a codec to a path and owns what
surrounds it: the atomic write and its file mode (:mod:`.atomic`), the schema version, and what
happens to a file that cannot be used. :class:`DataclassCodec` maps a dataclass to JSON and
back: keys are the field names in camelCase (``agent_id`` → ``agentId``); values are checked
against the annotations strictly (a JSON ``true`` is no integer, ``1`` is no string, ``null``
only fits ``X | None``); a missing field takes its default (no default: the file is corrupt);
keys the agent does not know are ignored, so an older agent reads what a newer one wrote as far
as it understands it.

Schema versions: additive changes (a new field with a default) need none. A record whose
meaning changes carries a ``version`` field with default 1, so a file from before the field
existed is version 1, and its reader handles every older one (``actions-seen.json`` version 2).
A version newer than the agent knows is read by the fields it knows, like the protocol.

When a file cannot be used, its :class:`Recovery` decides:

    RELEARN   unreadable or corrupt: moved aside as ``<name>.corrupt-<UTC time>``, logged, and
              the agent starts without it, re-learning what it held (applied.json,
              rejected.json, upgrade-inflight.json)
    SALVAGE   corrupt: moved aside and logged, what could be parsed is kept and written back
              (outbox.json, actions-seen.json); unreadable: StateError, since guessing could
              lose results or run an action twice
    REQUIRED  StateError either way: nothing sensible to start from (identity.json)

A corrupt record must not keep the agent from starting: systemd would restart it into the same
failure forever. The moved file stays for an operator.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, cast

import structlog

from logpulse_agent.clock import utc_now
from logpulse_agent.errors import StateError
from logpulse_agent.state import atomic

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Corrupt(ValueError):
    """Raised by a codec when a document is not its record: ``problem`` says why in one line,
    ``salvage`` is what can still be used (SALVAGE only), ``fields`` go into the log event."""

    def __init__(self, problem: str, salvage: object = None, **fields: object) -> None:
        self.salvage, self.fields = salvage, fields
        super().__init__(problem)


class Codec(Protocol[T]):
    """Turns a record into a JSON document and back; :meth:`decode` raises :class:`Corrupt`."""

    def decode(self, doc: object) -> T: ...

    def encode(self, value: T) -> dict[str, Any]: ...


class Recovery(enum.Enum):
    """What a file that cannot be used costs; see the module docstring."""

    RELEARN = "relearn"
    SALVAGE = "salvage"
    REQUIRED = "required"


class RecordFile(Generic[T]):
    """One record at ``path``: :meth:`load` (None when absent), :meth:`save`, :meth:`remove`.

    ``event`` is the log event of a file set aside, ``hint`` tells the operator what that cost;
    ``now`` stamps the name of the moved file.
    """

    def __init__(
        self,
        path: Path,
        codec: Codec[T],
        *,
        mode: int = 0o640,
        recovery: Recovery = Recovery.RELEARN,
        event: str = "state.corrupt",
        hint: str | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.path = Path(path)
        self.codec, self.mode, self.recovery = codec, mode, recovery
        self.event, self.hint, self._now = event, hint, now

    def load(self) -> T | None:
        """The record; None when there is no file, or when a corrupt one was set aside."""
        try:
            raw = atomic.read_bytes(self.path)
        except StateError as exc:
            if self.recovery is not Recovery.RELEARN:
                raise
            self._set_aside(str(exc), {})
            return None
        if raw is None:
            return None
        try:
            return self.codec.decode(parse_json(raw))
        except Corrupt as exc:
            if self.recovery is Recovery.REQUIRED:
                raise StateError(f"{self.path} is corrupt: {exc}") from None
            self._set_aside(str(exc), exc.fields)
            salvage = cast("T | None", exc.salvage)
            if salvage is not None:
                self.save(salvage)
            return salvage

    def save(self, value: T) -> None:
        """Replace the file atomically; :class:`StateError` when the disk refuses."""
        atomic.write_json(self.path, self.codec.encode(value), mode=self.mode)

    def remove(self) -> None:
        """Remove the file durably, if it exists."""
        atomic.remove(self.path)

    def _set_aside(self, problem: str, fields: dict[str, object]) -> None:
        moved = atomic.quarantine(self.path, self._now)
        extra = {**fields, **({"hint": self.hint} if self.hint else {})}
        log.error(self.event, path=str(self.path), moved_to=str(moved), problem=problem, **extra)


def parse_json(raw: bytes) -> object:
    """``raw`` as JSON; :class:`Corrupt` when it is not (torn write, not UTF-8, garbage)."""
    try:
        return json.loads(raw)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise Corrupt(f"not JSON: {exc}") from None


def camel(name: str) -> str:
    """``pid_create_time`` → ``pidCreateTime``: the JSON key of a field."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def json_type(value: object) -> str:
    """How a JSON value is named in a message (the value itself may be a secret)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    names = {str: "a string", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    key: str
    expected: str
    test: Callable[[object], bool]
    convert: Callable[[Any], Any]
    required: bool


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# What each annotation accepts: (description, test, conversion of the accepted JSON value).
_KINDS: dict[object, tuple[str, Callable[[object], bool], Callable[[Any], Any]]] = {
    str: ("a string", lambda v: isinstance(v, str), str),
    int: ("an integer", _is_int, int),
    float: ("a number", lambda v: _is_int(v) or isinstance(v, float), float),
    bool: ("true or false", lambda v: isinstance(v, bool), bool),
    tuple[str, ...]: (
        "a list of strings",
        lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
        tuple,
    ),
}


def _kind(annotation: object) -> tuple[str, Callable[[object], bool], Callable[[Any], Any]]:
    """The check for ``annotation``: one of :data:`_KINDS`, or ``X | None`` of one."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        expected, test, convert = _KINDS[inner]
        return (
            f"{expected} or null",
            lambda v: v is None or test(v),
            lambda v: None if v is None else convert(v),
        )
    return _KINDS[annotation]


class DataclassCodec(Generic[T]):
    """A frozen dataclass as a flat JSON object (see the module docstring).

    ``name`` prefixes messages ("in-flight upgrade record: field 'pid' must be …").
    """

    def __init__(self, cls: type[T], *, name: str) -> None:
        self.cls, self.name = cls, name
        hints = typing.get_type_hints(cls)
        self._fields = [
            _Field(
                f.name,
                camel(f.name),
                *_kind(hints[f.name]),
                required=f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cast(Any, cls))
        ]

    def decode(self, doc: object) -> T:
        if not isinstance(doc, dict):
            raise Corrupt(f"{self.name}: expected a JSON object, got {json_type(doc)}")
        values: dict[str, Any] = {}
        for f in self._fields:
            if f.key not in doc:
                if f.required:
                    raise Corrupt(f"{self.name}: field {f.key!r} is missing")
                continue  # written before the field existed: its default
            value = doc[f.key]
            if not f.test(value):
                raise Corrupt(
                    f"{self.name}: field {f.key!r} must be {f.expected}, got {json_type(value)}"
                )
            values[f.name] = f.convert(value)
        return self.cls(**values)

    def encode(self, value: T) -> dict[str, Any]:
        return {f.key: _plain(getattr(value, f.name)) for f in self._fields}


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value
