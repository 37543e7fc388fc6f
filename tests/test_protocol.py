"""The wire format: bodies the agent sends, strict parsing of what it receives (SPEC section 5)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from logpulse_agent.controlplane.protocol import (
    ActionResult,
    ConfigErrorReport,
    ConfigUpdate,
    EnrolRequest,
    EnrolResult,
    Heartbeat,
    MalformedAction,
    PendingAction,
    config_etag,
    decode_json,
    is_empty_config,
    parse_config_headers,
    parse_config_update,
    parse_enrol_response,
    parse_error_body,
    parse_heartbeat_response,
)
from logpulse_agent.errors import ProtocolError

AGT = "AGT_s3cretAgentToken-abc"
EBT = "EBT_s3cretBootstrap_xyz"
YAML = b"sources:\n  journald:\n    type: journald\n"


def etag_of(body: bytes) -> str:
    """Spelled out here, independently of config_etag, which it checks."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def enrol_request(**overrides: Any) -> EnrolRequest:
    fields: dict[str, Any] = {
        "bootstrap_token": EBT,
        "hostname": "web-1",
        "platform": "linux",
        "os": "Debian GNU/Linux 12",
        "kernel": "6.1.0-18-amd64",
        "agent_version": "0.4.2",
        "vector_version": "0.40.0",
    }
    return EnrolRequest(**(fields | overrides))


def enrol_reply(**data: Any) -> dict[str, Any]:
    base = {"agentId": "agt-1", "agentToken": AGT, "groupId": "grp-1", "configVersion": 3}
    return {"data": base | data}


def config_headers(overrides: dict[str, str] | None = None, body: bytes = YAML) -> dict[str, str]:
    headers = {
        "Content-Type": "application/yaml",
        "x-config-version": "7",
        "x-config-etag": etag_of(body),
    }
    return headers | (overrides or {})


def heartbeat(**overrides: Any) -> Heartbeat:
    fields: dict[str, Any] = {
        "agent_version": "0.4.2",
        "vector_version": "0.40.0",
        "applied_config_version": 7,
        "vector_running": True,
        "vector_uptime_seconds": 12.5,
        "config_error": None,
    }
    return Heartbeat(**(fields | overrides))


class TestEnrolRequest:
    def test_serialises_every_field_in_camel_case(self) -> None:
        """The enrol body uses exactly the SPEC's names; groupSlug is left out when unset."""
        assert enrol_request().to_json() == {
            "bootstrapToken": EBT,
            "hostname": "web-1",
            "platform": "linux",
            "os": "Debian GNU/Linux 12",
            "kernel": "6.1.0-18-amd64",
            "agentVersion": "0.4.2",
            "vectorVersion": "0.40.0",
        }

    def test_includes_group_slug_only_when_set(self) -> None:
        """A requested group travels as groupSlug."""
        assert enrol_request(group_slug="edge").to_json()["groupSlug"] == "edge"

    def test_sends_unknown_vector_version_as_null(self) -> None:
        """A host whose Vector version is unknown still sends the field, as null."""
        assert enrol_request(vector_version=None).to_json()["vectorVersion"] is None

    def test_repr_hides_the_bootstrap_token(self) -> None:
        """The bootstrap token never shows in a repr (logs, tracebacks)."""
        assert "EBT_" not in repr(enrol_request())


