"""Rendering a group's inputs into Vector YAML (SPEC §7, "Rendering").

Golden files: ``tests/server/golden/<type>-<platform>.yaml`` hold the exact bytes rendered for
one representative input of each type on each platform (``{}`` where the type does not apply),
plus ``mixed-<platform>.yaml`` for a group with overrides, shared routes and a disabled input.
They are compared byte for byte. After an intended change to the output, regenerate them with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/server/test_render.py

and review the diff like code: it is exactly what every agent will run.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from logpulse_agent.redact import TOKEN_RE
from logpulse_agent.server.render import (
    EMPTY_CONFIG,
    INPUT_TYPES,
    IngestSettings,
    InputSpec,
    applies_to,
    config_etag,
    render_config,
    routing_for,
    sink_id,
    source_id,
    validate_input,
    validate_routing_override,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
INGEST = IngestSettings(endpoint="https://ingest.logpulse.io")
PLATFORMS = ("linux", "kubernetes")

# One representative input per type, exercising several of the options each type accepts.
EXAMPLES: dict[str, InputSpec] = {
    "syslog": InputSpec(
        id="0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e01",
        type="syslog",
        name="firewalls",
        options={
            "mode": "tcp",
            "address": "0.0.0.0:6514",
            "max_length": 65536,
            "connection_limit": 512,
            "permit_origin": ["10.0.0.0/8"],
            "keepalive": {"time_secs": 60},
        },
    ),
    "file": InputSpec(
        id="0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e02",
        type="file",
        name="nginx",
        options={
            "include": ["/var/log/nginx/*.log"],
            "exclude": ["/var/log/nginx/*.gz"],
            "read_from": "end",
            "ignore_older_secs": 86400,
        },
    ),
    "journald": InputSpec(
        id="0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e03",
        type="journald",
        name="system journal",
        options={
            "include_units": ["sshd", "nginx.service"],
            "exclude_matches": {"_TRANSPORT": ["kernel"]},
            "current_boot_only": True,
        },
    ),
    "kafka": InputSpec(
        id="0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e04",
        type="kafka",
        name="app events",
        options={
            "bootstrap_servers": "kafka-1:9092,kafka-2:9092",
            "group_id": "logpulse-agents",
            "topics": ["app-events", "^audit-.+"],
            "auto_offset_reset": "earliest",
            "decoding": {"codec": "json"},
            "tls": {"enabled": True, "ca_file": "/etc/ssl/kafka-ca.pem"},
        },
    ),
    "kubernetes_logs": InputSpec(
        id="0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e05",
        type="kubernetes_logs",
        name="pods",
        options={
            "extra_label_selector": "app!=noisy",
            "exclude_paths_glob_patterns": ["**/*.gz", "**/kube-system_*/**"],
            "max_line_bytes": 65536,
        },
    ),
    "socket": InputSpec(
        id="0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e06",
        type="socket",
        name="udp json",
        options={
            "mode": "udp",
            "address": "0.0.0.0:9000",
            "max_length": 65536,
            "decoding": {"codec": "json"},
        },
    ),
    "http_server": InputSpec(
        id="0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e07",
        type="http_server",
        name="webhooks",
        options={
            "address": "0.0.0.0:8080",
            "path": "/logs",
            "method": "POST",
            "headers": ["User-Agent"],
            "framing": {"method": "newline_delimited"},
        },
    ),
    "demo_logs": InputSpec(
        id="0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e08",
        type="demo_logs",
        name="demo",
        options={"format": "apache_common", "interval": 1},
    ),
}

MIXED = [
    InputSpec(
        id="7a000000-0000-4000-8000-000000000001",
        type="syslog",
        name="fw1",
        options={"mode": "udp", "address": "0.0.0.0:514"},
        index_override="network",
        sourcetype_override="pan:firewall",
        source_override="prod-fw1",
    ),
    InputSpec(
        id="7a000000-0000-4000-8000-000000000002",
        type="syslog",
        name="fw2",
        options={"mode": "udp", "address": "0.0.0.0:1514"},
        index_override="network",
        sourcetype_override="pan:firewall",
        source_override="prod-fw1",
    ),
    InputSpec(
        id="7a000000-0000-4000-8000-000000000003",
        type="demo_logs",
        name="demo",
        options={"format": "json", "interval": 0.5},
    ),
    InputSpec(
        id="7a000000-0000-4000-8000-000000000004",
        type="journald",
        name="journal",
        options={},
        sourcetype_override="linux:journal",
    ),
    InputSpec(
        id="7a000000-0000-4000-8000-000000000005",
        type="file",
        name="disabled",
        options={"include": ["/var/log/app/*.log"]},
        enabled=False,
    ),
]


def _spec(type_: str, options: dict[str, Any], **kw: Any) -> InputSpec:
    return InputSpec(
        id=kw.pop("id", "5c1d0000-0000-4000-8000-00000000abcd"),
        type=type_,
        name=kw.pop("name", "x"),
        options=options,
        **kw,
    )


def _parse(body: bytes) -> dict[str, Any]:
    doc = yaml.safe_load(body)
    assert isinstance(doc, dict)
    return doc


def _check_golden(name: str, body: bytes) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(body)
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert body == path.read_bytes(), f"{name} differs; run with UPDATE_GOLDEN=1 and review"


class TestGoldenFiles:
    def test_examples_cover_every_input_type(self) -> None:
        """Every input type has a golden example."""
        assert set(EXAMPLES) == INPUT_TYPES

    @pytest.mark.parametrize("platform", PLATFORMS)
    @pytest.mark.parametrize("type_", sorted(EXAMPLES))
    def test_renders_each_type_to_its_golden_file(self, type_: str, platform: str) -> None:
        """One input of each type renders to the recorded bytes on each platform."""
        _check_golden(
            f"{type_}-{platform}.yaml", render_config([EXAMPLES[type_]], platform, INGEST)
        )

    @pytest.mark.parametrize("platform", PLATFORMS)
    def test_renders_a_mixed_group_to_its_golden_file(self, platform: str) -> None:
        """A group with overrides, a shared route and a disabled input renders as recorded."""
        _check_golden(f"mixed-{platform}.yaml", render_config(MIXED, platform, INGEST))


class TestEmptyConfig:
    def test_no_inputs_render_exactly_empty_braces(self) -> None:
        """A group without inputs renders exactly b'{}'."""
        assert render_config([], "linux", INGEST) == b"{}" == EMPTY_CONFIG

    def test_only_disabled_inputs_render_empty_braces(self) -> None:
        """Disabled inputs are omitted, so a group of them renders b'{}'."""
        disabled = [_spec("demo_logs", {"format": "json"}, enabled=False)]
        assert render_config(disabled, "linux", INGEST) == b"{}"

    def test_only_other_platform_inputs_render_empty_braces(self) -> None:
        """journald on Kubernetes and kubernetes_logs on Linux leave nothing to run."""
        assert render_config([EXAMPLES["journald"]], "kubernetes", INGEST) == b"{}"
        assert render_config([EXAMPLES["kubernetes_logs"]], "linux", INGEST) == b"{}"

    def test_disabled_input_is_omitted_from_a_non_empty_config(self) -> None:
        """A disabled input's source does not appear next to enabled ones."""
        doc = _parse(render_config(MIXED, "linux", INGEST))
        assert source_id(MIXED[4].id) not in doc["sources"]
        assert len(doc["sources"]) == 4


