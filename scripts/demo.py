"""The demo: reference server + one enrolled agent + Vector (real when on PATH, else the stand-in).

Everything lives under ``./demo`` (wiped at every start). The group's demo_logs input makes
Vector send about 40 events a second to the server's own HEC ingest, and the demo shows how
many arrived before handing over. Ctrl-C stops the agent (which stops Vector gracefully) and
then the server. ``DEMO_ONESHOT=1`` exits once everything is up (the test suite runs the demo
that way).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = Path(os.environ.get("DEMO_DIR") or ROOT / "demo")
BIN = Path(sys.executable).parent
POLL, HEARTBEAT = 2, 5
DEMO_INTERVAL = 0.025  # seconds between demo_logs events: 40 a second
INGEST_WINDOW = 10.0  # seconds of ingest the demo counts before handing over


def say(text: str = "") -> None:
    print(text, flush=True)


def run(*args: str, env: dict[str, str], check: bool = True) -> str:
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
    if check and out.returncode != 0:
        raise SystemExit(f"demo: {' '.join(args[:3])} failed: {out.stderr.strip()}")
    return out.stdout


def wait_for(what: str, check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: timed out waiting for {what}")
        time.sleep(0.2)


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [
            str(BIN / "logpulse-server"),
            "serve",
            "--db",
            str(DEMO / "server.db"),
            "--host",
            "127.0.0.1",
            "--port",
            os.environ.get("DEMO_PORT", "0"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=(DEMO / "server.log").open("w"),
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    prefix = "logpulse-server listening on "
    if not line.startswith(prefix):
        raise SystemExit(f"demo: the server did not start; see {DEMO / 'server.log'}")
    return server, line[len(prefix) :].strip()


def vector_binary() -> tuple[str, str]:
    real = shutil.which("vector")
    if real:
        return real, f"real Vector at {real}"
    sys.path.insert(0, str(ROOT))
    from tests.standin import install_standin

    return str(install_standin(DEMO / "bin")), "the Vector stand-in (no `vector` on PATH)"


def main() -> int:
    # Ctrl-C and SIGTERM both stop the demo cleanly (also when started from a shell that made
    # a background job ignore SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if DEMO.exists():
        shutil.rmtree(DEMO)
    agent_dir = DEMO / "agent"
    agent_dir.mkdir(parents=True)
    admin_token = "ADM_demo_" + secrets.token_urlsafe(24)
    env = {**os.environ, "LOGPULSE_ADMIN_TOKEN": admin_token}
    for var in ("LOGPULSE_ENROL_TOKEN", "LOGPULSE_CONFIG", "LOGPULSE_API_URL"):
        env.pop(var, None)

    server, url = start_server(env)
    agent: subprocess.Popen[bytes] | None = None
    try:
        say(f"• reference server on {url} (SQLite: {DEMO / 'server.db'})")
        env["LOGPULSE_SERVER_URL"] = url
        srv = str(BIN / "logpulse-server")
        run(srv, "group", "create", "Demo", "--slug", "demo", env=env)
        run(
            srv,
            "input",
            "add",
            "demo",
            "demo_logs",
            "demo logs",
            "-o",
            "format=json",
            "-o",
            f"interval={DEMO_INTERVAL}",
            env=env,
        )
        token_file = DEMO / "bootstrap-token"
        token = run(srv, "token", "mint", "demo", "--ttl", "1h", "--max-uses", "5", env=env)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, token.strip().encode())
        os.close(fd)
        say("• group 'demo' with a demo_logs input; enrolment token minted (demo/bootstrap-token)")

        vector_bin, which = vector_binary()
        config = agent_dir / "agent.yaml"
        config.write_text(
            f"config_dir: {agent_dir / 'etc'}\nstate_dir: {agent_dir / 'lib'}\n"
            f"log_dir: {agent_dir / 'log'}\nvector_bin: {vector_bin}\n"
            f"poll_interval: {POLL}\nheartbeat_interval: {HEARTBEAT}\n"
        )
        env["LOGPULSE_CONFIG"] = str(config)
        agent_cli = str(BIN / "logpulse-agent")
        say(
            run(agent_cli, "enrol", "--api-url", url, "--token-file", str(token_file), env=env)
            .rstrip()
            .replace("\n", "\n  ")
            .join(("• ", ""))
        )
        with (agent_dir / "agent.out").open("wb") as out:
            agent = subprocess.Popen(
                [agent_cli, "run"], env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL
            )
        say(f"• agent running (pid {agent.pid}, poll {POLL}s, heartbeat {HEARTBEAT}s) with {which}")

        def healthy() -> bool:
            out = subprocess.run(
                [agent_cli, "status", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            try:
                snap = json.loads(out.stdout)
            except ValueError:
                return False
            return out.returncode == 0 and bool(snap.get("config", {}).get("appliedVersion"))

        wait_for("the agent to apply its first config", healthy)

        def agents() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = json.loads(run(srv, "agents", "list", "--json", env=env))
            return rows

        def ingested() -> int:
            return sum(int(a["ingest"]["events"]) for a in agents())

        wait_for("the first events to arrive at the ingest", lambda: ingested() > 0)
        first, since = ingested(), time.monotonic()

        def reported() -> bool:
            rows = agents()
            return bool(rows) and all(
                a["appliedConfigVersion"] == a["groupConfigVersion"] for a in rows
            )

        wait_for("a heartbeat reporting the applied version", reported, HEARTBEAT * 3)
        time.sleep(max(0.0, since + INGEST_WINDOW - time.monotonic()))
        counted, window = ingested() - first, time.monotonic() - since
        host = agents()[0]["hostname"]
        say(f"• ingest: {counted} events from {host} in the last {window:.0f} s")
        say("\n$ logpulse-agent status")
        say(run(agent_cli, "status", env=env, check=False).rstrip())
        say("\n$ logpulse-server agents list")
        say(run(srv, "agents", "list", env=env).rstrip())

        env_file = DEMO / "env.sh"
        env_file.write_text(
            f"export LOGPULSE_CONFIG={config}\nexport LOGPULSE_SERVER_URL={url}\n"
            f"export LOGPULSE_ADMIN_TOKEN={admin_token}\nexport PATH={BIN}:$PATH\n"
        )
        env_file.chmod(0o600)
        say(f"\n• fleet pages: {url}/ui/  (sign in with LOGPULSE_ADMIN_TOKEN from demo/env.sh)")
        say(f"""
