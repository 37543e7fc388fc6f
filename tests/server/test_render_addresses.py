"""Addresses Vector reads: listen addresses, listener clashes, CIDR lists, brokers, ingest URL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from logpulse_agent.server.addresses import MAX_SYSTEMD_INDEX, parse_listen_addr
from logpulse_agent.server.app import create_app
from logpulse_agent.server.render import (
    IngestSettings,
    InputSpec,
    render_config,
    validate_input,
)

INGEST = IngestSettings(endpoint="https://ingest.logpulse.io")
LISTENING = [("syslog", "tcp"), ("syslog", "udp"), ("socket", "tcp"), ("socket", "udp")]


def _spec(n: int, type_: str, options: dict[str, Any], enabled: bool = True) -> InputSpec:
    return InputSpec(f"5c1d0000-0000-4000-8000-{n:012d}", type_, f"input{n}", options, enabled)


class TestListenAddresses:
    @pytest.mark.parametrize(
        "address",
        [
            "localhost:514",
            "999.1.1.1:514",
            "127.0.0.01:514",
            "[1::2::3]:9000",
            "::1:514",
            "[::1]",
            "10.0.0.1",
            "0.0.0.0:65536",
            "0.0.0.0:0",
            "0.0.0.0:\u0665\u0661\u0664",
            "\u0660.0.0.0:514",
            "[fe80::1%eth0]:514",
            "[fe80::1%4294967296]:514",
            "systemd#0",
            "systemd#",
            "systemd#+2",
            "systemd#-1",
            f"systemd#{MAX_SYSTEMD_INDEX + 1}",
            "systemd#99999999999999999999999",
            "Systemd",
        ],
    )
    @pytest.mark.parametrize(("type_", "mode"), LISTENING)
    def test_addresses_vector_refuses_are_refused(
        self, type_: str, mode: str, address: str
    ) -> None:
        """Only a Rust SocketAddr (IP literal and port 1-65535) or systemd[#N>=1] is accepted."""
        with pytest.raises(ValueError, match=rf"^{type_} input: option 'address' ") as info:
            validate_input(type_, {"mode": mode, "address": address})
        assert "\n" not in str(info.value)

    @pytest.mark.parametrize(
        "address",
        [
            "0.0.0.0:514",
            "[::]:514",
            "[::ffff:10.0.0.1]:514",
            "[fe80::1%2]:514",
            "127.0.0.1:0514",
            "systemd",
            "systemd#1",
            f"systemd#{MAX_SYSTEMD_INDEX}",
        ],
    )
    @pytest.mark.parametrize(("type_", "mode"), LISTENING)
    def test_addresses_vector_accepts_are_accepted_unchanged(
        self, type_: str, mode: str, address: str
    ) -> None:
        """What Vector parses is stored exactly as given."""
        assert validate_input(type_, {"mode": mode, "address": address})["address"] == address

    def test_the_reason_is_in_the_message(self) -> None:
        """Host names, port 0 and systemd#0 each say what is wrong."""
        with pytest.raises(ValueError, match="does not resolve host names such as localhost"):
            validate_input("syslog", {"mode": "tcp", "address": "localhost:514"})
        with pytest.raises(ValueError, match="port 0"):
            validate_input("syslog", {"mode": "tcp", "address": "0.0.0.0:0"})
        with pytest.raises(ValueError, match="systemd#1 is the first socket"):
            validate_input("socket", {"mode": "udp", "address": "systemd#0"})

    @pytest.mark.parametrize("address", ["localhost:8080", "systemd", "systemd#1", "[::1]"])
    def test_http_server_takes_a_plain_socket_address(self, address: str) -> None:
        """http_server's address is a SocketAddr: no host names and no systemd."""
        with pytest.raises(ValueError, match="option 'address' must be an IP address and port"):
            validate_input("http_server", {"address": address})

    def test_systemd_and_systemd_1_are_one_socket(self) -> None:
        """Vector maps both to socket offset 0."""
        assert parse_listen_addr("systemd") == parse_listen_addr("systemd#1")

    @pytest.mark.parametrize("length", [107, 108])
    def test_unix_socket_paths_fit_sun_path(self, length: int) -> None:
        """A unix socket path longer than 107 bytes cannot be bound (Vector panics)."""
        path = "/run/" + "x" * (length - 5)
        for type_, mode in (("syslog", "unix"), ("socket", "unix_stream")):
            if length <= 107:
                assert validate_input(type_, {"mode": mode, "path": path})["path"] == path
            else:
                with pytest.raises(ValueError, match="longer than 107 bytes"):
                    validate_input(type_, {"mode": mode, "path": path})


# (first input, second input) that cannot both listen.
CLASHES = [
    (("syslog", {"mode": "tcp", "address": "0.0.0.0:514"}), ("socket", "tcp", "0.0.0.0:514")),
    (("syslog", {"mode": "udp", "address": "10.0.0.5:514"}), ("socket", "udp", "0.0.0.0:514")),
    (("syslog", {"mode": "tcp", "address": "0.0.0.0:8080"}), ("http_server", None, "[::]:8080")),
    (("http_server", {"address": "127.0.0.1:80"}), ("syslog", "tcp", "[::ffff:127.0.0.1]:80")),
    (("socket", {"mode": "tcp", "address": "[::]:9000"}), ("syslog", "tcp", "10.1.1.1:9000")),
    (("syslog", {"mode": "tcp", "address": "systemd"}), ("socket", "udp", "systemd#1")),
    (
        ("socket", {"mode": "unix_stream", "path": "/run/a.sock"}),
        ("syslog", "unix", "/run//a.sock"),
    ),
]
# Pairs that may both listen.
NO_CLASHES = [
    (("syslog", {"mode": "tcp", "address": "0.0.0.0:514"}), ("syslog", "udp", "0.0.0.0:514")),
    (("syslog", {"mode": "tcp", "address": "10.0.0.1:514"}), ("socket", "tcp", "10.0.0.2:514")),
    (("syslog", {"mode": "tcp", "address": "0.0.0.0:514"}), ("socket", "tcp", "[::1]:514")),
    (("syslog", {"mode": "tcp", "address": "systemd"}), ("socket", "tcp", "systemd#2")),
    (("syslog", {"mode": "tcp", "address": "0.0.0.0:514"}), ("syslog", "tcp", "0.0.0.0:515")),
]


def _second(n: int, type_: str, mode: str | None, where: str) -> InputSpec:
    if type_ == "http_server":
        return _spec(n, type_, {"address": where})
    key = "path" if mode in ("unix", "unix_stream", "unix_datagram") else "address"
    return _spec(n, type_, {"mode": mode, key: where})


class TestListenerClashes:
    @pytest.mark.parametrize(("first", "second"), CLASHES)
    def test_two_inputs_on_one_listener_fail_rendering_naming_the_first(
        self, first: tuple[str, dict[str, Any]], second: tuple[str, str | None, str]
    ) -> None:
        """Vector refuses a config where two components claim one listener."""
        a, b = _spec(1, *first), _second(2, *second)
        with pytest.raises(ValueError, match=rf"^input {b.id}: .* claimed by input {a.id}$"):
            render_config([a, b], "linux", INGEST)

    @pytest.mark.parametrize(("first", "second"), NO_CLASHES)
    def test_distinct_listeners_render(
        self, first: tuple[str, dict[str, Any]], second: tuple[str, str | None, str]
    ) -> None:
        """Another protocol, port, specific address or systemd socket is no clash."""
        assert render_config([_spec(1, *first), _second(2, *second)], "linux", INGEST) != b"{}"

    def test_a_disabled_input_claims_nothing(self) -> None:
        """Only rendered inputs listen."""
        a = _spec(1, "syslog", {"mode": "tcp", "address": "0.0.0.0:514"}, enabled=False)
        b = _spec(2, "socket", {"mode": "tcp", "address": "0.0.0.0:514"})
        assert render_config([a, b], "linux", INGEST) != b"{}"


class TestCidrLists:
    @pytest.mark.parametrize(
        "cidr",
        [
            "anywhere",
            "10.1.2.3",
            "::1",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/08",
            "010.0.0.0/8",
            "10.0.0.0/255.0.0.0",
            "fe80::1%2/64",
            "10.0.0.0/",
            "10.0.0.0/\u0668",
        ],
    )
    @pytest.mark.parametrize("type_", ["syslog", "socket"])
    def test_permit_origin_entries_must_be_ip_networks(self, type_: str, cidr: str) -> None:
        """Each entry must parse as an ipnet::IpNet, or Vector refuses the config."""
        options = {"mode": "tcp", "address": "0.0.0.0:514", "permit_origin": ["10.0.0.0/8", cidr]}
        with pytest.raises(ValueError, match=re.escape("option 'permit_origin[1]'")):
            validate_input(type_, options)

    def test_networks_are_accepted_as_given(self) -> None:
        """Host bits may be set (ipnet keeps them); both families work."""
        nets = ["10.0.0.0/8", "10.1.2.3/8", "::1/128", "0.0.0.0/0", "::ffff:10.0.0.0/104"]
        options = {"mode": "tcp", "address": "0.0.0.0:514", "permit_origin": nets}
        assert validate_input("syslog", options)["permit_origin"] == nets


class TestKafkaBrokers:
    @pytest.mark.parametrize("servers", ["kafka", "kafka:9092,kafka-2", "[::1]:9092", " k:1, k:2 "])
    def test_hosts_with_or_without_port_are_accepted(self, servers: str) -> None:
        """librdkafka takes host or host:port (default 9092)."""
        options = {"bootstrap_servers": servers, "group_id": "g", "topics": ["t"]}
        assert validate_input("kafka", options)["bootstrap_servers"] == servers

    @pytest.mark.parametrize(
        "servers", ["kafka:0", "kafka:\u0669\u0660\u0669\u0662", "kafka:", "a,,b", "[x]:1", "k k"]
    )
    def test_unusable_brokers_are_refused(self, servers: str) -> None:
        """Port 0, non-ASCII digits or empty entries are refused."""
        with pytest.raises(ValueError, match="'bootstrap_servers' must be a comma-separated"):
            validate_input(
                "kafka", {"bootstrap_servers": servers, "group_id": "g", "topics": ["t"]}
            )


class TestIngestEndpoint:
    @pytest.mark.parametrize(
        ("endpoint", "message"),
        [
            ("https://ïngest.example", "must be ASCII"),
            ("https://ingest.example:0", "port must be from 1 to 65535"),
            ("https://ingest.example:", "http(s) base URL"),
            ("https://999.1.1.1", "not a valid IPv4 address"),
            ("https://127.0.0.01", "not a valid IPv4 address"),
            ("https://[1::2::3]", "http(s) base URL"),
            ("https://-ingest.example", "not a valid host name"),
            ("https://ingest..example", "not a valid host name"),
            ("https://" + "a" * 64 + ".example", "not a valid host name"),
            ("https://ingest.example\u0085", "http(s) base URL"),
        ],
    )
    def test_urls_every_send_would_fail_on_are_refused(self, endpoint: str, message: str) -> None:
        """A host Vector cannot use or a port nobody listens on is a one-line error."""
        with pytest.raises(ValueError, match=re.escape(message)) as info:
            render_config([], "linux", IngestSettings(endpoint=endpoint))
        assert str(info.value).startswith("ingest endpoint ")

    @pytest.mark.parametrize(
        "endpoint",
        [
            "https://xn--ngest-dra.example",
            "http://127.0.0.1:8088",
            "https://[::1]:8088",
            "https://ingest_1.internal:443",
            "https://ingest.example.",
        ],
    )
    def test_usable_urls_are_accepted(self, endpoint: str) -> None:
        """Punycode, IP literals, ports and ordinary names pass."""
        assert render_config([], "linux", IngestSettings(endpoint=endpoint)) == b"{}"

    @pytest.mark.parametrize("url", ["https://ïngest.example.com", "https://ingest.example.com:0"])
    def test_the_server_refuses_to_start_with_one(self, tmp_path: Path, url: str) -> None:
        """create_app (and so ``serve --ingest-url``) raises before serving any agent."""
        with pytest.raises(ValueError, match="ingest endpoint"):
            create_app(tmp_path / "s.db", ingest=IngestSettings(endpoint=url), sweep_interval=None)
