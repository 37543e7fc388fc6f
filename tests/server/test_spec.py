"""The OpenAPI document and the app agree: same routes, resolvable schemas, served as JSON."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from starlette.applications import Starlette
from starlette.routing import Route

from logpulse_agent.server.openapi import HTTP_METHODS, OpenApi, load_document
from tests.server.harness import Fleet
from tests.server.spec_check import SpecChecker, SpecViolation, route_templates


def app_routes(app: Starlette) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET
                found.add((method, re.sub(r"\{[^}]+\}", "{}", route.path)))
    return found


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


class TestDocument:
    def test_every_route_of_the_app_is_documented_and_vice_versa(self, app: Starlette) -> None:
        """The app's (method, path) pairs are exactly the document's operations."""
        doc = load_document()
        assert app_routes(app) == route_templates(doc)

    def test_every_reference_resolves(self) -> None:
        """Each $ref points at something in the document."""
        doc = load_document()
        for ref in refs(doc):
            node: Any = doc
            for part in ref.lstrip("#/").split("/"):
                assert part in node, ref
                node = node[part]

    def test_every_schema_is_valid_json_schema(self) -> None:
        """Component schemas are valid JSON Schema 2020-12 (OpenAPI 3.1's dialect)."""
        doc = load_document()
        assert doc["openapi"].startswith("3.1")
        for schema in doc["components"]["schemas"].values():
            Draft202012Validator.check_schema(schema)

    def test_operation_ids_are_unique_and_secured_operations_declare_401(self) -> None:
        """operationIds are unique; every operation with a bearer token can answer 401/403."""
        doc = load_document()
        seen = []
        for item in doc["paths"].values():
            for method, op in item.items():
                if method not in HTTP_METHODS:
                    continue
                seen.append(op["operationId"])
                if op.get("security"):
                    assert {"401", "403"} <= set(op["responses"]), op["operationId"]
        assert len(seen) == len(set(seen))

    def test_admin_bodies_refuse_unknown_fields_agent_bodies_ignore_them(self) -> None:
        """Admin request bodies and action payloads say additionalProperties: false (a typo
        is refused); what agents send does not (SPEC §11.1: newer agents' fields are ignored)."""
        doc = load_document()
        agent_sent = {"EnrolRequest", "HeartbeatRequest", "ConfigError", "ActionResult"}
        for name, schema in doc["components"]["schemas"].items():
            if name in agent_sent:
                assert "additionalProperties" not in schema, name
            elif name.endswith("Request") or name.endswith("Payload"):
                assert schema.get("additionalProperties") is False, name

    def test_upgrade_agent_is_the_known_action_type(self) -> None:
        """Action types come from payload schemas tagged x-action-type."""
        assert OpenApi.load().action_types == frozenset({"upgrade_agent"})


class TestResponseChecker:
    def test_checker_refuses_an_undeclared_status(self) -> None:
        """A status an operation does not declare is a violation."""
        import httpx

        request = httpx.Request("GET", "http://t/api/v1/admin/groups")
        response = httpx.Response(
            418, json={"error": {"code": "x", "message": "y"}}, request=request
        )
        with pytest.raises(SpecViolation, match="not declared"):
            SpecChecker().check(response)

    def test_checker_refuses_a_body_that_breaks_the_schema(self) -> None:
        """A 200 whose body misses a required field is a violation."""
        import httpx

        request = httpx.Request("GET", "http://t/api/v1/admin/groups")
        response = httpx.Response(200, json={"data": [{"id": "x"}]}, request=request)
        with pytest.raises(SpecViolation):
            SpecChecker().check(response)


@pytest.mark.anyio
async def test_openapi_json_serves_the_document(fleet: Fleet) -> None:
    """GET /openapi.json answers the YAML document as JSON."""
    response = await fleet.client.get("/openapi.json")
    assert response.status_code == 200
    assert json.loads(response.content) == load_document()
