"""One backoff for everything that retries: requests, heartbeats, Vector restarts, crashed tasks.

After the n-th failure in a row (n = 1, 2, …), :func:`backoff_delay` waits::

    base  = min(ceiling, initial * 2 ** (n - 1))
    delay = base * (1 - jitter * u)        u uniform in [0, 1)

so ``jitter = 0`` is plain exponential backoff, ``jitter = 1`` is "full jitter" (uniform in
``[0, base)``) and a small jitter spreads a fleet that failed together over the last part of
each step. The delay never exceeds ``ceiling``.

A streak ends with a healthy run: :func:`next_attempt` starts again at 1 once the thing that
failed ran for ``healthy_after`` seconds, so failures spread over days never add up to the
ceiling. Steady cadences (polls, heartbeats) are spread by :func:`jittered` instead: ±10 %.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# 2 ** 63 seconds is beyond any ceiling; capping the exponent keeps the float math finite for
# a daemon that has been retrying for weeks.
_MAX_EXPONENT = 63
SPREAD = 0.1


def backoff_delay(
    attempt: int, *, initial: float, ceiling: float, jitter: float, rng: random.Random
) -> float:
    """Seconds to wait after failure number ``attempt`` (1-based); see the module docstring."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    base = min(ceiling, initial * 2.0**exponent)
    return base * (1.0 - jitter * rng.random())


def next_attempt(previous: int, ran_for: float, healthy_after: float) -> int:
    """The attempt number after a failure of something that ran ``ran_for`` seconds: one more
    than ``previous``, or 1 again when it had run healthily for ``healthy_after`` seconds."""
    return 1 if ran_for >= healthy_after else previous + 1


def jittered(interval: float, rng: random.Random, spread: float = SPREAD) -> float:
    """``interval`` ± ``spread`` (10 %), so a fleet restarted together does not act in lockstep."""
    return interval * (1.0 + rng.uniform(-spread, spread))


@dataclass(frozen=True)
class Backoff:
    """An exponential backoff: ``delay(n)`` after the n-th failure in a row."""

    initial: float
    ceiling: float
    jitter: float = 0.1

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not self.initial > 0:
            raise ValueError(f"{name}.initial must be > 0, got {self.initial!r}")
        if not self.ceiling >= self.initial:
            raise ValueError(f"{name}.ceiling must be >= initial, got {self.ceiling!r}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"{name}.jitter must be within [0, 1], got {self.jitter!r}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        return backoff_delay(
            attempt, initial=self.initial, ceiling=self.ceiling, jitter=self.jitter, rng=rng
        )