class TestEtag:
    def test_etag_is_sha256_of_the_body(self) -> None:
        """The etag is 'sha256:' plus the hex digest of the exact body."""
        body = render_config(MIXED, "linux", INGEST)
        assert config_etag(body) == "sha256:" + hashlib.sha256(body).hexdigest()
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", config_etag(body))

    def test_etag_of_empty_config_hashes_the_two_bytes(self) -> None:
        """The empty config's etag is the digest of b'{}'."""
        assert config_etag(b"{}") == "sha256:" + hashlib.sha256(b"{}").hexdigest()

    def test_etag_changes_with_the_content(self) -> None:
        """A different body has a different etag."""
        a = render_config([EXAMPLES["file"]], "linux", INGEST)
        b = render_config([EXAMPLES["syslog"]], "linux", INGEST)
        assert config_etag(a) != config_etag(b)


class TestRouting:
    def test_defaults_are_main_agent_type_and_logpulse_agent(self) -> None:
        """Without overrides: index main, sourcetype agent_<type>, source logpulse-agent."""
        doc = _parse(render_config([EXAMPLES["file"]], "linux", INGEST))
        (sink,) = doc["sinks"].values()
        assert (sink["index"], sink["sourcetype"], sink["source"]) == (
            "main",
            "agent_file",
            "logpulse-agent",
        )

    def test_overrides_replace_the_defaults_literally(self) -> None:
        """The three overrides appear verbatim in the sink."""
        spec = _spec(
            "demo_logs",
            {"format": "json"},
            index_override="prod-eu",
            sourcetype_override="nginx:access",
            source_override="prod-fw2",
        )
        (sink,) = _parse(render_config([spec], "linux", INGEST))["sinks"].values()
        assert (sink["index"], sink["sourcetype"], sink["source"]) == (
            "prod-eu",
            "nginx:access",
            "prod-fw2",
        )

    def test_empty_override_means_default(self) -> None:
        """An override of '' is treated as no override."""
        spec = _spec("file", {"include": ["/x"]}, index_override="", source_override="")
        assert routing_for(spec) == ("main", "agent_file", "logpulse-agent")

    def test_one_sink_per_routing_triple(self) -> None:
        """Inputs sharing a routing triple share a sink; each other triple gets its own."""
        doc = _parse(render_config(MIXED, "linux", INGEST))
        assert len(doc["sinks"]) == 3
        shared = doc["sinks"][sink_id(("network", "pan:firewall", "prod-fw1"))]
        assert shared["inputs"] == sorted([source_id(MIXED[0].id), source_id(MIXED[1].id)])

    def test_every_sink_sends_to_the_ingest_endpoint_with_the_secret_token(self) -> None:
        """Each sink is splunk_hec_logs on the ingest URL with SECRET[logpulse.agent_token]."""
        for sink in _parse(render_config(MIXED, "linux", INGEST))["sinks"].values():
            assert sink["type"] == "splunk_hec_logs"
            assert sink["endpoint"] == "https://ingest.logpulse.io"
            assert sink["default_token"] == "SECRET[logpulse.agent_token]"
            assert sink["encoding"] == {"codec": "json"}

    def test_endpoint_trailing_slash_does_not_change_the_bytes(self) -> None:
        """'https://host/' and 'https://host' render the same config."""
        slash = IngestSettings(endpoint="https://ingest.logpulse.io/")
        assert render_config(MIXED, "linux", slash) == render_config(MIXED, "linux", INGEST)


