"""Glob patterns and Kafka topics, checked with the rules of the code that compiles them."""

from __future__ import annotations

import re

import pytest

from logpulse_agent.server.patterns import glob_problem
from logpulse_agent.server.render import validate_input

BAD_GLOBS = [
    "/var/log/[app.log",
    "/var/log/app**.log",
    "/var/log/***/x",
    "/x/**a",
    "/x/[!]",
    "/x/[",
]


class TestGlobRules:
    @pytest.mark.parametrize(
        ("pattern", "fragment"),
        [
            ("[app.log", "not closed"),
            ("[]", "not closed"),
            ("[!]", "not closed"),
            ("app**.log", "** inside a path component"),
            ("a/**b", "** inside a path component"),
            ("a**/b", "** inside a path component"),
            ("a/***/b", "'***'"),
        ],
    )
    def test_patterns_rust_glob_refuses(self, pattern: str, fragment: str) -> None:
        """Unclosed [ ], *** and ** inside a component fail glob::Pattern::new."""
        assert fragment in (glob_problem(pattern) or "")

    @pytest.mark.parametrize(
        "pattern",
        ["**", "**/x", "a/**", "a/**/b", "*.log", "[ab]x", "[!a]x", "[]]", "[!]]", "[a-]", "?", ""],
    )
    def test_patterns_rust_glob_accepts(self, pattern: str) -> None:
        """Whole-component **, closed groups (']' first is literal) and plain text pass."""
        assert glob_problem(pattern) is None


class TestGlobOptions:
    @pytest.mark.parametrize("pattern", [*BAD_GLOBS, "/var/log/[/]x"])
    def test_file_include_is_checked_whole_and_per_component(self, pattern: str) -> None:
        """glob_with compiles each component too: '[/]' is fine whole but '[' alone is not."""
        with pytest.raises(ValueError, match=re.escape("option 'include[1]'")):
            validate_input("file", {"include": ["/var/log/*.log", pattern]})

    @pytest.mark.parametrize("pattern", BAD_GLOBS)
    def test_file_exclude_bad_patterns_are_refused(self, pattern: str) -> None:
        """An invalid exclude makes Glob::new return None, and file.rs panics on it."""
        with pytest.raises(ValueError, match=re.escape("option 'exclude[0]'")):
            validate_input("file", {"include": ["/var/log/*.log"], "exclude": [pattern]})

    def test_file_exclude_is_compiled_whole(self) -> None:
        """Excludes are compiled once, as a whole path, so '[/]' is a valid exclude."""
        options = {"include": ["/var/log/**/*.log"], "exclude": ["/var/log/[/]x", "/a//b/./c"]}
        assert validate_input("file", options)["exclude"] == ["/var/log/[/]x", "/a//b/./c"]

    @pytest.mark.parametrize(
        "field", ["include_paths_glob_patterns", "exclude_paths_glob_patterns"]
    )
    @pytest.mark.parametrize("pattern", ["**/[x", "app**", "**/***"])
    def test_kubernetes_log_globs_are_checked(self, field: str, pattern: str) -> None:
        """kubernetes_logs compiles its globs at build; a bad one is a build error."""
        with pytest.raises(ValueError, match=re.escape(f"option '{field}[0]'")):
            validate_input("kubernetes_logs", {field: [pattern]})

    @pytest.mark.parametrize("field", ["headers", "query_parameters"])
    def test_http_server_compiles_only_names_with_a_star(self, field: str) -> None:
        """'X-[*' and 'X-**' are bad globs; 'X-[a' has no '*' and is an exact name."""
        for pattern in ("X-[*", "X-**"):
            with pytest.raises(ValueError, match=re.escape(f"option '{field}[0]'")):
                validate_input("http_server", {"address": "0.0.0.0:80", field: [pattern]})
        names = ["X-[a", "*", "X-*", "**", "User-Agent"]
        assert validate_input("http_server", {"address": "0.0.0.0:80", field: names})[field] == (
            names
        )


class TestKafkaTopics:
    @pytest.mark.parametrize(
        "topic",
        [
            "^(a",
            "^a)",
            "^[a",
            "^a{2,1}",
            "^a{1000}",
            "^a{",
            "^(?i)x",
            "^\\d+",
            "^a$b",
            "^a**",
            "^[[:alpha:]]",
            "^()",
            "^a|",
            "^é",
            "bad topic",
            "a/b",
            "ü",
            ".",
            "x" * 250,
        ],
    )
    def test_topics_librdkafka_refuses_or_that_cannot_exist_are_refused(self, topic: str) -> None:
        """Bad regular expressions fail rd_kafka_subscribe at build; bad names never match."""
        options = {"bootstrap_servers": "k:9092", "group_id": "g", "topics": ["ok", topic]}
        with pytest.raises(ValueError, match=re.escape("option 'topics[1]'")):
            validate_input("kafka", options)

    def test_a_topic_listed_twice_is_refused(self) -> None:
        """librdkafka refuses a subscription with duplicates (RD_KAFKA_RESP_ERR__INVALID_ARG)."""
        options = {"bootstrap_servers": "k:9092", "group_id": "g", "topics": ["a", "b", "a"]}
        with pytest.raises(ValueError, match="option 'topics' lists 'a' twice"):
            validate_input("kafka", options)

    def test_names_and_portable_regular_expressions_are_accepted(self) -> None:
        """Kafka names and the portable POSIX subset pass unchanged."""
        topics = ["app", "x.y_z-1", "^audit-.+", "^(a|b)[0-9]{1,3}$", "^logs\\.[^.]+", "^x?y*"]
        options = {"bootstrap_servers": "k:9092", "group_id": "g", "topics": topics}
        assert validate_input("kafka", options)["topics"] == topics