class TestParseEnrolResponse:
    def test_returns_the_identity(self) -> None:
        """A complete answer gives the agent id, token, group and config version."""
        result = parse_enrol_response(enrol_reply())
        assert result == EnrolResult("agt-1", AGT, "grp-1", 3)

    def test_repr_hides_the_agent_token(self) -> None:
        """The agent token never shows in the result's repr."""
        assert "AGT_" not in repr(parse_enrol_response(enrol_reply()))

    def test_ignores_unknown_fields(self) -> None:
        """Fields a newer server adds are ignored, in the envelope and in the data."""
        reply = enrol_reply(region="eu") | {"meta": {"requestId": "r1"}}
        assert parse_enrol_response(reply).agent_id == "agt-1"

    @pytest.mark.parametrize("name", ["agentId", "agentToken", "groupId", "configVersion"])
    def test_names_a_missing_field(self, name: str) -> None:
        """Every field is required; the error names the one that is missing."""
        reply = enrol_reply()
        del reply["data"][name]
        with pytest.raises(ProtocolError, match=f"field 'data.{name}' is missing"):
            parse_enrol_response(reply)

    @pytest.mark.parametrize(
        ("name", "value", "got"),
        [
            ("configVersion", True, "got true"),
            ("configVersion", "3", "got a string"),
            ("configVersion", -1, "got a negative number"),
            ("configVersion", 3.0, "got a number"),
            ("agentId", 17, "got a number"),
            ("agentId", "", "got an empty string"),
            ("groupId", None, "got null"),
        ],
    )
    def test_refuses_a_field_of_the_wrong_type(self, name: str, value: object, got: str) -> None:
        """A mistyped field is refused (a boolean is not an integer), naming field and type."""
        with pytest.raises(ProtocolError, match=f"field 'data.{name}' must be .*, {got}$"):
            parse_enrol_response(enrol_reply(**{name: value}))

    def test_refuses_a_token_that_is_not_an_agent_token(self) -> None:
        """Only AGT_ tokens are accepted: redaction of logs relies on the prefix."""
        with pytest.raises(ProtocolError, match="agentToken' must be an AGT_ token") as info:
            parse_enrol_response(enrol_reply(agentToken="plain-secret"))
        assert "plain-secret" not in str(info.value)

    @pytest.mark.parametrize(
        ("reply", "message"),
        [
            ([], "enrol response must be an object, got a list"),
            ({"agentId": "agt-1"}, "field 'data' is missing"),
            ({"data": [1]}, "field 'data' must be an object, got a list"),
        ],
    )
    def test_requires_the_data_envelope(self, reply: object, message: str) -> None:
        """A successful answer must be wrapped in {"data": {...}}."""
        with pytest.raises(ProtocolError, match=message):
            parse_enrol_response(reply)


class TestHeartbeat:
    def test_serialises_exactly_the_spec_fields(self) -> None:
        """The heartbeat body carries SPEC section 5's names and nothing else."""
        assert heartbeat().to_json() == {
            "agentVersion": "0.4.2",
            "vectorVersion": "0.40.0",
            "appliedConfigVersion": 7,
            "vectorRunning": True,
            "vectorUptimeSeconds": 12.5,
            "configError": None,
        }

    def test_reports_the_last_config_error(self) -> None:
        """configError is an object with configVersion, message and at."""
        error = ConfigErrorReport(8, "sinks.out: unknown field `indx`", "2026-01-02T03:04:05Z")
        assert heartbeat(config_error=error).to_json()["configError"] == {
            "configVersion": 8,
            "message": "sinks.out: unknown field `indx`",
            "at": "2026-01-02T03:04:05Z",
        }

    def test_includes_action_results_only_when_there_are_some(self) -> None:
        """actionResults appears with the SPEC's names when results are pending delivery."""
        done = ActionResult("act-1", "done", {"fromVersion": "0.4.1", "toVersion": "0.4.2"})
        body = heartbeat(action_results=(done,)).to_json()
        assert body["actionResults"] == [
            {
                "actionId": "act-1",
                "status": "done",
                "result": {"fromVersion": "0.4.1", "toVersion": "0.4.2"},
            }
        ]
        assert "actionResults" not in heartbeat().to_json()

    def test_masks_tokens_in_messages_and_results(self) -> None:
        """A token that slipped into an error message or a log tail never leaves the host."""
        error = ConfigErrorReport(8, f"bad token {AGT}", "2026-01-02T03:04:05Z")
        failed = ActionResult("act-1", "failed", {"error": f"installer printed {EBT}"})
        body = json.dumps(heartbeat(config_error=error, action_results=(failed,)).to_json())
        assert AGT not in body
        assert EBT not in body
        assert "AGT_***" in body

    def test_body_is_plain_json(self) -> None:
        """The body serialises with the standard json module (no custom types)."""
        assert json.loads(json.dumps(heartbeat().to_json()))["vectorRunning"] is True


class TestActionResult:
    def test_round_trips_through_json(self) -> None:
        """What to_json writes, from_json reads back (the on-disk outbox relies on it)."""
        result = ActionResult("act-9", "running", {"step": "download"})
        assert ActionResult.from_json(json.loads(json.dumps(result.to_json()))) == result

    @pytest.mark.parametrize(
        ("obj", "message"),
        [
            ({"actionId": "a", "status": "cancelled", "result": {}}, "'status' must be running"),
            ({"actionId": "a", "status": "done", "result": []}, "'result' must be an object"),
            ({"status": "done", "result": {}}, "'actionId' is missing"),
            ("done", "action result must be an object"),
        ],
    )
    def test_refuses_a_malformed_record(self, obj: object, message: str) -> None:
        """A record that is not a valid result is refused with a one-line reason."""
        with pytest.raises(ProtocolError, match=message):
            ActionResult.from_json(obj)


