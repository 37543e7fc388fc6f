"""The pure verdict on an in-flight upgrade: facts in, done / wait / failed out."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from logpulse_agent.upgrade.record import InFlightUpgrade
from logpulse_agent.upgrade.verdict import Limits, Observation, Outcome, verdict

RECORD = InFlightUpgrade("act-1", "0.1.0", "0.2.0", "2026-01-01T00:00:00Z", pid=42)
LIMITS = Limits(
    max_age=timedelta(minutes=30),
    pickup_timeout=timedelta(minutes=2),
    settle=timedelta(seconds=15),
)
RUNNING = Observation(
    record=RECORD,
    running_version="0.1.0",
    age=timedelta(minutes=1),
    exit_status=None,
    installer_alive=True,
    unclaimed=False,
    gone_for=timedelta(0),
    request_path=Path("/var/lib/logpulse-agent/upgrade-request"),
)
GONE = replace(RUNNING, installer_alive=False, gone_for=timedelta(minutes=1))


def test_the_target_version_running_is_done_whatever_else_holds() -> None:
    """After the restart as the target, nothing about the installer matters (root's upgrade
    probation can still hold or fail it: tests/test_probation.py)."""
    for o in (RUNNING, GONE, replace(GONE, exit_status=1)):
        assert verdict(replace(o, running_version="0.2.0"), LIMITS).outcome is Outcome.DONE


def test_a_running_installer_is_waited_for_until_max_age() -> None:
    """Still at work and young: wait; past 30 minutes: failed, naming the limit."""
    assert verdict(RUNNING, LIMITS).outcome is Outcome.WAIT
    late = verdict(replace(RUNNING, age=timedelta(minutes=31)), LIMITS)
    assert late.outcome is Outcome.FAILED
    assert late.error == (
        "upgrade to 0.2.0 did not finish within 30 minutes: the installer is still running "
        "and the agent still runs 0.1.0"
    )


def test_an_unclaimed_request_fails_after_the_pickup_timeout_and_is_withdrawn() -> None:
    """Nobody took the request file: failed, naming the path unit, the request removed."""
    waiting = replace(RUNNING, unclaimed=True, record=replace(RECORD, pid=None, unit="u"))
    assert verdict(waiting, LIMITS).outcome is Outcome.WAIT
    late = verdict(replace(waiting, age=timedelta(minutes=2)), LIMITS)
    assert late.outcome is Outcome.FAILED and late.withdraw_request
    assert late.error is not None
    assert "not picked up within 120 s" in late.error
    assert "systemctl enable --now logpulse-agent-upgrade.path" in late.error


@pytest.mark.parametrize(
    ("observation", "error"),
    [
        (
            replace(GONE, exit_status=3),
            "upgrade to 0.2.0 failed: the installer exited with status 3",
        ),
        (
            replace(GONE, record=replace(RECORD, pid=None)),
            "upgrade to 0.2.0 did not take effect: the agent stopped before the installer was "
            "launched and still runs 0.1.0",
        ),
        (GONE, "upgrade to 0.2.0 did not take effect: agent still runs 0.1.0"),
    ],
)
def test_an_installer_that_ended_without_effect_is_failed(
    observation: Observation, error: str
) -> None:
    """Exit status, never launched, or gone without the new version: each says why."""
    decided = verdict(observation, LIMITS)
    assert (decided.outcome, decided.error, decided.withdraw_request) == (
        Outcome.FAILED,
        error,
        False,
    )


def test_a_finished_installer_gets_time_to_restart_the_agent() -> None:
    """Gone for less than the settle time: it may be restarting us, so wait."""
    assert verdict(replace(GONE, gone_for=timedelta(seconds=14)), LIMITS).outcome is Outcome.WAIT
    exited_zero = replace(GONE, exit_status=0, gone_for=timedelta(seconds=1))
    assert verdict(exited_zero, LIMITS).outcome is Outcome.WAIT