class TestSecretsAndGlobals:
    @pytest.mark.parametrize("platform", PLATFORMS)
    def test_token_reference_present_and_no_token_anywhere(self, platform: str) -> None:
        """The config names the secret, never a token: no 'AGT_' in any byte."""
        body = render_config([*EXAMPLES.values(), *MIXED], platform, INGEST)
        assert b"SECRET[logpulse.agent_token]" in body
        assert b"AGT_" not in body and b"EBT_" not in body

    def test_only_sources_and_sinks_at_the_top_level(self) -> None:
        """No global options (data_dir, api, secret…): the agent owns those."""
        doc = _parse(render_config(list(EXAMPLES.values()), "linux", INGEST))
        assert set(doc) == {"sources", "sinks"}

    @pytest.mark.parametrize("value", ["1e3", "0o17", "0x1f", "12", "true", "null", "~", ".inf"])
    def test_strings_yaml_1_2_would_misread_are_quoted(self, value: str) -> None:
        """A source of '1e3' stays a string for Vector's YAML 1.2 parser: it is quoted."""
        spec = _spec("demo_logs", {"format": "json"}, source_override=value)
        body = render_config([spec], "linux", INGEST)
        assert f"source: '{value}'\n".encode() in body
        (sink,) = _parse(body)["sinks"].values()
        assert sink["source"] == value

    def test_no_yaml_anchors_or_aliases(self) -> None:
        """Repeated values are written out, never as &anchor/*alias."""
        body = render_config([*EXAMPLES.values(), *MIXED], "linux", INGEST)
        assert not re.search(rb"[&*]id\d", body)