class TestParseHeartbeatResponse:
    def test_returns_pending_actions_and_config_version(self) -> None:
        """Valid pending actions and the group's config version are returned in order."""
        reply = parse_heartbeat_response(
            {
                "data": {
                    "pendingActions": [
                        {
                            "id": "a1",
                            "type": "upgrade_agent",
                            "payload": {"targetVersion": "1.2.3"},
                        },
                        {"id": "a2", "type": "restart", "payload": {}, "deadline": "later"},
                    ],
                    "configVersion": 9,
                }
            }
        )
        assert reply.pending_actions == (
            PendingAction("a1", "upgrade_agent", {"targetVersion": "1.2.3"}),
            PendingAction("a2", "restart", {}),
        )
        assert reply.config_version == 9
        assert reply.malformed_actions == ()

    def test_skips_malformed_actions_and_keeps_the_valid_ones(self) -> None:
        """A bad entry is set aside with its reason (and id when usable); the rest stand."""
        reply = parse_heartbeat_response(
            {
                "data": {
                    "pendingActions": [
                        {"type": "upgrade_agent", "payload": {}},
                        {"id": "a2", "payload": {}},
                        {"id": "a3", "type": "upgrade_agent", "payload": "1.2.3"},
                        "a4",
                        {"id": "a5", "type": "upgrade_agent", "payload": {}},
                    ],
                    "configVersion": 9,
                }
            }
        )
        assert reply.pending_actions == (PendingAction("a5", "upgrade_agent", {}),)
        assert reply.malformed_actions == (
            MalformedAction(
                0, None, "heartbeat response: pendingActions[0]: field 'id' is missing"
            ),
            MalformedAction(
                1, "a2", "heartbeat response: pendingActions[1]: field 'type' is missing"
            ),
            MalformedAction(
                2,
                "a3",
                "heartbeat response: pendingActions[2]: field 'payload' must be an object, "
                "got a string",
            ),
            MalformedAction(
                3, None, "heartbeat response: pendingActions[3] must be an object, got a string"
            ),
        )

    @pytest.mark.parametrize(
        "data", [{"pendingActions": []}, {"pendingActions": [], "configVersion": None}]
    )
    def test_tolerates_a_missing_config_version(self, data: dict[str, Any]) -> None:
        """configVersion is an extension: absent or null means "not told"."""
        assert parse_heartbeat_response({"data": data}).config_version is None

    def test_refuses_a_boolean_config_version(self) -> None:
        """When present, configVersion must be an integer; true is not one."""
        with pytest.raises(ProtocolError, match=r"'data.configVersion' must be a non-negative"):
            parse_heartbeat_response({"data": {"pendingActions": [], "configVersion": True}})

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"configVersion": 1}, "field 'data.pendingActions' is missing"),
            ({"pendingActions": {}}, "field 'data.pendingActions' must be a list, got an object"),
        ],
    )
    def test_requires_a_list_of_pending_actions(self, data: dict[str, Any], message: str) -> None:
        """pendingActions itself is required and must be a list."""
        with pytest.raises(ProtocolError, match=message):
            parse_heartbeat_response({"data": data})


