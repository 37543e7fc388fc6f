"""Requests that break a rule — unknown action types, bad payloads or options, invalid states,
unknown ids — give a clear 4xx naming the problem and change nothing."""

from __future__ import annotations

import pytest

from tests.server.harness import DEMO, Agent, Fleet

pytestmark = pytest.mark.anyio


@pytest.fixture
async def agent(fleet: Fleet) -> Agent:
    await fleet.group("web", DEMO)
    return await fleet.enrol("web")


class TestAdminRules:
    async def test_unknown_action_type_is_422_and_nothing_is_queued(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """An action type the server does not define is refused, naming the known ones."""
        response = await fleet.admin(
            "POST", "/actions", {"agentIds": [agent.id], "type": "reboot_host", "payload": {}}
        )
        assert response.status_code == 422
        message = response.json()["error"]["message"]
        assert "reboot_host" in message and "upgrade_agent" in message
        assert await fleet.data("GET", "/actions") == []

    @pytest.mark.parametrize(
        "payload",
        [
            {},
            {"targetVersion": "latest"},
            {"targetVersion": "1.2.3; rm -rf /"},
            {"targetVersion": "1.2.3", "force": True},
        ],
    )
    async def test_bad_upgrade_payload_is_422(
        self, fleet: Fleet, agent: Agent, payload: dict
    ) -> None:
        """upgrade_agent needs exactly a strict targetVersion."""
        response = await fleet.admin(
            "POST",
            "/actions",
            {"agentIds": [agent.id], "type": "upgrade_agent", "payload": payload},
        )
        assert response.status_code == 422
        assert await fleet.data("GET", "/actions") == []

    async def test_bulk_action_with_an_unknown_agent_queues_nothing(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """One unknown id in agentIds: 404 naming it, and no action for the others either."""
        response = await fleet.admin(
            "POST",
            "/actions",
            {
                "agentIds": [agent.id, "9" * 32],
                "type": "upgrade_agent",
                "payload": {"targetVersion": "0.4.2"},
            },
        )
        assert response.status_code == 404
        assert "9" * 32 in response.json()["error"]["message"]
        assert await fleet.data("GET", "/actions") == []

    async def test_action_for_a_revoked_agent_is_409(self, fleet: Fleet, agent: Agent) -> None:
        """Queueing for a revoked agent is a conflict."""
        await fleet.data("POST", f"/agents/{agent.id}/revoke")
        response = await fleet.admin(
            "POST",
            "/actions",
            {
                "agentIds": [agent.id],
                "type": "upgrade_agent",
                "payload": {"targetVersion": "0.4.2"},
            },
        )
        assert response.status_code == 409

    async def test_only_pending_actions_cancel(self, fleet: Fleet, agent: Agent) -> None:
        """Cancelling a running action is a 409 that leaves it running."""
        (action,) = await fleet.upgrade(agent)
        await fleet.heartbeat(
            agent, actionResults=[{"actionId": action["id"], "status": "running"}]
        )
        response = await fleet.admin("POST", f"/actions/{action['id']}/cancel")
        assert response.status_code == 409
        assert "running" in response.json()["error"]["message"]

    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            ({"type": "telnet", "name": "x"}, "unknown input type"),
            ({"type": "file", "name": "x", "options": {}}, "include"),
            (
                {"type": "syslog", "name": "x", "options": {"mode": "tcp", "address": "nope"}},
                "address",
            ),
            (
                {
                    "type": "demo_logs",
                    "name": "x",
                    "options": {"format": "json"},
                    "indexOverride": "Has Spaces",
                },
                "indexOverride",
            ),
            (
                {
                    "type": "demo_logs",
                    "name": "x",
                    "options": {"format": "json"},
                    "sourceOverride": "{{ host }}",
                },
                "sourceOverride",
            ),
            ({"type": "demo_logs", "name": "   "}, "name"),
        ],
    )
    async def test_invalid_input_is_422_and_the_version_stays(
        self, fleet: Fleet, agent: Agent, body: dict, fragment: str
    ) -> None:
        """Options or overrides the renderer would refuse are refused when saved."""
        response = await fleet.admin("POST", "/groups/web/inputs", body)
        assert response.status_code == 422
        assert fragment in response.json()["error"]["message"]
        assert (await fleet.data("GET", "/groups/web"))["configVersion"] == 2

    async def test_input_type_cannot_be_changed(self, fleet: Fleet, agent: Agent) -> None:
        """type is not an editable field."""
        input_id = (await fleet.data("GET", "/groups/web/inputs"))[0]["id"]
        response = await fleet.admin("PATCH", f"/inputs/{input_id}", {"type": "file"})
        assert response.status_code == 422

    async def test_duplicate_slug_is_409(self, fleet: Fleet, agent: Agent) -> None:
        """Two groups cannot share a slug."""
        response = await fleet.admin("POST", "/groups", {"name": "Web"})
        assert response.status_code == 409

    async def test_group_with_live_agents_cannot_be_deleted(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """Deleting a group that agents use is a 409 naming the fix."""
        response = await fleet.admin("DELETE", "/groups/web")
        assert response.status_code == 409
        assert "move or revoke" in response.json()["error"]["message"]

    @pytest.mark.parametrize(
        "query",
        [
            {"status": "sleeping"},
            {"limit": "0"},
            {"limit": "x"},
            {"limit": "99999"},
            {"offset": "-1"},
        ],
    )
    async def test_bad_query_parameters_are_400(self, fleet: Fleet, query: dict) -> None:
        """Unusable list parameters give 400."""
        for path in ("/agents", "/actions"):
            response = await fleet.admin("GET", path, **query)
            assert response.status_code == 400, (path, query)


class TestUnknownIds:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/groups/nope"),
            ("PATCH", "/groups/nope"),
            ("DELETE", "/groups/nope"),
            ("GET", "/groups/nope/inputs"),
            ("POST", "/groups/nope/inputs"),
            ("GET", "/groups/nope/preview"),
            ("GET", "/inputs/nope"),
            ("PATCH", "/inputs/nope"),
            ("DELETE", "/inputs/nope"),
            ("POST", "/enrolment-tokens/nope/revoke"),
            ("GET", "/agents/nope"),
            ("POST", "/agents/nope/move"),
            ("POST", "/agents/nope/revoke"),
            ("GET", "/actions/nope"),
            ("POST", "/actions/nope/cancel"),
        ],
    )
    async def test_unknown_id_is_404(self, fleet: Fleet, method: str, path: str) -> None:
        """Addressing an object that does not exist gives 404 naming it."""
        await fleet.group("web", DEMO)
        body = {"PATCH": {"name": "x"}, "POST": {}}.get(method)
        if path.endswith("/inputs") and method == "POST":
            body = DEMO
        if path.endswith("/move"):
            body = {"group": "web"}
        response = await fleet.admin(method, path, body)
        assert response.status_code == 404, response.text
        assert "nope" in response.json()["error"]["message"]

    async def test_unknown_group_in_bodies_and_filters_is_404(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """A group named in a body or a query that does not exist gives 404."""
        assert (await fleet.admin("POST", "/enrolment-tokens", {"group": "x"})).status_code == 404
        moved = await fleet.admin("POST", f"/agents/{agent.id}/move", {"group": "x"})
        assert moved.status_code == 404
        assert (await fleet.admin("GET", "/agents", group="x")).status_code == 404
        assert (await fleet.admin("GET", "/enrolment-tokens", group="x")).status_code == 404

    async def test_unknown_route_and_method_answer_in_the_envelope(self, fleet: Fleet) -> None:
        """No such route gives 404, a wrong method 405, both as error envelopes."""
        missing = await fleet.client.get("/api/v1/nothing")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        wrong = await fleet.client.delete("/api/v1/agents/enrol")
        assert wrong.status_code == 405
        assert wrong.json()["error"]["code"] == "method_not_allowed"


def _input(type_: str, options: dict, **fields: object) -> dict:
    return {
        "type": type_,
        "name": fields.pop("name", f"{type_} input"),
        "options": options,
        **fields,
    }


# Issue 10, section 1: option values Vector 0.57 refuses at load or build, or crashes on.
REFUSED_OPTIONS = [
    (_input("syslog", {"mode": "tcp", "address": "localhost:514"}), "'address'"),
    (_input("syslog", {"mode": "udp", "address": "999.1.1.1:514"}), "'address'"),
    (_input("socket", {"mode": "tcp", "address": "127.0.0.01:514"}), "'address'"),
    (_input("socket", {"mode": "udp", "address": "[1::2::3]:9000"}), "'address'"),
    (_input("syslog", {"mode": "tcp", "address": "systemd#0"}), "'address'"),
    (_input("syslog", {"mode": "tcp", "address": "systemd#99999999999999999999"}), "'address'"),
    (_input("http_server", {"address": "localhost:8080"}), "'address'"),
    (_input("syslog", {"mode": "tcp", "address": "0.0.0.0:514", "permit_origin": ["anywhere"]}),
     "'permit_origin[0]'"),
    (_input("socket", {"mode": "tcp", "address": "0.0.0.0:1", "permit_origin": ["10.1.2.3"]}),
     "'permit_origin[0]'"),
    (_input("file", {"include": ["/var/log/[app.log"]}), "'include[0]'"),
    (_input("file", {"include": ["/var/log/app**.log"]}), "'include[0]'"),
    (_input("file", {"include": ["/x"], "exclude": ["/var/log/[x"]}), "'exclude[0]'"),
    (_input("kubernetes_logs", {"exclude_paths_glob_patterns": ["**/[x"]}),
     "'exclude_paths_glob_patterns[0]'"),
    (_input("http_server", {"address": "0.0.0.0:80", "headers": ["X-[*"]}), "'headers[0]'"),
    (_input("http_server", {"address": "0.0.0.0:80", "query_parameters": ["a**"]}),
     "'query_parameters[0]'"),
    (_input("kafka", {"bootstrap_servers": "k:1", "group_id": "g", "topics": ["t"],
                      "socket_timeout_ms": 1}), "'socket_timeout_ms'"),
    (_input("kafka", {"bootstrap_servers": "k:1", "group_id": "g", "topics": ["t"],
                      "session_timeout_ms": 3_600_001}), "'session_timeout_ms'"),
    (_input("kafka", {"bootstrap_servers": "k:1", "group_id": "g", "topics": ["^(x"]}),
     "'topics[0]'"),
    (_input("file", {"include": ["/x"], "ignore_older_secs": 2**62}), "'ignore_older_secs'"),
    (_input("kubernetes_logs", {"delay_deletion_ms": 2**62}), "'delay_deletion_ms'"),
    (_input("file", {"include": ["/x"], "max_line_bytes": 2**40}), "'max_line_bytes'"),
    (_input("journald", {"include_matches": {"<<": ["x"]}}), "'include_matches'"),
    (_input("journald", {"include_units": ["team\u0085a"]}), "'include_units[0]'"),
    (_input("journald", {"current_boot_only": False}), "'current_boot_only'"),
    (_input("demo_logs", {"format": "json", "count": 10}), "'count'"),
    (_input("demo_logs", {"format": "json"}, sourceOverride="team\u0085a"), "sourceOverride"),
]  # fmt: skip


class TestInputOptionRules:
    @pytest.mark.parametrize(("body", "option"), REFUSED_OPTIONS)
    async def test_values_vector_refuses_are_422_naming_the_option(
        self, fleet: Fleet, agent: Agent, body: dict, option: str
    ) -> None:
        """Creating an input Vector would refuse or crash on is a one-line 422; nothing changes."""
        response = await fleet.admin("POST", "/groups/web/inputs", body)
        assert response.status_code == 422, response.text
        message = response.json()["error"]["message"]
        assert option in message and "\n" not in message
        assert (await fleet.data("GET", "/groups/web"))["configVersion"] == 2

    @pytest.mark.parametrize(("body", "option"), REFUSED_OPTIONS[:-1])
    async def test_editing_to_a_refused_value_is_422(
        self, fleet: Fleet, agent: Agent, body: dict, option: str
    ) -> None:
        """The same rules apply when an input's options are replaced."""
        created = await fleet.data(
            "POST", "/groups/web/inputs", _input(body["type"], VALID[body["type"]])
        )
        response = await fleet.admin(
            "PATCH", f"/inputs/{created['id']}", {"options": body["options"]}
        )
        assert response.status_code == 422, response.text
        assert option in response.json()["error"]["message"]

    @pytest.mark.parametrize("delimiter", ["\r\n", "\t"])
    async def test_control_character_line_delimiters_are_accepted(
        self, fleet: Fleet, agent: Agent, delimiter: str
    ) -> None:
        """'\\r\\n' and '\\t' are real delimiters, not empty values."""
        body = _input("file", {"include": ["/var/log/*.log"], "line_delimiter": delimiter})
        created = await fleet.data("POST", "/groups/web/inputs", body)
        assert created["options"]["line_delimiter"] == delimiter


VALID = {
    "syslog": {"mode": "tcp", "address": "0.0.0.0:5514"},
    "socket": {"mode": "tcp", "address": "0.0.0.0:5515"},
    "http_server": {"address": "0.0.0.0:5516"},
    "file": {"include": ["/var/log/*.log"]},
    "kubernetes_logs": {},
    "kafka": {"bootstrap_servers": "k:1", "group_id": "g", "topics": ["t"]},
    "journald": {},
    "demo_logs": {"format": "json"},
}


class TestListenerConflicts:
    async def test_second_input_on_one_listener_is_409_naming_the_first(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """Two inputs of a group on one port: Vector refuses the config, so the API refuses."""
        first = await fleet.data(
            "POST",
            "/groups/web/inputs",
            _input("syslog", {"mode": "tcp", "address": "0.0.0.0:514"}, name="fw"),
        )
        response = await fleet.admin(
            "POST", "/groups/web/inputs", _input("http_server", {"address": "[::]:514"})
        )
        assert response.status_code == 409, response.text
        message = response.json()["error"]["message"]
        assert "'fw'" in message and first["id"] in message and "tcp 0.0.0.0:514" in message
        assert (await fleet.data("GET", "/groups/web"))["configVersion"] == 3

    async def test_two_systemd_sockets_are_409(self, fleet: Fleet, agent: Agent) -> None:
        """systemd and systemd#1 are the same socket, whatever the protocol."""
        await fleet.data(
            "POST", "/groups/web/inputs", _input("syslog", {"mode": "tcp", "address": "systemd"})
        )
        response = await fleet.admin(
            "POST", "/groups/web/inputs", _input("socket", {"mode": "udp", "address": "systemd#1"})
        )
        assert response.status_code == 409
        assert "systemd socket #1" in response.json()["error"]["message"]

    async def test_editing_onto_a_claimed_listener_is_409(self, fleet: Fleet, agent: Agent) -> None:
        """Changing an input's address to one another input holds is refused."""
        await fleet.data(
            "POST",
            "/groups/web/inputs",
            _input("syslog", {"mode": "udp", "address": "0.0.0.0:514"}, name="a"),
        )
        other = await fleet.data(
            "POST",
            "/groups/web/inputs",
            _input("socket", {"mode": "udp", "address": "0.0.0.0:515"}),
        )
        response = await fleet.admin(
            "PATCH",
            f"/inputs/{other['id']}",
            {"options": {"mode": "udp", "address": "127.0.0.1:514"}},
        )
        assert response.status_code == 409
        assert "'a'" in response.json()["error"]["message"]
        assert (await fleet.data("GET", f"/inputs/{other['id']}"))["options"][
            "address"
        ] == "0.0.0.0:515"

    async def test_a_disabled_input_may_share_but_not_be_enabled(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """A disabled input claims nothing; enabling it while the listener is held is 409."""
        await fleet.data(
            "POST",
            "/groups/web/inputs",
            _input("syslog", {"mode": "tcp", "address": "0.0.0.0:514"}, name="a"),
        )
        spare = await fleet.data(
            "POST",
            "/groups/web/inputs",
            _input("socket", {"mode": "tcp", "address": "0.0.0.0:514"}, enabled=False),
        )
        response = await fleet.admin("PATCH", f"/inputs/{spare['id']}", {"enabled": True})
        assert response.status_code == 409
        assert (await fleet.data("GET", f"/inputs/{spare['id']}"))["enabled"] is False
        renamed = await fleet.admin("PATCH", f"/inputs/{spare['id']}", {"name": "spare"})
        assert renamed.status_code == 200

    async def test_other_groups_and_protocols_do_not_clash(
        self, fleet: Fleet, agent: Agent
    ) -> None:
        """Listeners are per group and per protocol."""
        body = _input("syslog", {"mode": "tcp", "address": "0.0.0.0:514"})
        await fleet.data("POST", "/groups/web/inputs", body)
        await fleet.group("db", body)
        udp = _input("syslog", {"mode": "udp", "address": "0.0.0.0:514"})
        assert (await fleet.admin("POST", "/groups/web/inputs", udp)).status_code == 201
        preview = await fleet.admin("GET", "/groups/web/preview")
        assert preview.status_code == 200