class TestDeterminism:
    def test_shuffled_input_order_gives_identical_bytes(self) -> None:
        """The order inputs come from the database in does not matter."""
        specs = [*EXAMPLES.values(), *MIXED]
        expected = render_config(specs, "linux", INGEST)
        rng = random.Random(7)
        for _ in range(20):
            rng.shuffle(specs)
            assert render_config(specs, "linux", INGEST) == expected

    def test_option_key_order_does_not_matter(self) -> None:
        """Options given in another key order render the same bytes."""
        spec = EXAMPLES["kafka"]
        reordered = _spec("kafka", dict(reversed(list(spec.options.items()))), id=spec.id)
        assert render_config([reordered], "linux", INGEST) == render_config([spec], "linux", INGEST)

    def test_integer_and_float_interval_render_the_same(self) -> None:
        """interval: 1 and interval: 1.0 are one value, one byte string."""
        a = render_config([_spec("demo_logs", {"format": "json", "interval": 1})], "linux", INGEST)
        b = render_config(
            [_spec("demo_logs", {"format": "json", "interval": 1.0})], "linux", INGEST
        )
        assert a == b


class TestComponentIds:
    def test_source_id_comes_from_the_input_id(self) -> None:
        """A source is named in_ plus the 32 hex digits of its input UUID."""
        assert source_id("0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e01") == (
            "in_0b5e2c1a7d4f4e8a9c3b1a2b3c4d5e01"
        )

    def test_time_ordered_uuids_created_together_get_distinct_ids(self) -> None:
        """UUIDv7s from the same millisecond share their first 12 digits, not their id."""
        first = "01890a5d-ac96-7f00-8000-000000000001"
        second = "01890a5d-ac96-7f00-8000-000000000002"
        assert source_id(first) != source_id(second)

    def test_renaming_an_input_changes_nothing(self) -> None:
        """The name is not rendered, so a rename keeps Vector's checkpoints."""
        spec = EXAMPLES["file"]
        renamed = _spec("file", dict(spec.options), id=spec.id, name="renamed")
        assert render_config([renamed], "linux", INGEST) == render_config([spec], "linux", INGEST)

    def test_uuid_spelling_does_not_change_the_id(self) -> None:
        """Upper-case or braced spellings of one UUID give one component id."""
        plain = "0b5e2c1a-7d4f-4e8a-9c3b-1a2b3c4d5e01"
        assert source_id(plain.upper()) == source_id("{" + plain + "}") == source_id(plain)

    def test_non_uuid_ids_are_hashed(self) -> None:
        """An id that is not a UUID still gives a stable, valid component id."""
        assert source_id("input-42") == source_id("input-42")
        assert re.fullmatch(r"in_[0-9a-f]{32}", source_id("input-42"))

    def test_sink_id_depends_only_on_the_routing(self) -> None:
        """Sink ids are a hash of the routing triple."""
        assert sink_id(("main", "a", "b")) == sink_id(("main", "a", "b"))
        assert sink_id(("main", "a", "b")) != sink_id(("main", "ab", ""))

    def test_duplicate_input_ids_are_refused(self) -> None:
        """Two inputs with one id would fight over a component: refused."""
        spec = EXAMPLES["file"]
        with pytest.raises(ValueError, match="duplicate input id"):
            render_config([spec, spec], "linux", INGEST)


class TestPlatforms:
    def test_platform_filtering(self) -> None:
        """journald only on linux, kubernetes_logs only on kubernetes, the rest on both."""
        assert applies_to("journald", "linux") and not applies_to("journald", "kubernetes")
        assert applies_to("kubernetes_logs", "kubernetes")
        assert not applies_to("kubernetes_logs", "linux")
        for type_ in INPUT_TYPES - {"journald", "kubernetes_logs"}:
            assert applies_to(type_, "linux") and applies_to(type_, "kubernetes")

    def test_unknown_platform_is_refused(self) -> None:
        """A platform other than linux or kubernetes is an error."""
        with pytest.raises(ValueError, match="unknown platform 'windows'"):
            render_config([], "windows", INGEST)


