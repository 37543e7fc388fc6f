"""The spec-first OpenAPI document (``openapi.yaml``) and the request checks derived from it.

Every JSON request body is validated against the schema its operation declares, so the
document is the single description of what the server accepts. Payloads of remote actions are
checked against the component schema tagged ``x-action-type`` with the action's type.
"""

from __future__ import annotations

import contextlib
import json
from functools import cached_property
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from logpulse_agent.server.errors import Unprocessable
from logpulse_agent.server.schema_fastpath import Check, Unsupported, compile_check

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
        self._requests: dict[str, Draft202012Validator] = {}
        # Compiled accept-checks (see schema_fastpath): a yes skips jsonschema, a no asks it.
        self._fast: dict[str, Check] = {}
        self._actions: dict[str, Draft202012Validator] = {}
        for path_item in doc.get("paths", {}).values():
            for method, operation in path_item.items():
                if method not in HTTP_METHODS:
                    continue
                content = operation.get("requestBody", {}).get("content", {})
                schema = content.get("application/json", {}).get("schema")
                if schema is not None:
                    validator = self._validator(schema)
                    self._requests[operation["operationId"]] = validator
                    with contextlib.suppress(Unsupported):  # no fast path: jsonschema only
                        self._fast[operation["operationId"]] = compile_check(validator.schema)
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            action_type = schema.get("x-action-type")
            if action_type:
                ref = {"$ref": f"#/components/schemas/{name}"}
                self._actions[action_type] = self._validator(ref)

    @classmethod
    def load(cls) -> OpenApi:
        return cls(load_document())

    def _validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        return Draft202012Validator(inline_refs(schema, self.doc))

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
        fast = self._fast.get(operation_id)
        if fast is not None and fast(body):
            assert isinstance(body, dict)
            return body
        if not validator.is_valid(body):
            error = best_match(validator.iter_errors(body))
            assert error is not None
            raise Unprocessable(f"invalid request body: {describe(error)}")
        assert isinstance(body, dict)
        return body

    def check_action_payload(self, action_type: str, payload: Any) -> None:
        """:class:`Unprocessable` unless ``action_type`` is known and ``payload`` fits it."""
        validator = self._actions.get(action_type)
        if validator is None:
            known = ", ".join(sorted(self._actions))
            raise Unprocessable(f"unknown action type {action_type!r}; known types: {known}")
        error = best_match(validator.iter_errors(payload))
        if error is not None:
            raise Unprocessable(f"invalid payload for {action_type}: {describe(error)}")
