"""Pure config-sync decisions."""

from __future__ import annotations

from logpulse_agent.config.decisions import (
    Plan,
    Standing,
    Watch,
    crash_loop,
    crash_window,
    plan_update,
    poll_cursor,
    rejection_withdrawn,
    retry_ceiling,
    should_poll_now,
    standing,
    survived,
)
from logpulse_agent.config.store import AppliedConfig, RejectedConfig

APPLIED = AppliedConfig(version=3, etag="sha256:aaa")


class TestPlanUpdate:
    def test_new_content_is_applied(self) -> None:
        """A new etag goes through validation and reload."""
        assert plan_update(4, "sha256:bbb", False, APPLIED, None) is Plan.APPLY

    def test_rejected_version_is_not_validated_again(self) -> None:
        """The same bad version/etag is skipped at every later poll."""
        rejected = RejectedConfig(4, "sha256:bbb", "bad", "t")
        assert plan_update(4, "sha256:bbb", False, APPLIED, rejected) is Plan.SKIP_REJECTED

    def test_rejected_etag_under_a_new_version_is_tried_again(self) -> None:
        """An operator re-saving the group gives the config another chance."""
        rejected = RejectedConfig(4, "sha256:bbb", "bad", "t")
        assert plan_update(5, "sha256:bbb", False, APPLIED, rejected) is Plan.APPLY

    def test_same_bytes_under_a_new_version_only_records_it(self) -> None:
        """A group rename changes the version but not the YAML: no reload."""
        assert plan_update(4, "sha256:aaa", False, APPLIED, None) is Plan.RECORD_ONLY

    def test_empty_config_stops_vector(self) -> None:
        """`{}` means no enabled inputs."""
        assert plan_update(4, "sha256:e", True, APPLIED, None) is Plan.STOP


class TestCrashWatch:
    def test_three_exits_make_a_crash_loop(self) -> None:
        """Two exits may be bad luck; three right after an apply blame the config."""
        assert not crash_loop(2)
        assert crash_loop(3)

    def test_window_is_a_minute_at_default_poll_and_never_under_five_seconds(self) -> None:
        """Six poll intervals, with a floor that leaves room for three Vector start-ups."""
        assert crash_window(10.0) == 60.0
        assert crash_window(0.1) == 5.0

    def test_a_quiet_window_promotes_the_config(self) -> None:
        """Surviving the whole window makes a config last-known-good."""
        watch = Watch(4, "e", since=100.0)
        assert not survived(watch, 150.0, 60.0, 0)
        assert survived(watch, 160.0, 60.0, 1)
        assert not survived(watch, 160.0, 60.0, 3)

    def test_a_replaced_config_is_judged_by_how_it_ran(self) -> None:
        """Replaced after its window: proven. Inside it: a fallback only when Vector runs on
        it and never exited since it was applied, however short the run."""
        watch = Watch(4, "e", since=100.0)
        assert standing(watch, 160.0, 60.0, 2, running=True) is Standing.PROVEN
        assert standing(watch, 100.1, 60.0, 0, running=True) is Standing.CLEAN
        assert standing(watch, 101.0, 60.0, 1, running=True) is Standing.FAILED
        assert standing(watch, 100.1, 60.0, 0, running=False) is Standing.FAILED
        assert standing(watch, 160.0, 60.0, 3, running=True) is Standing.FAILED


class TestTiming:
    def test_retry_ceiling_is_five_minutes_at_default_poll(self) -> None:
        """The ceiling is 300 s at the default interval and scales down for short ones."""
        assert retry_ceiling(10.0) == 300.0
        assert retry_ceiling(60.0) == 300.0
        assert retry_ceiling(0.1) == 3.0

    def test_heartbeat_ahead_of_the_cursor_triggers_a_poll(self) -> None:
        """configVersion above the version polls send means poll now."""
        assert should_poll_now(4, 3)
        assert not should_poll_now(3, 3)
        assert not should_poll_now(None, 3)

    def test_polls_send_the_rejected_config_while_there_is_one(self) -> None:
        """So the server answers 204 while it serves the config that was rejected."""
        assert poll_cursor(APPLIED, None) == (3, "sha256:aaa")
        rejected = RejectedConfig(4, "sha256:bbb", "bad", "t")
        assert poll_cursor(APPLIED, rejected) == (4, "sha256:bbb")
        assert poll_cursor(AppliedConfig(), rejected) == (4, "sha256:bbb")

    def test_a_rejected_version_is_withdrawn_when_we_hold_what_is_served(self) -> None:
        """A halted staged rollout serves the version we kept: the rejected one is withdrawn;
        while the server still serves the rejected version, it is not."""
        rejected = RejectedConfig(version=4, etag="sha256:bad", message="m", at="t")
        assert rejection_withdrawn(3, APPLIED, rejected)
        assert not rejection_withdrawn(4, APPLIED, rejected)
        assert not rejection_withdrawn(5, APPLIED, rejected)  # something newer: poll it first
        assert not rejection_withdrawn(None, APPLIED, rejected)
        assert not rejection_withdrawn(3, APPLIED, None)
