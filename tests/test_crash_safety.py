"""SIGKILL the real daemon at random points while it applies configs, many times (SPEC §10).

One reference server, one agent host, the Vector stand-in. Every round changes the group's
config (so an apply is in progress: poll, candidate, validate, rename, SIGHUP, record), waits a
seeded random 0 to 400 ms and SIGKILLs the agent; some rounds also kill it again during its own
start-up, and some kill it while an action result waits in the outbox. After every kill the
files on disk must be whole and consistent, and after every restart exactly one Vector runs.

To hold a result in the outbox the test makes the server refuse to record ``done`` for a while:
a trigger in its database aborts that update, so every heartbeat carrying the result gets a 500
and the agent keeps it (as it must for any 5xx) until the trigger is lifted.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.agent_harness import AgentProcess, kill_vectors, vector_processes, wait_until
from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server

SEED = 20240917
ROUNDS = 18
FORMATS = ("syslog", "apache_common", "json", "apache_error", "bsd_syslog")
STATE_JSON = ("applied.json", "outbox.json", "actions-seen.json", "status.json", "identity.json")
VERSION = "0.1.0"

HOLD_SQL = """
CREATE TABLE IF NOT EXISTS test_hold (held INTEGER);
CREATE TRIGGER IF NOT EXISTS test_hold_done BEFORE UPDATE OF status ON agent_actions
WHEN NEW.status = 'done' AND EXISTS (SELECT 1 FROM test_hold)
BEGIN SELECT RAISE(ABORT, 'test: results held'); END;
"""


class Fleet:
    """The server, its one group and input, and the agent host."""

    def __init__(self, tmp_path: Path, server: LiveServer) -> None:
        self.server = server
        self.group = create_group_with_input(server, "crashy")
        self.group_id = self.group["id"]
        self.input_id = server.data("GET", f"/groups/{self.group_id}/inputs")[0]["id"]
        self.agent = AgentProcess(tmp_path / "host", server.url)
        self.state = self.agent.state_dir
        self.rendered: dict[bytes, int] = {}
        self.actions: list[str] = []
        out = self.agent.enrol(mint_token(server, self.group["slug"]))
        assert out.returncode == 0, out.stderr
        self.agent_id = json.loads((self.state / "identity.json").read_text())["agentId"]
        with self.db() as conn:
            conn.executescript(HOLD_SQL)
        self.remember_rendering()

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.server.db, timeout=10, isolation_level=None)

    # --- the control plane side ------------------------------------------------------------
    def remember_rendering(self) -> int:
        """Record what the server now renders for the group (the bytes an agent gets)."""
        response = self.server.admin("GET", f"/groups/{self.group_id}/preview", platform="linux")
        response.raise_for_status()
        version = int(response.headers["x-config-version"])
        self.rendered[response.content] = version
        return version

    def change_config(self, n: int, rng: random.Random) -> int:
        options = {"format": rng.choice(FORMATS), "interval": round(0.5 + n / 10, 1)}
        self.server.data("PATCH", f"/inputs/{self.input_id}", {"options": options})
        return self.remember_rendering()

    def hold_results(self, held: bool) -> None:
        with self.db() as conn:
            conn.execute("DELETE FROM test_hold")
            if held:
                conn.execute("INSERT INTO test_hold VALUES (1)")

    def same_version_upgrade(self) -> str:
        body = {
            "agentIds": [self.agent_id],
            "type": "upgrade_agent",
            "payload": {"targetVersion": VERSION},
        }
        action_id = str(self.server.data("POST", "/actions", body)[0]["id"])
        self.actions.append(action_id)
        return action_id

    def action(self, action_id: str) -> dict[str, Any]:
        return dict(self.server.data("GET", f"/actions/{action_id}"))

    # --- the host side ---------------------------------------------------------------------
    def outbox_ids(self) -> list[str]:
        path = self.state / "outbox.json"
        if not path.exists():
            return []
        return [r["actionId"] for r in json.loads(path.read_bytes())["results"]]

    def wait_in_outbox(self, action_id: str) -> None:
        wait_until(lambda: action_id in self.outbox_ids(), 10, f"{action_id} in the outbox")

    def wait_done(self, action_id: str) -> dict[str, Any]:
        return dict(
            wait_until(
                lambda: (a := self.action(action_id))["status"] == "done" and a,
                10,
                f"{action_id} done on the server",
            )
        )

    def wait_running(self) -> None:
        """The new agent process got past its imports (its first status snapshot is out)."""
        assert self.agent.proc is not None
        pid = self.agent.proc.pid
        wait_until(lambda: self.agent.snapshot().get("pid") == pid, 20, "the agent to run")

    def wait_back(self) -> None:
        """The restarted agent runs, has heartbeated, and exactly one Vector runs on our config."""
        assert self.agent.proc is not None
        pid = self.agent.proc.pid

        def back() -> bool:
            snap = self.agent.snapshot()
            vector = snap.get("vector") or {}
            return (
                snap.get("pid") == pid
                and (snap.get("controlPlane") or {}).get("state") == "ok"
                and vector.get("state") == "RUNNING"
                and [p.pid for p in vector_processes(self.state / "vector.yaml")]
                == [vector.get("pid")]
            )

        wait_until(back, 20, "the agent back with exactly one Vector")

    def check_files(self, when: str) -> None:
        """Every file the agent keeps is whole: JSON parses, configs are rendered ones."""
        for name in STATE_JSON:
            path = self.state / name
            if path.exists():
                try:
                    json.loads(path.read_bytes())
                except ValueError as exc:
                    pytest.fail(f"{when}: {name} is torn: {exc}")
        for name in ("vector.yaml", "vector.next.yaml", "vector.lkg.yaml"):
            path = self.state / name
            if path.exists():
                body = path.read_bytes()
                assert body in self.rendered, f"{when}: {name} is not a config the server rendered"
                assert isinstance(yaml.safe_load(body), dict)
        applied_path = self.state / "applied.json"
        if applied_path.exists():
            applied = json.loads(applied_path.read_bytes())
            live = (self.state / "vector.yaml").read_bytes()
            # The record may lag the live file by one apply (a kill between the rename and the
            # record; the agent notices by etag and re-fetches) but never runs ahead of it.
            assert applied["version"] <= self.rendered[live], (when, applied, self.rendered[live])
        corrupt = sorted(p.name for p in self.state.glob("*.corrupt-*"))
        assert not corrupt, f"{when}: the agent found torn files and moved them aside: {corrupt}"

    def kill(self, when: str) -> None:
        self.agent.kill()
        self.check_files(when)

    def close(self) -> None:
        self.agent.close()
        kill_vectors(self.state / "vector.yaml")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with start_live_server(tmp_path / "server") as server:
        f = Fleet(tmp_path, server)
        try:
            yield f
        finally:
            f.close()


class TestSigkillDuringApplies:
    def test_files_stay_whole_results_survive_and_one_vector_runs(self, fleet: Fleet) -> None:
        """Killed mid-apply again and again: the live config is always a whole rendered one,
        no state file is torn, no result is lost or executed twice, one Vector after restart."""
        rng = random.Random(SEED)
        agent = fleet.agent
        agent.start()
        fleet.wait_back()
        killed_with_result = 0
        for n in range(ROUNDS):
            with_action = n % 3 == 1
            if with_action:
                # A result waiting in the outbox while the apply runs and the kill lands.
                fleet.hold_results(True)
                action_id = fleet.same_version_upgrade()
                fleet.wait_in_outbox(action_id)
            fleet.change_config(n, rng)
            time.sleep(rng.uniform(0, 0.4))
            fleet.kill(f"round {n}")
            if with_action:
                assert action_id in fleet.outbox_ids(), "a result went missing from the outbox"
                assert fleet.action(action_id)["status"] == "pending"
                killed_with_result += 1
                fleet.hold_results(False)
            if rng.random() < 0.3:
                # Killed again while starting up: cleaning the stale Vector, resuming, applying.
                agent.start()
                fleet.wait_running()
                time.sleep(rng.uniform(0, 0.3))
                fleet.kill(f"round {n}, during start-up")
            agent.start()
            fleet.wait_back()
            fleet.check_files(f"round {n}, after restart")

        # Converged: the group's latest version runs, byte for byte.
        latest = fleet.remember_rendering()
        wait_until(lambda: agent.applied_version() == latest, 20, "the latest version applied")
        assert fleet.rendered[(fleet.state / "vector.yaml").read_bytes()] == latest
        fleet.wait_back()

        # Every result reached the server exactly once: done, executed once, id in the ledger.
        for action_id in fleet.actions:
            result = fleet.wait_done(action_id)["result"]
            assert result == {"fromVersion": VERSION, "toVersion": VERSION}
        ledger = json.loads((fleet.state / "actions-seen.json").read_bytes())["ids"]
        assert set(fleet.actions) <= set(ledger)
        finished = [
            str(e.get("action_id")) for e in agent_log(agent) if e["event"] == "actions.finished"
        ]
        assert sorted(finished) == sorted(fleet.actions), "each action executed exactly once"
        wait_until(lambda: not fleet.outbox_ids(), 10, "the outbox to drain")
        assert killed_with_result == len(fleet.actions) >= ROUNDS // 3

        assert agent.terminate() == 0
        assert not vector_processes(fleet.state / "vector.yaml")


class TestSigtermDuringStart:
    def test_sigterm_while_vector_starts_exits_promptly(self, fleet: Fleet) -> None:
        """Regression: a SIGTERM while Vector was starting left the agent hanging forever
        (a cancel swallowed by asyncio.wait_for on Python 3.11); now it exits 0 at once."""
        rng = random.Random(SEED)
        agent = fleet.agent
        log = agent.log_dir / "agent.log"
        for n in range(6):
            starts = starting(log)
            agent.start()
            wait_until(lambda: starting(log) > starts, 20, "Vector to be starting")  # noqa: B023
            time.sleep(rng.uniform(0, 0.15))
            assert agent.terminate(timeout=10) == 0, f"round {n}"
            assert not vector_processes(fleet.state / "vector.yaml")
            fleet.check_files(f"SIGTERM round {n}")


def agent_log(agent: AgentProcess) -> list[dict[str, Any]]:
    """The events of ``agent.log`` (a line torn by a SIGKILL is skipped)."""
    events = []
    for line in (agent.log_dir / "agent.log").read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def starting(log: Path) -> int:
    """How many times ``agent.log`` says Vector is being started."""
    return log.read_text().count('"vector.starting"') if log.exists() else 0