class TestValidateInput:
    @pytest.mark.parametrize(
        ("type_", "options", "message"),
        [
            ("ftp", {}, "unknown input type 'ftp'"),
            ("file", {"include": ["/x"], "data_dir": "/y"}, "unknown option 'data_dir'"),
            ("file", {"include": ["/x"], "remove_after_secs": 0}, "unknown option"),
            ("file", {}, "option 'include' is required"),
            ("file", {"include": []}, "option 'include' must not be empty"),
            ("file", {"include": "/var/log/*.log"}, "'include' must be a list of strings"),
            ("file", {"include": ["var/log/*.log"]}, "'include[0]' must be an absolute path"),
            ("file", {"include": ["/x"], "read_from": "middle"}, "one of beginning, end"),
            ("syslog", {"mode": "tcp"}, "option 'address' is required"),
            ("syslog", {"mode": "tls", "address": "0.0.0.0:514"}, "one of tcp, udp, unix"),
            (
                "syslog",
                {"mode": "unix", "path": "/run/s", "address": "0.0.0.0:514"},
                "'address' applies only when mode is tcp or udp",
            ),
            ("syslog", {"mode": "udp", "address": "0.0.0.0:70000"}, "an IP address and port"),
            (
                "socket",
                {"mode": "tcp", "address": "0.0.0.0:9000", "max_length": 10},
                "'max_length' applies only when mode is udp",
            ),
            (
                "socket",
                {"mode": "tcp", "address": ":9", "tls": {"enabled": True}},
                "an IP address and port",
            ),
            (
                "socket",
                {"mode": "tcp", "address": "0.0.0.0:9", "tls": {"enabled": True}},
                "'tls' needs crt_file and key_file",
            ),
            ("kafka", {"bootstrap_servers": "k:9092", "group_id": "g"}, "'topics' is required"),
            ("kafka", {"bootstrap_servers": "k:x", "group_id": "g", "topics": ["t"]}, "host:port"),
            (
                "kafka",
                {
                    "bootstrap_servers": "k:1",
                    "group_id": "g",
                    "topics": ["t"],
                    "sasl": {"enabled": True},
                },
                "unknown option 'sasl'",
            ),
            ("demo_logs", {}, "option 'format' is required"),
            ("demo_logs", {"format": "shuffle"}, "option 'lines' is required"),
            (
                "demo_logs",
                {"format": "json", "lines": ["a"]},
                "applies only when format is shuffle",
            ),
            ("demo_logs", {"format": "json", "count": 10}, "'count' is not supported"),
            ("demo_logs", {"format": "json", "interval": "1s"}, "'interval' must be a number"),
            ("demo_logs", {"format": "json", "interval": float("nan")}, "finite number"),
            ("demo_logs", {"format": "json", "decoding": {"codec": "avro"}}, "'decoding.codec'"),
            ("demo_logs", {"format": "json", "decoding": {"schema": "x"}}, "'decoding.schema'"),
            ("journald", {"include_matches": {"_SYSTEMD_UNIT": "sshd"}}, "list of strings"),
            ("journald", {"extra_args": ["--merge"]}, "unknown option 'extra_args'"),
            ("http_server", {"address": "0.0.0.0:80", "auth": {}}, "unknown option 'auth'"),
            ("http_server", {"address": "0.0.0.0:80", "encoding": "json"}, "unknown option"),
            ("http_server", {"address": "0.0.0.0:80", "path": "logs"}, "must start with '/'"),
            ("kubernetes_logs", {"self_node_name": "n1"}, "unknown option 'self_node_name'"),
            ("file", {"include": ["/x\n"]}, "control character U+000A"),
            ("file", {"include": ["SECRET[logpulse.agent_token]"]}, "secret or environment"),
            ("file", {"include": ["/var/${HOME}"]}, "secret or environment"),
            ("file", {"include": ["/AGT_abcdefgh"]}, "looks like a LogPulse token"),
            ("file", ["include"], "options must be an object"),
        ],
    )
    def test_rejects_bad_options_with_a_clear_message(
        self, type_: str, options: Any, message: str
    ) -> None:
        """Each kind of bad input gets a one-line ValueError saying what is wrong."""
        with pytest.raises(ValueError, match=re.escape(message)) as info:
            validate_input(type_, options)
        assert "\n" not in str(info.value)

    def test_token_is_not_echoed_in_the_message(self) -> None:
        """A rejected value that looks like a token is never repeated in the error."""
        with pytest.raises(ValueError) as info:
            validate_input("syslog", {"mode": "AGT_secretsecret", "address": "0.0.0.0:1"})
        assert "secretsecret" not in str(info.value)

    @pytest.mark.parametrize("type_", sorted(EXAMPLES))
    def test_accepts_every_golden_example(self, type_: str) -> None:
        """The representative options of each type are valid."""
        assert validate_input(type_, EXAMPLES[type_].options)

    def test_drops_nulls_and_normalises_numbers(self) -> None:
        """None means 'not set'; float options become floats; tuples become lists."""
        got = validate_input(
            "demo_logs", {"format": "shuffle", "lines": ("a",), "count": None, "interval": 2}
        )
        assert got == {"format": "shuffle", "lines": ["a"], "interval": 2.0}

    def test_http_server_decoding_is_made_explicit(self) -> None:
        """http_server gets decoding.codec bytes when none is given (no legacy default)."""
        assert validate_input("http_server", {"address": "0.0.0.0:80"})["decoding"] == {
            "codec": "bytes"
        }

    def test_systemd_socket_activation_address_is_accepted(self) -> None:
        """syslog and socket accept systemd / systemd#N as address."""
        validate_input("syslog", {"mode": "tcp", "address": "systemd#2"})
        validate_input("socket", {"mode": "udp", "address": "systemd"})

    def test_invalid_options_of_an_enabled_input_fail_rendering_naming_it(self) -> None:
        """Rendering re-validates and names the input whose options are bad."""
        spec = _spec("file", {"include": "nope"})
        with pytest.raises(ValueError, match=f"input {spec.id}: file input"):
            render_config([spec], "linux", INGEST)

    def test_invalid_options_of_a_disabled_input_are_ignored(self) -> None:
        """A disabled input is not rendered, so it is not checked either."""
        assert render_config([_spec("file", {}, enabled=False)], "linux", INGEST) == b"{}"


