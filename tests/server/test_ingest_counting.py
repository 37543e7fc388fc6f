"""The ingest's pure parts and its counters, without HTTP: parsing, inflating, rates, flushing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from logpulse_agent.server import ingest_counters
from logpulse_agent.server.ingest_counters import (
    OVERFLOW_ROUTING,
    RATE_WINDOW,
    IngestCounters,
    advance,
    events_per_second,
)
from logpulse_agent.server.ingest_hec import (
    HecError,
    check_channel,
    decode_body,
    parse_events,
    splunk_token,
)
from logpulse_agent.server.store import Store


def events(n: int, **routing: str) -> str:
    return "".join(json.dumps({"event": f"line {i}", **routing}) for i in range(n))


class TestParse:
    def test_counts_per_routing_and_keeps_the_last_events(self) -> None:
        """Counts and bytes per triple; ``keep`` holds the last events in order."""
        text = events(3, index="a") + events(2, index="b")
        batch = parse_events(text, keep=2)
        assert {k: v[0] for k, v in batch.counts.items()} == {
            ("a", "httpevent", "http:logpulse"): 3,
            ("b", "httpevent", "http:logpulse"): 2,
        }
        assert batch.events == 5 and batch.bytes == len(text)
        assert [e["event"] for _, e, _ in batch.recent] == ["line 0", "line 1"]

    def test_keep_zero_keeps_nothing(self) -> None:
        assert not parse_events(events(3), keep=0).recent

    def test_a_string_or_number_event_is_fine(self) -> None:
        """Splunk accepts any non-blank event value: text, number, object."""
        assert parse_events('{"event": 0}{"event": "x"}{"event": {"a": 1}}').events == 3


class TestDecode:
    def test_multi_member_gzip_is_read_whole(self) -> None:
        """Two gzip members back to back (gzip's own concatenation rule) inflate to both."""
        raw = gzip.compress(b'{"event": 1}') + gzip.compress(b'{"event": 2}')
        assert decode_body(raw, "gzip", 1024) == '{"event": 1}{"event": 2}'

    def test_inflating_stops_at_the_limit(self) -> None:
        """Exactly the limit is fine, one byte more is 413."""
        assert decode_body(gzip.compress(b"a" * 100), "gzip", 100) == "a" * 100
        with pytest.raises(HecError) as caught:
            decode_body(gzip.compress(b"a" * 101), "GZIP", 100)
        assert caught.value.reply.status == 413

    def test_identity_and_unknown_encodings(self) -> None:
        assert decode_body(b"abc", "identity", 10) == "abc"
        with pytest.raises(HecError) as caught:
            decode_body(b"abc", "deflate", 10)
        assert caught.value.reply.status == 415


class TestHeaders:
    def test_splunk_token(self) -> None:
        assert splunk_token("Splunk  AGT_x ") == "AGT_x"
        assert splunk_token("splunk AGT_x") == "AGT_x"
        for bad in ("", "Bearer AGT_x", "Splunk", "Splunk a b"):
            with pytest.raises(HecError):
                splunk_token(bad)

    def test_channel(self) -> None:
        check_channel(None)
        check_channel("0F4B1C9E-8A8E-4D8B-9D8E-1A2B3C4D5E6F")
        with pytest.raises(HecError):
            check_channel("0f4b1c9e8a8e4d8b9d8e1a2b3c4d5e6f")


class TestRate:
    def test_steady_flow(self) -> None:
        """10 events/s arriving each second read as 10/s at any point of the window."""
        window = None
        for second in range(40):
            window = advance(window, 1000.0 + second, 10)
        assert window is not None
        for extra in (0.0, 0.5, 0.99):
            rate = events_per_second(window[0], int(window[1]), int(window[2]), 1039 + extra)
            assert rate == pytest.approx(10, abs=1.0)

    def test_silence_decays_to_zero(self) -> None:
        window = advance(None, 1000.0, 100)
        assert events_per_second(window[0], 100, 0, 1000.0) == 10
        assert 0 < events_per_second(window[0], 100, 0, 1000.0 + RATE_WINDOW + 1) < 10
        assert events_per_second(window[0], 100, 0, 1000.0 + 2 * RATE_WINDOW) == 0
        assert events_per_second(None, 0, 0, 5.0) == 0

    def test_a_gap_resets_the_window(self) -> None:
        assert advance([1000.0, 50, 20], 1035.0, 5) == [1030, 5, 0]
        assert advance([1000.0, 50, 20], 1010.0, 5) == [1010, 5, 50]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    st = Store(tmp_path / "s.db")
    with st.write() as conn:
        conn.execute(
            "INSERT INTO agent_groups (id, name, slug, created_at, updated_at)"
            " VALUES ('g', 'G', 'g', 0, 0)"
        )
        conn.execute(
            "INSERT INTO agent_registrations (id, group_id, token_hash, hostname, platform,"
            " enrolled_at) VALUES ('a', 'g', 'h', 'host', 'linux', 0)"
        )
    return st


class TestCounters:
    def test_routes_past_the_cap_count_as_other(self, store: Store) -> None:
        """A sender of ever new sourcetypes fills at most max_routes rows, then "(other)"."""
        counters = IngestCounters(store, max_routes=3)
        for n in range(10):
            counters.add("g", "a", parse_events(events(2, sourcetype=f"st{n}")), 100.0)
        counters.flush()
        with store.read() as conn:
            rows = ingest_counters.totals(conn, ["sourcetype"])
        found = {r["sourcetype"]: r["events"] for r in rows}
        assert found == {"st0": 2, "st1": 2, "st2": 2, OVERFLOW_ROUTING[1]: 14}
        with store.read() as conn:
            row = conn.execute("SELECT ingest_events FROM agent_registrations").fetchone()
        assert row[0] == 20

    def test_a_failed_flush_keeps_the_deltas(self, store: Store) -> None:
        """A database error loses nothing: the next flush writes everything."""
        counters = IngestCounters(store)
        counters.add("g", "a", parse_events(events(4)), 100.0)
        store.close()
        assert counters.flush() == 0 and counters.pending()
        counters.store = Store(store.path)
        counters.add("g", "a", parse_events(events(1)), 101.0)
        assert counters.flush() == 1
        with counters.store.read() as conn:
            total = conn.execute("SELECT ingest_events FROM agent_registrations").fetchone()[0]
        assert total == 5

    def test_flush_is_a_no_op_without_deltas(self, store: Store) -> None:
        assert IngestCounters(store).flush() == 0

    def test_counts_for_a_vanished_agent_do_not_break_the_flush(self, store: Store) -> None:
        """No foreign keys on the counters: a deleted group or agent cannot fail a flush."""
        counters = IngestCounters(store)
        counters.add("gone", "ghost", parse_events(events(1)), 100.0)
        counters.add("g", "a", parse_events(events(1)), 100.0)
        counters.flush()
        with store.read() as conn:
            assert conn.execute("SELECT ingest_events FROM agent_registrations").fetchone()[0] == 1

    def test_unknown_dimension(self, store: Store) -> None:
        with store.read() as conn, pytest.raises(ValueError, match="colour"):
            ingest_counters.totals(conn, ["colour"])
