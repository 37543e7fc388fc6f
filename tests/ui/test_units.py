"""The pure parts of the fleet pages, with plain values: sessions, query strings, the input
form's options, what a row shows, the same-origin rule, install commands."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from starlette.requests import Request

from logpulse_agent.server.errors import BadRequest, Unprocessable
from logpulse_agent.server.ui.diff import counts, unified
from logpulse_agent.server.ui.forms import same_origin
from logpulse_agent.server.ui.input_form import input_body, options_text, parse_options
from logpulse_agent.server.ui.query import AgentQuery
from logpulse_agent.server.ui.selection import digest
from logpulse_agent.server.ui.sessions import SessionStore, same_secret
from logpulse_agent.server.ui.tokens_pages import install_commands
from logpulse_agent.server.ui.views import action_outcome, agent_view, events_per_second
from tests.server.harness import FakeClock

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=timezone.utc)


class TestSessionStore:
    def test_ids_are_random_and_stored_only_as_digests(self) -> None:
        store = SessionStore(clock=FakeClock())
        first, _ = store.create()
        second, _ = store.create()
        assert first != second and len(first) >= 40
        assert first not in repr(store._sessions) and second not in repr(store._sessions)

    def test_the_oldest_idle_session_goes_when_the_limit_is_reached(self) -> None:
        clock = FakeClock()
        store = SessionStore(clock=clock, limit=2)
        a, _ = store.create()
        b, _ = store.create()
        store.get(a)  # a is now the most recently used
        c, _ = store.create()
        assert store.get(b) is None and store.get(a) is not None and store.get(c) is not None
        assert len(store) == 2

    def test_presession_tokens_are_bound_to_their_cookie_and_this_process(self) -> None:
        store, other = SessionStore(), SessionStore()
        cookie = store.new_presession()
        token = store.presession_csrf(cookie)
        assert same_secret(token, store.presession_csrf(cookie))
        assert not same_secret(token, store.presession_csrf(store.new_presession()))
        assert not same_secret(token, other.presession_csrf(cookie))
        assert not same_secret(token, None)


class TestAgentQuery:
    def test_links_keep_the_filters_and_leave_out_defaults(self) -> None:
        query = AgentQuery.parse({"group": "web", "status": "offline", "host": "a&b", "per": "25"})
        assert query.link(page=2) == "?group=web&status=offline&host=a%26b&page=2&per=25"
        assert AgentQuery().link() == "?"
        assert query.offset == 0 and AgentQuery(page=3, per=25).offset == 50

    def test_pages_count_at_least_one(self) -> None:
        assert AgentQuery(per=25).pages(0) == 1
        assert AgentQuery(per=25).pages(51) == 3

    def test_an_overlong_host_search_is_refused(self) -> None:
        with pytest.raises(BadRequest, match="longer than 253"):
            AgentQuery.parse({"host": "x" * 254})


class TestInputForm:
    def test_yaml_and_json_options_read_the_same(self) -> None:
        assert parse_options("format: json\ninterval: 2") == {"format": "json", "interval": 2}
        assert parse_options('{"format": "json"}') == {"format": "json"}
        assert parse_options("  \n") == {} and parse_options("~") == {}

    def test_options_round_trip_through_the_edit_form(self) -> None:
        options = {"mode": "tcp", "tls": {"enabled": True, "crt_file": "/c"}, "lines": ["a"]}
        assert parse_options(options_text(options)) == options
        assert options_text({}) == ""

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("a: [1", "not valid YAML"),
            ("[1, 2]", "must be a mapping"),
            ("when: 2024-01-01", "JSON cannot carry"),
            ("a: &x [1]\nb: *x", "aliases"),
            ("a: .nan", "JSON cannot carry"),
        ],
    )
    def test_unusable_options_are_one_clear_line(self, text: str, message: str) -> None:
        with pytest.raises(Unprocessable, match=message):
            parse_options(text)

    def test_a_create_sends_only_filled_overrides_an_edit_sends_all(self) -> None:
        form = {"type": "file", "name": "n", "options": "", "indexOverride": "web"}
        assert input_body(form, creating=True) == {
            "name": "n",
            "type": "file",
            "options": {},
            "indexOverride": "web",
            "enabled": False,
        }
        edit = input_body({**form, "enabled": "on"}, creating=False)
        assert edit["sourceOverride"] == "" and edit["enabled"] is True and "type" not in edit


class TestViews:
    def base(self, **fields: object) -> dict[str, object]:
        agent: dict[str, object] = {
            "status": "online",
            "lastHeartbeatAt": "2025-06-15T11:58:00Z",
            "enrolledAt": "2025-06-01T00:00:00Z",
            "revokedAt": None,
            "appliedConfigVersion": 3,
            "groupConfigVersion": 4,
        }
        agent.update(fields)
        return agent

    def test_behind_is_applied_below_the_group_version_unless_revoked(self) -> None:
        assert agent_view(self.base(), NOW)["behind"] is True
        assert agent_view(self.base(appliedConfigVersion=4), NOW)["behind"] is False
        assert agent_view(self.base(status="revoked"), NOW)["behind"] is False

    def test_the_status_tip_says_when_the_agent_was_last_seen(self) -> None:
        assert agent_view(self.base(), NOW)["statusTip"] == (
            "last seen 2025-06-15 11:58:00 UTC (2m ago)"
        )
        never = agent_view(self.base(status="offline", lastHeartbeatAt=None), NOW)
        assert never["statusTip"].startswith("never sent a heartbeat")

    def test_health_and_events_show_when_reported_and_stay_absent_otherwise(self) -> None:
        assert agent_view(self.base(), NOW)["healthView"] is None
        assert events_per_second(self.base()) is None
        reported = self.base(
            health={"state": "degraded", "reason": "sink out_1: 41 errors", "since": "x"},
            dataPlane={"windowSeconds": 30, "eventsOut": 900, "eventsIn": 950},
        )
        view = agent_view(reported, NOW)
        assert view["healthView"]["label"] == "Degraded"
        assert view["eventsPerSecond"] == 30.0
        assert events_per_second(self.base(dataPlane={"windowSeconds": 0, "eventsOut": 5})) is None

    def test_events_per_second_prefer_what_this_servers_ingest_received(self) -> None:
        """The server's own count wins (as in ``agents list``); the agent's report is the
        fallback for an ingest elsewhere."""
        plane = {"windowSeconds": 10, "eventsOut": 100}
        received = {"events": 5, "bytes": 9, "lastEventAt": "x", "eventsPerSecond": 2.5}
        never = {"events": 0, "bytes": 0, "lastEventAt": None, "eventsPerSecond": 0.0}
        assert events_per_second(self.base(dataPlane=plane, ingest=received)) == 2.5
        assert events_per_second(self.base(dataPlane=plane, ingest=never)) == 10.0

    def test_an_action_outcome_is_its_first_error_line_or_the_versions(self) -> None:
        assert action_outcome({"result": {"error": "\n boom \n tail"}}) == "boom"
        assert action_outcome({"result": {"fromVersion": "1", "toVersion": "2"}}) == "1 → 2"
        assert action_outcome({"result": None}) is None
        assert action_outcome({"result": {"error": "   "}}) is None


class TestSameOrigin:
    def request(self, **headers: str) -> Request:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        return Request({"type": "http", "method": "POST", "headers": raw})

    def test_only_a_browser_saying_another_site_is_refused(self) -> None:
        assert same_origin(self.request(Host="fleet:8080", Origin="http://fleet:8080"))
        assert same_origin(self.request(Host="fleet:8080", Origin="https://FLEET:8080"))
        assert same_origin(self.request(Host="fleet:8080"))
        assert not same_origin(self.request(Host="fleet:8080", Origin="http://evil:8080"))
        assert not same_origin(self.request(Host="fleet:8080", Origin="null"))


def test_a_selection_digest_ignores_order() -> None:
    assert digest(["b", "a"]) == digest(["a", "b"]) != digest(["a"])


def test_install_commands_quote_what_the_shell_would_read() -> None:
    commands = install_commands("http://h:1/$(id)", "EBT_x")
    assert "LOGPULSE_API_URL='http://h:1/$(id)'" in commands["install"]
    assert commands["enrol"].endswith("--token EBT_x")


def test_a_diff_marks_added_removed_and_context_lines() -> None:
    lines = unified("a: 1\nb: 2\n", "a: 1\nb: 3\n", "v1", "v2")
    kinds = [(line.kind, line.text) for line in lines]
    assert kinds[:3] == [("file", "--- v1"), ("file", "+++ v2"), ("hunk", "@@ -1,2 +1,2 @@")]
    assert kinds[3:] == [("context", " a: 1"), ("remove", "-b: 2"), ("add", "+b: 3")]
    assert counts(lines) == (1, 1)
    assert unified("same\n", "same\n", "v1", "v2") == []