class TestValidateRouting:
    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("index", "{{ host }}", "literal value"),
            ("sourcetype", "app-{{ kind }}", "literal value"),
            ("source", "logs-%Y-%m-%d", "literal value"),
            ("source", "a}b", "literal value"),
            ("source", "fw\n1", "control character U+000A"),
            ("source", "fw\x001", "control character U+0000"),
            ("sourcetype", " padded", "spaces"),
            ("source", "SECRET[logpulse.agent_token]", "secret or environment"),
            ("source", "AGT_abcdef", "looks like a LogPulse token"),
            ("source", "x" * 257, "longer than 256"),
            ("index", "Prod", "lower-case letters"),
            ("index", "_internal", "starting with a letter or digit"),
            ("index", "a" * 81, "1-80"),
            ("index", 5, "must be a string"),
            ("host", "x", "unknown routing field"),
        ],
    )
    def test_rejects_values_vector_would_not_send_literally(
        self, field: str, value: Any, message: str
    ) -> None:
        """Templates, control characters and odd index names are refused with a clear message."""
        with pytest.raises(ValueError, match=re.escape(message)):
            validate_routing_override(field, value)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("index", "prod-eu_1"),
            ("sourcetype", "nginx:access"),
            ("source", "/var/log/syslog"),
            ("source", "UDP:514"),
            ("sourcetype", "_json"),
            ("source", "prod fw1"),
        ],
    )
    def test_accepts_ordinary_literals(self, field: str, value: str) -> None:
        """Typical Splunk-style routing values pass unchanged."""
        assert validate_routing_override(field, value) == value

    def test_none_and_empty_mean_no_override(self) -> None:
        """None and '' both mean 'use the default'."""
        assert validate_routing_override("index", None) is None
        assert validate_routing_override("index", "") is None

    def test_rendering_refuses_a_templated_override(self) -> None:
        """A template that slipped into the database is refused at render time too."""
        spec = _spec("demo_logs", {"format": "json"}, index_override="{{ host }}")
        with pytest.raises(ValueError, match="literal value"):
            render_config([spec], "linux", INGEST)


class TestIngestEndpoint:
    @pytest.mark.parametrize(
        "endpoint",
        [
            "",
            "ingest.logpulse.io",
            "ftp://ingest.logpulse.io",
            "https://",
            "https://ingest.logpulse.io/services/collector",
            "https://u:p@ingest.logpulse.io",
            "https://ingest.logpulse.io?x=1",
            "https://ingest.logpulse.io:notaport",
            "https://{{ host }}.logpulse.io",
            "https://ingest .logpulse.io",
        ],
    )
    def test_refuses_an_endpoint_vector_would_reject(self, endpoint: str) -> None:
        """The ingest URL must be an absolute http(s) base URL with a host and nothing else."""
        with pytest.raises(ValueError, match="ingest endpoint"):
            render_config([EXAMPLES["file"]], "linux", IngestSettings(endpoint=endpoint))

    def test_accepts_a_port_and_plain_http_for_local_use(self) -> None:
        """http://127.0.0.1:8088 (a local ingest in the demo) is fine."""
        local = IngestSettings(endpoint="http://127.0.0.1:8088")
        (sink,) = _parse(render_config([EXAMPLES["file"]], "linux", local))["sinks"].values()
        assert sink["endpoint"] == "http://127.0.0.1:8088"


