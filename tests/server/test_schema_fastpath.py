"""The compiled accept-checks agree with jsonschema on every request schema they compile."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logpulse_agent.server.openapi import OpenApi
from logpulse_agent.server.schema_fastpath import Unsupported, compile_check

API = OpenApi.load()
COMPILED = sorted(API._fast)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False)
    | st.sampled_from([0, 1, 1.0, -1, 0.5, "", "linux", "kubernetes", "0.1.0", "v1.2.3", "main"])
    | st.text(max_size=70)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


def _field_names(schema: Any) -> list[str]:
    return sorted((schema.get("properties") or {}) if isinstance(schema, dict) else {})


@st.composite
def near_valid(draw: st.DrawFn, operation: str) -> dict[str, Any]:
    """Objects using the operation's own field names, mostly with plausible values."""
    names = _field_names(API._requests[operation].schema)
    chosen = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    body = {name: draw(JSON) for name in chosen}
    if draw(st.booleans()):
        body[draw(st.text(max_size=8))] = draw(JSON)
    return body


HEARTBEATS = st.fixed_dictionaries(
    {
        "agentVersion": st.sampled_from(["0.1.0", "v1.2.3", "1.0.0-rc.1", "x", ""]),
        "appliedConfigVersion": st.integers(min_value=-1, max_value=10**6) | st.just(2.0),
        "vectorRunning": st.booleans() | st.just(1),
    },
    optional={
        "vectorVersion": st.none() | st.text(max_size=70),
        "vectorUptimeSeconds": st.none() | st.floats(allow_nan=False) | st.integers(-5, 10**9),
        "configError": st.none()
        | st.fixed_dictionaries(
            {"configVersion": st.integers(-1, 9), "message": st.text(max_size=5)},
            optional={"at": st.text(max_size=25)},
        ),
        "actionResults": st.lists(
            st.fixed_dictionaries(
                {
                    "actionId": st.sampled_from(["a" * 32, "x"]),
                    "status": st.sampled_from(["running", "done", "failed", "pending"]),
                },
                optional={"result": JSON},
            ),
            max_size=3,
        ),
    },
)


@settings(max_examples=500, deadline=None)
@given(body=HEARTBEATS)
def test_fast_heartbeat_check_matches_jsonschema(body: dict[str, Any]) -> None:
    """Heartbeats near the agent's own shape, valid or not, are judged the same both ways."""
    assert API._fast["postHeartbeat"](body) == API._requests["postHeartbeat"].is_valid(body)


def test_the_hot_operations_have_a_fast_path() -> None:
    """Heartbeat and enrolment bodies are checked without jsonschema when they are valid."""
    assert {"postHeartbeat", "enrolAgent"} <= set(COMPILED)


@pytest.mark.parametrize("operation", COMPILED)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fast_check_matches_jsonschema(operation: str, data: st.DataObject) -> None:
    """For any JSON value, the compiled check accepts exactly what jsonschema accepts."""
    validator = API._requests[operation]
    fast = API._fast[operation]
    value = data.draw(JSON | near_valid(operation))
    assert fast(value) == validator.is_valid(value)


def test_valid_heartbeat_takes_the_fast_path() -> None:
    """A heartbeat as the agent sends it is accepted by the compiled check."""
    body = {
        "agentVersion": "0.1.0",
        "vectorVersion": "0.40.0",
        "appliedConfigVersion": 3,
        "vectorRunning": True,
        "vectorUptimeSeconds": 12,
        "configError": {"configVersion": 2, "message": "bad", "at": "2025-01-01T00:00:00Z"},
        "actionResults": [{"actionId": "a" * 32, "status": "done", "result": {}}],
    }
    assert API._requests["postHeartbeat"].is_valid(body)
    assert API._fast["postHeartbeat"](body)


def test_nan_is_left_to_jsonschema() -> None:
    """NaN compares false with every bound: the fast check says no, jsonschema decides."""
    check = compile_check({"type": "number", "minimum": 0})
    assert not check(math.nan)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "uniqueItems": True},
        {"const": 1},
        {"enum": [1, 2]},
        {"type": "object", "patternProperties": {"^x": {}}, "additionalProperties": False},
        {"anyOf": [{"type": "string"}]},
    ],
)
def test_unimplemented_keywords_get_no_fast_path(schema: dict[str, Any]) -> None:
    """A keyword outside the subset makes compilation refuse, never guess."""
    with pytest.raises(Unsupported):
        compile_check(schema)
