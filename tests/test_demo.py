"""The README's main command: the demo comes up, shows the agent healthy and its events arriving,
and Ctrl-C stops all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from tests.agent_harness import wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    """Server + enrolled agent + stand-in come up healthy at the group's version, the demo
    input's events arrive at the server's ingest; SIGINT (Ctrl-C) stops the agent, Vector and
    the server, and the demo exits 0."""
    out = tmp_path / "demo.out"
    with out.open("w") as sink:
        demo = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "demo.py")],
            env={**os.environ, "DEMO_DIR": str(tmp_path / "demo")},
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_until(lambda: "Ctrl-C here" in out.read_text(), 60, "the demo to come up")
        text = out.read_text()
        assert "logpulse-agent 0.1.0: healthy" in text
        assert "the Vector stand-in" in text or "real Vector" in text
        assert "2/2" in text, "agents list shows the applied version equal to the group's"
        assert re.search(r"fleet pages: http://127\.0\.0\.1:\d+/ui/ ", text)
        arrived = re.search(r"• ingest: (\d+) events from (\S+) in the last (\d+) s", text)
        assert arrived, "the demo reports what the ingest received"
        assert int(arrived.group(1)) > 0 and int(arrived.group(3)) >= 10
        header, row = text.split("$ logpulse-server agents list\n", 1)[1].splitlines()[:2]
        rate = row[header.index("EVENTS/s") :].split()[0]
        assert float(rate) > 0, "the agents list shows events per second"
        children = psutil.Process(demo.pid).children(recursive=True)
        assert children
        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0
        assert "demo stopped" in out.read_text()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