# --- property: any valid group renders a well-formed pipeline --------------------------------

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_path = _word.map(lambda w: f"/var/log/{w}/*.log")
_port = st.integers(min_value=1, max_value=65535)
# Any printable text, non-ASCII included, minus what validate_input refuses on purpose.
_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20
).filter(lambda t: t.strip() and "${" not in t and "SECRET[" not in t and not TOKEN_RE.search(t))

_OPTIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "syslog": st.one_of(
        st.builds(
            lambda m, p: {"mode": m, "address": f"0.0.0.0:{p}"},
            st.sampled_from(["tcp", "udp"]),
            _port,
        ),
        _word.map(lambda w: {"mode": "unix", "path": f"/run/{w}.sock"}),
    ),
    "file": st.builds(
        lambda inc, rf: {"include": inc, "read_from": rf},
        st.lists(_path, min_size=1, max_size=3),
        st.sampled_from(["beginning", "end"]),
    ),
    "journald": st.builds(lambda units: {"include_units": units}, st.lists(_word, max_size=3)),
    "kafka": st.builds(
        lambda g, t: {"bootstrap_servers": "kafka:9092", "group_id": g, "topics": t},
        _word,
        st.lists(_word, min_size=1, max_size=2),
    ),
    "kubernetes_logs": st.builds(lambda s: {"extra_label_selector": f"app!={s}"}, _word),
    "socket": st.builds(
        lambda m, p: {"mode": m, "address": f"127.0.0.1:{p}"},
        st.sampled_from(["tcp", "udp"]),
        _port,
    ),
    "http_server": st.builds(lambda p: {"address": f"0.0.0.0:{p}"}, _port),
    "demo_logs": st.one_of(
        st.builds(
            lambda f, i: {"format": f, "interval": i},
            st.sampled_from(["apache_common", "json", "syslog"]),
            st.floats(min_value=0, max_value=10),
        ),
        st.builds(
            lambda lines: {"format": "shuffle", "lines": lines},
            st.lists(_line, min_size=1, max_size=3),
        ),
    ),
}
_routing_value = st.none() | st.sampled_from(["", "prod", "staging", "edge-1"])


@st.composite
def _input_specs(draw: st.DrawFn) -> InputSpec:
    type_ = draw(st.sampled_from(sorted(_OPTIONS)))
    return InputSpec(
        id=str(draw(st.uuids())),
        type=type_,
        name=draw(_word),
        options=draw(_OPTIONS[type_]),
        enabled=draw(st.booleans()),
        index_override=draw(_routing_value),
        sourcetype_override=draw(st.none() | st.sampled_from(["app:json", "custom"])),
        source_override=draw(_routing_value),
    )


class TestProperties:
    @settings(max_examples=200, deadline=None)
    @given(
        specs=st.lists(_input_specs(), max_size=8, unique_by=lambda s: s.id),
        platform=st.sampled_from(PLATFORMS),
    )
    def test_any_valid_group_renders_a_wired_pipeline(
        self, specs: list[InputSpec], platform: str
    ) -> None:
        """Valid inputs always give YAML with only sources/sinks, every sink input a real source."""
        listening = [s.options["address"] for s in specs if s.enabled and "address" in s.options]
        assume(len({a.rsplit(":", 1)[1] for a in listening}) == len(listening))  # one per port
        body = render_config(specs, platform, INGEST)
        applicable = [s for s in specs if s.enabled and applies_to(s.type, platform)]
        if not applicable:
            assert body == b"{}"
            return
        doc = _parse(body)
        assert set(doc) == {"sources", "sinks"}
        assert set(doc["sources"]) == {source_id(s.id) for s in applicable}
        wired: list[str] = []
        for sink in doc["sinks"].values():
            assert sink["inputs"] == sorted(sink["inputs"])
            assert set(sink["inputs"]) <= set(doc["sources"])
            wired += sink["inputs"]
        assert sorted(wired) == sorted(doc["sources"])  # each source feeds exactly one sink
        assert render_config(list(reversed(specs)), platform, INGEST) == body