Try next, in another terminal (source demo/env.sh first):
  logpulse-agent status                        # what the daemon last recorded
  logpulse-server agents list                  # online, config, HEALTH, EVENTS/s
  logpulse-server tail demo -f                 # the events arriving at the server's ingest
  logpulse-server ingest totals                # events and bytes per index/sourcetype/source
  logpulse-server ingest pause --for 20s       # ingest answers 503: Vector retries, loses nothing
  logpulse-server input add demo syslog "syslog in" -o mode=udp -o address=127.0.0.1:5514
                                               # → a new config version; watch it roll out:
  logpulse-server agents list                  #   applied catches up within one poll ({POLL}s)
  logpulse-server preview demo                 # the Vector YAML the agent runs
  tail -f demo/agent/log/agent.log             # the agent's events (JSON lines)
Ctrl-C here stops the agent (Vector gracefully) and the server.""")
        if os.environ.get("DEMO_ONESHOT"):
            return 0
        while agent.poll() is None and server.poll() is None:
            time.sleep(0.5)
        say("demo: a process exited unexpectedly; see demo/agent/agent.out and demo/server.log")
        return 1
    except KeyboardInterrupt:
        say("\nstopping…")
        return 0
    finally:
        for proc in (agent, server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(70)
                except subprocess.TimeoutExpired:
                    proc.kill()
        say("demo stopped (state kept in ./demo until the next run)")


if __name__ == "__main__":
    sys.exit(main())
