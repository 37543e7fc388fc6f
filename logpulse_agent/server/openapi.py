r"""The spec-first OpenAPI document (``openapi.yaml``) and the request checks derived from it.

Every JSON request body is validated against the schema its operation declares, so the
document is the single description of what the server accepts. Payloads of remote actions are
checked against the component schema tagged ``x-action-type`` with the action's type.

``pattern`` keeps the meaning the OpenAPI document gives it, ECMA-262 (JSON Schema's regex
dialect), not Python's: ``$`` is the end of the input (Python's also matches before a final
newline, so ``"prod\n"`` passed a slug pattern) and ``\d``/``\w`` are ASCII (Python's match
every Unicode digit). See :func:`ecma_regex`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache, cached_property
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from logpulse_agent.server.errors import Unprocessable

HTTP_METHODS = ("get", "put", "post", "patch", "delete", "head", "options")


def load_document() -> dict[str, Any]:
    """The bundled ``openapi.yaml`` as a mapping."""
    text = resources.files("logpulse_agent.server").joinpath("openapi.yaml").read_text("utf-8")
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError("openapi.yaml is not a mapping")
    return doc


def inline_refs(node: Any, doc: dict[str, Any], depth: int = 0) -> Any:
    """``node`` with every local ``$ref`` replaced by a copy of its target.

    Validators of the inlined schemas skip reference resolution on every call, which is most
    of the cost of checking a heartbeat. The document's schemas are not recursive; a cycle
    would stop at ``depth`` 50 with a ``ValueError``.
    """
    if depth > 50:
        raise ValueError("openapi.yaml: $ref nesting too deep (a cycle?)")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = doc
            for part in ref[2:].split("/"):
                target = target[part]
            return inline_refs(target, doc, depth + 1)
        return {key: inline_refs(value, doc, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [inline_refs(value, doc, depth + 1) for value in node]
    return node


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` (ECMA-262, as JSON Schema means it) compiled to match the same in Python.

    Two differences matter for anchored patterns like ours: an unescaped ``$`` outside a
    character class becomes ``\\Z`` (end of input only), and the pattern is compiled with
    ``re.ASCII`` so ``\\d``, ``\\w`` and ``\\b`` mean what they mean in ECMA-262. Other
    ECMA-only syntax (``\\u{…}``, lookbehind differences, ``.`` and U+2028) is not used by the
    document and not translated.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# Draft 2020-12 with ECMA-262 patterns: the validator class every check of the server uses.
Validator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _ecma_pattern}
)


def describe(error: ValidationError) -> str:
    """A one-line reading of a schema violation, naming the field it is about."""
    where = ".".join(str(part) for part in error.absolute_path)
    message = error.message
    if error.validator == "oneOf" and error.context:
        message = best_match(error.context).message
    if len(message) > 200:
        message = message[:199] + "…"
    return f"{where}: {message}" if where else message


class OpenApi:
    """The document plus one compiled validator per operation with a JSON request body."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self._requests: dict[str, Any] = {}
        self._actions: dict[str, Any] = {}
        self._components: dict[str, Any] = {}
        for path_item in doc.get("paths", {}).values():
            for method, operation in path_item.items():
                if method not in HTTP_METHODS:
                    continue
                content = operation.get("requestBody", {}).get("content", {})
                schema = content.get("application/json", {}).get("schema")
                if schema is not None:
                    self._requests[operation["operationId"]] = self._validator(schema)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            action_type = schema.get("x-action-type")
            if action_type:
                ref = {"$ref": f"#/components/schemas/{name}"}
                self._actions[action_type] = self._validator(ref)

    @classmethod
    def load(cls) -> OpenApi:
        return cls(load_document())

    def _validator(self, schema: dict[str, Any]) -> Any:
        """A validator built once; no format checker (``format`` stays an annotation)."""
        return Validator(inline_refs(schema, self.doc))

    @property
    def action_types(self) -> frozenset[str]:
        """The remote action types the document defines a payload schema for."""
        return frozenset(self._actions)

    @cached_property
    def json_bytes(self) -> bytes:
        return json.dumps(self.doc, separators=(",", ":")).encode("utf-8")

    def check_request(self, operation_id: str, body: Any) -> dict[str, Any]:
        """``body`` when it fits the operation's request schema, else :class:`Unprocessable`."""
        validator = self._requests[operation_id]
        if not validator.is_valid(body):
            error = best_match(validator.iter_errors(body))
            assert error is not None
            raise Unprocessable(f"invalid request body: {describe(error)}")
        assert isinstance(body, dict)
        return body

    def problem(self, schema_name: str, value: Any) -> str | None:
        """Why ``value`` does not fit the component schema ``schema_name``; ``None`` if it fits."""
        validator = self._components.get(schema_name)
        if validator is None:
            validator = self._validator({"$ref": f"#/components/schemas/{schema_name}"})
            self._components[schema_name] = validator
        if validator.is_valid(value):  # the common case, without building error objects
            return None
        error = best_match(validator.iter_errors(value))
        return None if error is None else describe(error)

    def check_action_payload(self, action_type: str, payload: Any) -> None:
        """:class:`Unprocessable` unless ``action_type`` is known and ``payload`` fits it."""
        validator = self._actions.get(action_type)
        if validator is None:
            known = ", ".join(sorted(self._actions))
            raise Unprocessable(f"unknown action type {action_type!r}; known types: {known}")
        error = best_match(validator.iter_errors(payload))
        if error is not None:
            raise Unprocessable(f"invalid payload for {action_type}: {describe(error)}")
