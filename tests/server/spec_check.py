"""Checks that a response matches what ``openapi.yaml`` declares for its operation and status.

Used as an httpx response hook by every server test client, so each response a test sees has
been checked: the status is declared for the operation, the content type is one declared, a JSON
body validates against the declared schema, required headers are present and well-formed, and a
response without declared content has no body.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from logpulse_agent.server.openapi import HTTP_METHODS, load_document

URI = "urn:test:openapi"


class SpecViolation(AssertionError):
    pass


class SpecChecker:
    def __init__(self, doc: dict[str, Any] | None = None) -> None:
        self.doc = doc or load_document()
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(URI, resource)
        self.routes: list[tuple[re.Pattern[str], str, dict[str, Any]]] = []
        literal, templated = [], []
        for path, item in self.doc["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
            (templated if "{" in path else literal).append((pattern, path, item))
        self.routes = literal + templated  # literal paths win, as in the app
        self.seen: set[tuple[str, int]] = set()

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        for pattern, _, item in self.routes:
            if pattern.match(path):
                op = item.get(method.lower())
                return op if isinstance(op, dict) else None
        return None

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _validate(self, schema: dict[str, Any], value: Any, what: str) -> None:
        if "$ref" in schema:
            schema = {"$ref": URI + schema["$ref"]}
        validator = Draft202012Validator(schema, registry=self.registry)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            raise SpecViolation(f"{what}: {errors[0].message} at {list(errors[0].path)}")

    def hook(self, response: httpx.Response) -> None:
        """The check as an ``httpx.Client`` response hook."""
        response.read()
        self.check(response)

    async def acheck(self, response: httpx.Response) -> None:
        """The same check as an ``httpx.AsyncClient`` response hook."""
        await response.aread()
        self.check(response)

    def check(self, response: httpx.Response) -> None:
        request = response.request
        what = f"{request.method} {request.url.path} -> {response.status_code}"
        op = self.operation(request.method, request.url.path)
        if op is None:
            # No such route or method: only the error envelope is promised.
            if response.status_code not in (404, 405):
                raise SpecViolation(f"{what}: not an operation of openapi.yaml")
            schema = {"$ref": "#/components/schemas/Error"}
            self._validate(schema, response.json(), what)
            return
        declared = op["responses"].get(str(response.status_code))
        if declared is None:
            raise SpecViolation(f"{what}: status not declared for {op['operationId']}")
        self.seen.add((op["operationId"], response.status_code))
        declared = self._resolve(declared)
        for name, header in declared.get("headers", {}).items():
            header = self._resolve(header)
            value = response.headers.get(name)
            if value is None:
                if header.get("required"):
                    raise SpecViolation(f"{what}: missing header {name}")
                continue
            schema = header.get("schema", {})
            self._validate(
                schema,
                int(value) if schema.get("type") == "integer" else value,
                f"{what} header {name}",
            )
        content = declared.get("content")
        if not content:
            if response.content:
                raise SpecViolation(f"{what}: body where none is declared")
            return
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if media not in content:
            raise SpecViolation(f"{what}: content type {media!r} not in {sorted(content)}")
        if media == "application/json":
            self._validate(content[media]["schema"], json.loads(response.content), what)


def route_templates(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """``(METHOD, path with {} params)`` of every operation in the document."""
    found = set()
    for path, item in doc["paths"].items():
        for method in item:
            if method in HTTP_METHODS:
                found.add((method.upper(), re.sub(r"\{[^}]+\}", "{}", path)))
    return found
