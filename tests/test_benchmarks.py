"""The benchmark scripts still run, end to end, with their one command (shortened).

These check that each script measures something real and reports it, never how fast anything
is: the figures in benchmarks/README.md come from full-length runs on a quiet machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def run_script(name: str, tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / f"{name}.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / name), *args, "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text()), done.stdout


def test_agent_footprint_measures_a_real_agent(tmp_path: Path) -> None:
    """A real agent enrols, applies its config and is sampled: RSS, CPU, requests, CLI times."""
    result, table = run_script(
        "agent_footprint.py",
        tmp_path,
        *("--minutes", "0.25", "--warmup", "4", "--cli-runs", "1"),
        *("--poll-interval", "0.5", "--heartbeat-interval", "1"),
    )
    rss = result["rss_mib"]
    assert 5 < rss["start"] <= rss["max"] < 500
    assert rss["start"] <= rss["steady_median"] * 1.5
    by_endpoint = result["requests"]["per_hour_by_endpoint"]
    assert any("heartbeat" in endpoint for endpoint in by_endpoint), by_endpoint
    assert any("config" in endpoint for endpoint in by_endpoint), by_endpoint
    assert result["cpu"]["seconds_per_hour"] > 0
    assert result["threads"]["max"] >= 1
    assert result["cli_wall_s"]["status"]["exit_codes"] == [0]
    assert result["shutdown"]["exit_code"] == 0
    assert set(result["targets"]) == {"rss_steady_le_30_mib", "cpu_le_0.1_pct"}
    assert "RSS steady" in table and "requests" in table


def test_fleet_scale_enrols_polls_and_rolls_out(tmp_path: Path) -> None:
    """Simulated agents enrol for real, poll without errors and all take a config bump."""
    result, table = run_script(
        "fleet_scale.py",
        tmp_path,
        *("--agents", "30", "--duration", "3", "--warmup", "2", "--rollout-timeout", "40"),
        *("--slow-clients", "20,5"),
    )
    (run,) = result["results"]
    assert run["agents"] == 30
    assert run["steady"]["requests"] > 0 and run["steady"]["errors"] == {}
    slow = run["slow_clients"]  # held alongside the agents, which still saw no error
    assert (slow["idle"], slow["trickle"]) == (20, 5) and slow["opened"] >= 25
    rollout = run["rollout"]
    assert rollout["reached"] == rollout["of"] == 30
    assert rollout["to_version"] == rollout["from_version"] + 1
    assert "rollout" in table


def test_fleet_scale_staged_mode_measures_both_changes(tmp_path: Path) -> None:
    """--staged: a healthy change completes phase by phase, a bad one halts and rolls back,
    and no agent outside the rollout ever receives the bad etag."""
    result, table = run_script(
        "fleet_scale.py",
        tmp_path,
        *("--agents", "20", "--duration", "2", "--warmup", "2", "--staged"),
        *("--phases", "1,50%,100%", "--soak", "1"),
        *("--poll-interval", "0.5", "--heartbeat-interval", "1"),
    )
    (run,) = result["results"]
    healthy, bad = run["staged"]["healthy"], run["staged"]["bad"]
    assert healthy["state"] == "completed"
    assert healthy["reached"] == healthy["of"] == 20
    assert len(healthy["phase_passed_s"]) == 3 and None not in healthy["phase_passed_s"]
    assert bad["state"] == "halted" and bad["admitted"] == 1
    assert bad["failing_heartbeat_to_halted_ms"] is not None
    assert bad["back_on_from"] == bad["got_bad_version"] == 1
    assert bad["non_admitted_saw_bad_etag"] == 0
    assert "heartbeat 200" in str(healthy["traffic"]["endpoints"])
    assert "staged bad change" in table


def test_server_hotpath_reports_cpu_per_request(tmp_path: Path) -> None:
    """The three agent requests run through the server's ASGI app and are costed."""
    result, _ = run_script(
        "server_hotpath.py", tmp_path, "--agents", "50", "--requests", "50", "--rounds", "1"
    )
    assert set(result) == {"config_204", "config_200", "heartbeat_200"}
    for figures in result.values():
        assert figures["cpu_us_per_request_median"] > 0


def test_ui_agents_page_times_each_scenario_against_a_seeded_fleet(tmp_path: Path) -> None:
    """A seeded fleet is served by a real server; every scenario answers 200 and is timed."""
    result, table = run_script(
        "ui_agents_page.py", tmp_path, "--agents", "120", "--requests", "2", "--warmup", "1"
    )
    (run,) = result["results"]
    assert run["agents"] == 120
    assert len(run["scenarios"]) == 8
    for figures in run["scenarios"].values():
        assert 0 < figures["median_ms"] <= figures["max_ms"]
        assert figures["bytes"] > 0
    assert "first page" in table and "bulk review" in table


def test_ingest_throughput_sends_gzip_batches_that_are_counted(tmp_path: Path) -> None:
    """Agents send real gzip HEC batches in both phases; the server counts every accepted one."""
    result, table = run_script(
        "ingest_throughput.py",
        tmp_path,
        *("--agents", "10", "--duration", "2", "--warmup", "1", "--rate", "5000"),
        *("--variants", "2", "--batch-bytes", "200000"),
    )
    saturation, target = result["phases"]
    assert saturation["events"] > 0 and saturation["errors"] == {}
    assert target["batches"] > 0 and target["errors"] == {}
    assert saturation["events_per_server_cpu_second"] > 0
    # warm-up batches are counted by the server too, never fewer than the measured ones
    assert result["server_counted_events"] >= saturation["events"] + target["events"]
    assert 1 < result["batch"]["uncompressed_bytes"] / result["batch"]["gzip_bytes"] < 20
    assert set(result["targets"]) == {
        "events_per_server_cpu_second_ge_50000",
        "p99_batch_lt_250_ms_at_target_rate",
    }
    assert "per srv CPU s" in table
