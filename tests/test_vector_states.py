"""The restart policy: backoff, its reset after a stable run, and what counts as a failure."""

from __future__ import annotations

import random

from logpulse_agent.vector.states import (
    ExitHistory,
    ExitRecord,
    VectorState,
    failures_since,
)


class TestExits:
    def test_only_unrequested_exits_are_failures(self) -> None:
        """Requested exits never count, whatever their code; the window is inclusive."""
        exits = [
            ExitRecord(10, 0, 1, False),
            ExitRecord(20, 0, 1, True),
            ExitRecord(30, 1, 1, False),
        ]
        assert failures_since(exits, 10) == 2
        assert failures_since(exits, 11) == 1


class TestExitHistory:
    def history(self) -> ExitHistory:
        return ExitHistory(initial=1.0, maximum=60.0, stable_after=60.0, rng=random.Random(3))

    def test_failures_back_off_and_requested_exits_do_not(self) -> None:
        """Each crash lengthens the next delay; after a requested exit there is no delay."""
        history = self.history()
        assert history.next_delay(VectorState.STOPPED) == 0.0
        history.record(1.0, 0, 2.0, requested=False)
        first = history.next_delay(VectorState.BACKOFF)
        history.record(2.0, 0, 2.0, requested=False)
        assert history.attempt == 2 and history.next_delay(VectorState.BACKOFF) > first
        history.record(3.0, 0, 2.0, requested=True)
        assert history.next_delay(VectorState.STOPPED) == 0.0

    def test_fatal_retries_at_the_ceiling(self) -> None:
        """A binary that cannot be executed is retried every `maximum` seconds."""
        assert self.history().next_delay(VectorState.FATAL) == 60.0

    def test_reset_and_stable_runs_clear_the_streak(self) -> None:
        """reset() and a run of stable_after seconds both restart the count at the bottom."""
        history = self.history()
        for at in range(3):
            history.record(float(at), 0, 1.0, requested=False)
        history.reset()
        assert history.attempt == 0
        history.record(5.0, 0, 61.0, requested=False)
        assert history.attempt == 1

    def test_history_is_bounded(self) -> None:
        """Only the newest `limit` exits are kept."""
        history = ExitHistory(initial=1, maximum=2, stable_after=3, limit=5)
        for at in range(12):
            history.record(float(at), 0, 0.0, requested=True)
        assert [record.at for record in history.exits] == [7.0, 8.0, 9.0, 10.0, 11.0]


class TestStateNames:
    def test_status_prints_the_state_names(self) -> None:
        """The states are the words `status` prints."""
        assert [str(state) for state in VectorState] == [
            "STOPPED",
            "STARTING",
            "RUNNING",
            "BACKOFF",
            "STOPPING",
            "FATAL",
        ]
