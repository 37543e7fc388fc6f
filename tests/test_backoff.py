"""The one backoff: exponential with jitter, capped, reset by a healthy run; steady jitter."""

from __future__ import annotations

import random

import pytest

from logpulse_agent.backoff import Backoff, backoff_delay, jittered, next_attempt


class TestBackoffDelay:
    def test_grows_exponentially_without_jitter(self) -> None:
        """Without jitter the n-th wait is initial * 2^(n-1), up to the ceiling."""
        policy = Backoff(initial=0.5, ceiling=10, jitter=0)
        waits = [policy.delay(n, random.Random(0)) for n in range(1, 8)]
        assert waits == [0.5, 1, 2, 4, 8, 10, 10]

    def test_full_jitter_spans_zero_to_the_base(self) -> None:
        """jitter=1 draws each wait from [0, base)."""
        policy = Backoff(initial=8, ceiling=300, jitter=1)
        waits = [policy.delay(1, random.Random(seed)) for seed in range(200)]
        assert 0 <= min(waits) < 1
        assert 7 < max(waits) <= 8

    def test_stays_finite_after_weeks_of_retrying(self) -> None:
        """A very high attempt number still gives the ceiling, not an overflow."""
        assert Backoff(initial=1, ceiling=300, jitter=0).delay(100_000, random.Random(0)) == 300

    def test_vector_restarts_double_from_initial_to_the_ceiling_with_jitter(self) -> None:
        """Vector's restart delays (jitter 0.2) double per attempt within the last fifth of each
        step and never exceed the maximum."""
        rng = random.Random(1)
        delays = [
            backoff_delay(n, initial=1.0, ceiling=60.0, jitter=0.2, rng=rng) for n in range(1, 10)
        ]
        for attempt, delay in enumerate(delays[:6], start=1):
            assert 0.8 * 2 ** (attempt - 1) <= delay <= 2 ** (attempt - 1)
        assert all(delay <= 60.0 for delay in delays)
        assert delays[-1] >= 48.0

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"initial": 0, "ceiling": 1},
            {"initial": 10, "ceiling": 5},
            {"initial": 1, "ceiling": 5, "jitter": 1.5},
        ],
    )
    def test_refuses_a_nonsensical_backoff(self, kwargs: dict[str, float]) -> None:
        """Impossible settings fail loudly when the backoff is built, naming the class."""
        with pytest.raises(ValueError, match=r"^Backoff\."):
            Backoff(**kwargs)


class TestStreak:
    def test_a_healthy_run_resets_the_attempts(self) -> None:
        """A failure after healthy_after seconds of running starts counting from 1 again."""
        assert next_attempt(4, ran_for=59.9, healthy_after=60) == 5
        assert next_attempt(4, ran_for=60.0, healthy_after=60) == 1
        assert next_attempt(0, ran_for=0.0, healthy_after=60) == 1


class TestJittered:
    def test_jitter_stays_within_ten_percent(self) -> None:
        """Poll and heartbeat intervals vary by at most ±10 %."""
        rng = random.Random(1)
        values = [jittered(10.0, rng) for _ in range(1000)]
        assert min(values) >= 9.0 and max(values) <= 11.0
        assert max(values) - min(values) > 1.0
