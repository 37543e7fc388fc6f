"""Numeric ranges and option values Vector refuses at build or crashes on (``limits.py``)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from logpulse_agent.server import limits
from logpulse_agent.server.render import validate_input

KAFKA = {"bootstrap_servers": "k:9092", "group_id": "g", "topics": ["t"]}
TCP = {"mode": "tcp", "address": "0.0.0.0:514"}
UDP = {"mode": "udp", "address": "0.0.0.0:514"}
FILE = {"include": ["/var/log/*.log"]}

# (type, base options, option, lowest accepted, highest accepted): one below and one above are
# refused, the bounds themselves accepted.
RANGES: list[tuple[str, dict[str, Any], str, int, int]] = [
    ("kafka", KAFKA, "socket_timeout_ms", *limits.KAFKA_SOCKET_TIMEOUT_MS),
    ("kafka", KAFKA, "session_timeout_ms", *limits.KAFKA_SESSION_TIMEOUT_MS),
    ("kafka", KAFKA, "fetch_wait_max_ms", *limits.KAFKA_FETCH_WAIT_MAX_MS),
    ("kafka", KAFKA, "commit_interval_ms", *limits.KAFKA_COMMIT_INTERVAL_MS),
    ("file", FILE, "ignore_older_secs", 0, limits.MAX_AGE_SECS),
    ("kubernetes_logs", {}, "ignore_older_secs", 0, limits.MAX_AGE_SECS),
    ("kubernetes_logs", {}, "delay_deletion_ms", 0, limits.MAX_DELAY_DELETION_MS),
    ("file", FILE, "max_line_bytes", 1, limits.MAX_LINE_BYTES),
    ("kubernetes_logs", {}, "max_line_bytes", 1, limits.MAX_LINE_BYTES),
    ("socket", UDP, "max_length", 1, limits.MAX_UDP_LENGTH),
    ("syslog", TCP, "receive_buffer_bytes", 1, limits.MAX_SOCKET_BUFFER),
    ("socket", UDP, "receive_buffer_bytes", 1, limits.MAX_SOCKET_BUFFER),
    ("syslog", TCP, "connection_limit", 1, 2**32 - 1),
]


class TestNumericRanges:
    @pytest.mark.parametrize(("type_", "base", "option", "low", "high"), RANGES)
    def test_bounds_are_accepted_and_values_beyond_refused(
        self, type_: str, base: dict[str, Any], option: str, low: int, high: int
    ) -> None:
        """Each bound is where Vector (or librdkafka, or the kernel) stops accepting."""
        for value in (low, high):
            assert validate_input(type_, {**base, option: value})[option] == value
        for value in (low - 1, high + 1, 2**63 - 1, 2**64):
            if value < 0 or value in (low, high):
                continue
            with pytest.raises(ValueError, match=re.escape(f"option '{option}' must be between")):
                validate_input(type_, {**base, option: value})

    @pytest.mark.parametrize("value", [0, limits.MAX_KEEPALIVE_SECS + 1])
    def test_tcp_keepalive_outside_linux_tcp_keepidle_is_refused(self, value: int) -> None:
        """Linux refuses TCP_KEEPIDLE outside 1-32767 and Vector silently runs without it."""
        with pytest.raises(
            ValueError, match=re.escape("'keepalive.time_secs' must be between 1 and 32767")
        ):
            validate_input("socket", {**TCP, "keepalive": {"time_secs": value}})

    def test_session_timeout_above_max_poll_interval_is_refused(self) -> None:
        """librdkafka's range goes to 3600000, but Vector keeps max.poll.interval.ms at 300000."""
        with pytest.raises(ValueError, match="between 1 and 300000"):
            validate_input("kafka", {**KAFKA, "session_timeout_ms": 3_600_000})

    def test_socket_timeout_below_librdkafkas_minimum_is_refused(self) -> None:
        """socket.timeout.ms is 10 to 300000 in librdkafka."""
        with pytest.raises(ValueError, match="'socket_timeout_ms' must be between 10 and 300000"):
            validate_input("kafka", {**KAFKA, "socket_timeout_ms": 1})


class TestRefusedValues:
    def test_demo_logs_count_is_refused_with_the_reason(self) -> None:
        """A finite demo source makes Vector exit, which the agent treats as a crash."""
        with pytest.raises(ValueError) as info:
            validate_input("demo_logs", {"format": "json", "count": 100})
        message = str(info.value)
        assert "option 'count' is not supported" in message
        assert "Vector exits" in message and "crash" in message

    def test_journald_all_boots_is_refused_with_the_reason(self) -> None:
        """current_boot_only: false fails on systemd 250-257 (Debian 12, Ubuntu 24.04)."""
        with pytest.raises(ValueError, match=r"'current_boot_only' cannot be false.*systemd 250"):
            validate_input("journald", {"current_boot_only": False})
        assert validate_input("journald", {"current_boot_only": True}) == {
            "current_boot_only": True
        }

    @pytest.mark.parametrize(
        "options",
        [
            {"include_units": ["sshd"], "exclude_units": ["sshd"]},
            {"include_units": ["sshd"], "exclude_matches": {"_SYSTEMD_UNIT": ["sshd.service"]}},
            {
                "include_matches": {"_TRANSPORT": ["kernel"]},
                "exclude_matches": {"_TRANSPORT": ["kernel"]},
            },
        ],
    )
    def test_journald_include_and_exclude_of_one_match_is_refused(
        self, options: dict[str, Any]
    ) -> None:
        """Vector's journald build fails on a field=value pair both included and excluded."""
        with pytest.raises(ValueError, match="journald input: includes and excludes"):
            validate_input("journald", options)

    def test_journald_distinct_includes_and_excludes_are_accepted(self) -> None:
        """'sshd' and 'sshd.socket' are different units."""
        options = {"include_units": ["sshd"], "exclude_units": ["sshd.socket"]}
        assert validate_input("journald", options) == options
