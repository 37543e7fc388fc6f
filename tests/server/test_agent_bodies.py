"""What agents send, read the way SPEC section 5 and the OpenAPI document mean it (issue 10 §2):
unknown fields ignored, one bad action result ignored alone, JSON only by Content-Type,
ECMA-262 patterns, tokens masked in result keys, moved agents that send no etag."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from structlog.testing import capture_logs

from logpulse_agent.server.openapi import load_document
from tests.server.harness import ADMIN, DEMO, JOURNALD, Agent, Fleet, beat

pytestmark = pytest.mark.anyio

TOKEN = "AGT_" + "k" * 43


@pytest.fixture
async def agent(fleet: Fleet) -> Agent:
    await fleet.group("web", DEMO)
    return await fleet.enrol("web")


class TestForwardCompatibility:
    async def test_unknown_heartbeat_fields_are_ignored(self, fleet: Fleet, agent: Agent) -> None:
        """SPEC §11.1: a newer agent's extra fields (top level and nested) are accepted and
        not stored; the known ones are."""
        response = await fleet.heartbeat(
            agent,
            appliedConfigVersion=2,
            cpuTemperature=71,
            configError={"configVersion": 2, "message": "bad", "at": None, "hint": "x"},
        )
        assert response.status_code == 200, response.text
        shown = await fleet.agent(agent)
        assert shown["appliedConfigVersion"] == 2
        assert shown["configError"] == {"configVersion": 2, "message": "bad", "at": None}
        assert "cpuTemperature" not in json.dumps(shown)

    async def test_unknown_enrol_fields_are_ignored(self, fleet: Fleet) -> None:
        await fleet.group("web", DEMO)
        response = await fleet.enrol_response(await fleet.token("web"), machineId="abc")
        assert response.status_code == 201, response.text

    async def test_admin_bodies_still_refuse_unknown_fields(self, fleet: Fleet) -> None:
        """An operator's typo is refused, not silently dropped."""
        response = await fleet.admin("POST", "/groups", {"name": "db", "slgu": "db"})
        assert response.status_code == 422
        assert "slgu" in response.json()["error"]["message"]


class TestActionResults:
    @pytest.mark.parametrize(
        "bad",
        [
            {"actionId": "x", "status": "cancelled"},
            {"actionId": "a" * 65, "status": "done"},
            {"actionId": "x"},
            {"status": "done"},
            "done",
            {"actionId": "x", "status": "done", "result": "not an object"},
        ],
        ids=["unknown status", "long id", "no status", "no id", "not an object", "bad result"],
    )
    async def test_one_bad_result_is_ignored_and_the_rest_kept(
        self, fleet: Fleet, agent: Agent, bad: Any
    ) -> None:
        """The heartbeat answers 200, its fields are stored, the good result is applied, and
        the bad one is logged (SPEC §5)."""
        (action,) = await fleet.upgrade(agent)
        good = {"actionId": action["id"], "status": "done", "result": {"toVersion": "0.4.2"}}
        with capture_logs() as logs:
            response = await fleet.heartbeat(
                agent, appliedConfigVersion=2, actionResults=[bad, good]
            )
        assert response.status_code == 200, response.text
        assert (await fleet.agent(agent))["appliedConfigVersion"] == 2
        stored = await fleet.data("GET", f"/actions/{action['id']}")
        assert (stored["status"], stored["result"]) == ("done", {"toVersion": "0.4.2"})
        assert any(e["event"] == "action.result_ignored" for e in logs)

    async def test_a_token_in_a_result_key_is_masked(self, fleet: Fleet, agent: Agent) -> None:
        """Keys are redacted like values; two keys that mask alike both survive."""
        (action,) = await fleet.upgrade(agent)
        result = {TOKEN: "v", "nested": {f"env {TOKEN}": 1, "AGT_" + "j" * 43: 2}}
        report = {"actionId": action["id"], "status": "failed", "result": result}
        response = await fleet.heartbeat(agent, actionResults=[report])
        assert response.status_code == 200
        stored = await fleet.data("GET", f"/actions/{action['id']}")
        text = json.dumps(stored)
        assert "kkkk" not in text and "jjjj" not in text
        assert stored["result"] == {
            "AGT_***": "v",
            "nested": {"env AGT_***": 1, "AGT_***": 2},
        }


class TestContentType:
    @pytest.mark.parametrize(
        "content_type",
        ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
    )
    async def test_a_body_declared_as_not_json_is_415_everywhere(
        self, fleet: Fleet, agent: Agent, content_type: str
    ) -> None:
        before = await fleet.data("GET", "/agents")
        routes = [
            ("POST", f"/api/v1/agents/{agent.id}/heartbeat", agent.auth, beat()),
            ("POST", "/api/v1/admin/groups", ADMIN, {"name": "db"}),
            ("POST", "/api/v1/agents/enrol", {}, {"bootstrapToken": "EBT_x"}),
        ]
        for method, path, headers, body in routes:
            response = await fleet.client.request(
                method,
                path,
                content=json.dumps(body),
                headers={**headers, "Content-Type": content_type},
            )
            assert response.status_code == 415, (path, response.text)
            assert response.json()["error"]["code"] == "unsupported_media_type"
        assert await fleet.data("GET", "/agents") == before

    @pytest.mark.parametrize(
        "content_type",
        ["application/json", "application/json; charset=utf-8", "application/merge-patch+json"],
    )
    async def test_json_types_are_read(self, fleet: Fleet, agent: Agent, content_type: str) -> None:
        response = await fleet.client.post(
            f"/api/v1/agents/{agent.id}/heartbeat",
            content=json.dumps(beat()),
            headers={**agent.auth, "Content-Type": content_type},
        )
        assert response.status_code == 200, response.text


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
        return found + [p for value in node.values() for p in _patterns(value)]
    if isinstance(node, list):
        return [p for value in node for p in _patterns(value)]
    return []