class TestParseConfig:
    def test_returns_version_and_etag_from_headers(self) -> None:
        """x-config-version and x-config-etag are read whatever the header name case."""
        headers = {k.upper(): v for k, v in config_headers().items()}
        assert parse_config_headers(headers) == (7, etag_of(YAML))

    def test_tolerates_content_type_parameters(self) -> None:
        """application/yaml; charset=utf-8 is still YAML."""
        headers = config_headers({"Content-Type": "Application/YAML; charset=utf-8"})
        assert parse_config_headers(headers)[0] == 7

    def test_accepts_an_uppercase_etag_and_normalises_it(self) -> None:
        """The etag's hex is compared case-insensitively and kept in lower case."""
        headers = config_headers({"x-config-etag": etag_of(YAML).upper().replace("SHA", "sha")})
        assert parse_config_update(headers, YAML).etag == etag_of(YAML)

    def test_returns_an_update_whose_etag_matches_its_body(self) -> None:
        """A body hashing to its etag becomes a ConfigUpdate."""
        update = parse_config_update(config_headers(), YAML)
        assert update == ConfigUpdate(7, etag_of(YAML), YAML)
        assert not update.is_empty

    def test_rejects_body_whose_etag_does_not_match(self) -> None:
        """A body whose hash differs from x-config-etag is refused as corrupt."""
        with pytest.raises(ProtocolError, match="etag mismatch") as info:
            parse_config_update(config_headers(body=b"other"), YAML)
        assert "\n" not in str(info.value)

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            (
                {"Content-Type": "text/plain"},
                "content-type is text/plain, expected application/yaml",
            ),
            (
                {"x-config-version": "seven"},
                "x-config-version is seven, expected a non-negative integer",
            ),
            ({"x-config-version": "-1"}, "x-config-version is -1, expected a non-negative integer"),
            ({"x-config-etag": "md5:abc"}, "x-config-etag is md5:abc, expected sha256:<64 hex>"),
            ({"x-config-etag": "sha256:" + "a" * 63}, "expected sha256:<64 hex>"),
        ],
    )
    def test_refuses_bad_headers(self, overrides: dict[str, str], message: str) -> None:
        """Content-Type, version and etag headers must have the SPEC's form."""
        with pytest.raises(ProtocolError, match=message):
            parse_config_headers(config_headers(overrides))

    @pytest.mark.parametrize("name", ["Content-Type", "x-config-version", "x-config-etag"])
    def test_refuses_a_missing_header(self, name: str) -> None:
        """Each of the three headers is required on a 200."""
        headers = config_headers()
        del headers[name]
        with pytest.raises(ProtocolError, match=f"header {name.lower()} is missing"):
            parse_config_headers(headers)

    @pytest.mark.parametrize("body", [b"{}", b"{}\n", b" {\n} "])
    def test_recognises_the_empty_config(self, body: bytes) -> None:
        """A body of {} (whitespace aside) means "no inputs": Vector is stopped."""
        assert ConfigUpdate(3, etag_of(body), body).is_empty

    def test_repr_leaves_out_the_body(self) -> None:
        """A 16 MiB config never lands in a log line through a repr."""
        assert "journald" not in repr(ConfigUpdate(3, etag_of(YAML), YAML))


class TestDecoding:
    def test_reports_bad_json_on_one_line(self) -> None:
        """Malformed JSON is a ProtocolError saying where, on one line."""
        with pytest.raises(ProtocolError) as info:
            decode_json(b'{"data": \n{', "heartbeat response")
        assert str(info.value).startswith("heartbeat response is not valid JSON: ")
        assert "line 2" in str(info.value)
        assert "\n" not in str(info.value)

    def test_reports_a_body_that_is_not_text(self) -> None:
        """Bytes that are not UTF-8 are refused the same way."""
        with pytest.raises(ProtocolError, match="not valid JSON: not UTF-8"):
            decode_json(b"\xff\xfe\xfa", "enrol response")

    def test_extracts_code_and_message_from_an_error_body(self) -> None:
        """{"error": {code, message}} becomes "code: message"."""
        body = json.dumps({"error": {"code": "token_expired", "message": "expired\nyesterday"}})
        assert parse_error_body(body.encode()) == "token_expired: expired yesterday"

    def test_masks_tokens_the_server_echoes(self) -> None:
        """A server echoing our token in its error message does not put it in ours."""
        body = json.dumps({"error": {"code": "bad", "message": f"token {EBT} is unknown"}})
        assert parse_error_body(body.encode()) == "bad: token EBT_*** is unknown"

    @pytest.mark.parametrize("body", [b"<html>502</html>", b"[]", b'{"error": "x"}', b""])
    def test_tolerates_error_bodies_of_any_shape(self, body: bytes) -> None:
        """Error bodies that are not the SPEC's shape give no message, never an exception."""
        assert parse_error_body(body) is None


class TestIsEmptyConfig:
    def test_empty_object_modulo_whitespace(self) -> None:
        """`{}` with any whitespace around or inside is the empty config."""
        for body in (b"{}", b"{}\n", b"  {  }\r\n", b"\n{\n}\n"):
            assert is_empty_config(body), body

    def test_anything_else_is_not(self) -> None:
        """Other bodies, even ones without components, are not the `{}` marker."""
        for body in (b"", b"{}x", b"sources: {}\n", b"{a: 1}", b"[]"):
            assert not is_empty_config(body), body

    def test_the_etag_is_sha256_of_the_body(self) -> None:
        """`x-config-etag` (SPEC section 5): the one place the agent computes it."""
        assert config_etag(YAML) == etag_of(YAML)
        assert config_etag(b"{}") == (
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        )