class TestEcmaPatterns:
    @pytest.mark.parametrize("slug", ["prod\n", "prod\r\n", "pr\nod", "\u0663\u0663"])
    async def test_look_alike_slugs_are_refused(self, fleet: Fleet, slug: str) -> None:
        """``$`` is the end of the value, not "before a final newline"."""
        for method, path, body in (
            ("POST", "/groups", {"name": "Prod", "slug": slug}),
            ("PATCH", "/groups/web", {"slug": slug}),
        ):
            if method == "PATCH":
                await fleet.group("web")
            response = await fleet.admin(method, path, body)
            assert response.status_code == 422, (slug, response.text)
        assert all(g["slug"] != slug for g in await fleet.data("GET", "/groups"))

    @pytest.mark.parametrize(
        "version", ["1.2.3\n", "\u0661.\u0662.\u0663", "1.2.3\u0660", "v1.2.3\n"]
    )
    async def test_odd_target_versions_are_refused(
        self, fleet: Fleet, agent: Agent, version: str
    ) -> None:
        """``\\d`` is ``[0-9]``: Arabic-Indic digits and a trailing newline are not versions."""
        body = {
            "agentIds": [agent.id],
            "type": "upgrade_agent",
            "payload": {"targetVersion": version},
        }
        response = await fleet.admin("POST", "/actions", body)
        assert response.status_code == 422, response.text

    async def test_plain_versions_still_pass(self, fleet: Fleet, agent: Agent) -> None:
        for version in ("1.2.3", "v0.4.2-rc.1", "2.0.0+build.7"):
            (action,) = await fleet.upgrade(agent, version=version)
            assert action["payload"] == {"targetVersion": version}

    def test_every_pattern_in_the_document_means_the_whole_value(self) -> None:
        """The class: for every ``pattern`` of the document, a value it accepts stops
        matching with a newline appended, as ECMA-262 would have it."""
        from logpulse_agent.server.openapi import ecma_regex

        patterns = set(_patterns(load_document()))
        assert len(patterns) >= 6
        for pattern in patterns:
            regex = ecma_regex(pattern)
            sample = _sample(pattern)
            assert regex.search(sample), (pattern, sample)
            assert not regex.search(sample + "\n"), pattern
            assert not regex.search(sample.replace("1", "\u0661")) or "1" not in sample, pattern

    def test_dollar_inside_a_class_or_escaped_is_kept(self) -> None:
        from logpulse_agent.server.openapi import ecma_regex

        assert ecma_regex(r"^[$]+$").search("$$")
        assert not ecma_regex(r"^[$]+$").search("$$\n")
        assert ecma_regex(r"^a\$$").search("a$")
        assert not ecma_regex(r"^\w+$").search("é")


def _sample(pattern: str) -> str:
    """A value each of the document's patterns accepts (they are all simple)."""
    samples = {
        r"^[a-z_]+$": "not_found",
        r"^[0-9a-f]{32}$": "1" * 32,
        r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$": "prod-1",
        r"^AGT_[A-Za-z0-9_-]{43}$": "AGT_" + "1" * 43,
        r"^EBT_[A-Za-z0-9_-]{43}$": "EBT_" + "1" * 43,
        r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$": "1.2.31",
        r"^sha256:[0-9a-f]{64}$": "sha256:" + "1" * 64,
        r"^[^\x00-\x1f\x7f]+$": "out_ab",  # data-plane component ids, kinds, types
        r"^\d{1,3}(\.\d{1,3})?%$": "12.5%",  # a rollout phase
    }
    assert pattern in samples, f"add a sample for the new pattern {pattern!r}"
    assert re.search(pattern, samples[pattern])
    return samples[pattern]


class TestMovedAgentWithoutEtag:
    async def test_it_is_served_once_then_answered_204_and_counted(self, fleet: Fleet) -> None:
        """SPEC §5 checks the etag only "if sent": a moved agent that never sends one gets its
        new group's config once, then 204 for that version, and its applied version counts."""
        await fleet.group("web", DEMO, DEMO, DEMO)  # version 4
        await fleet.group("db", JOURNALD)  # version 2
        agent = await fleet.enrol("web")
        await fleet.pending(agent, appliedConfigVersion=4)
        await fleet.data("POST", f"/agents/{agent.id}/move", {"group": "db"})
        first = await fleet.config(agent, since=4)  # old group's version, ahead of db's 2
        assert (first.status_code, first.headers["x-config-version"]) == (200, "2")
        await fleet.pending(agent, appliedConfigVersion=4)  # not applied yet
        assert (await fleet.agent(agent))["appliedConfigVersion"] == 0
        second = await fleet.config(agent, since=2)
        assert second.status_code == 204
        await fleet.pending(agent, appliedConfigVersion=2)
        shown = await fleet.agent(agent)
        assert (shown["appliedConfigVersion"], shown["groupConfigVersion"]) == (2, 2)
        assert (await fleet.config(agent, since=2)).status_code == 204

    async def test_a_second_move_needs_the_new_groups_config_served_again(
        self, fleet: Fleet
    ) -> None:
        await fleet.group("web", DEMO)  # version 2
        await fleet.group("db", JOURNALD)  # version 2
        agent = await fleet.enrol("web")
        await fleet.data("POST", f"/agents/{agent.id}/move", {"group": "db"})
        assert (await fleet.config(agent, since=2)).status_code == 200
        await fleet.data("POST", f"/agents/{agent.id}/move", {"group": "web"})
        again = await fleet.config(agent, since=2)
        assert again.status_code == 200
        assert b"demo_logs" in again.content
        assert (await fleet.config(agent, since=2)).status_code == 204
