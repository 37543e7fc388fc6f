"""Screenshots of the fleet pages for the README: a small made-up fleet in a real server.

    .venv/bin/python scripts/ui_screenshots.py [--out docs]

Starts ``logpulse-server`` on 127.0.0.1 with a temporary database, creates two groups, enrols a
dozen hosts over HTTP (some healthy, one behind on its config with an error, one offline, one
revoked, a bulk upgrade half done), signs in through the form in headless Chromium and saves
``ui-agents.png`` and ``ui-group.png``. Needs Debian's ``chromium`` (``scripts/bootstrap``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.live_server import LiveServer, start_live_server  # noqa: E402
from tests.ui import browser  # noqa: E402
from tests.ui.seed import HttpAgent, enrol  # noqa: E402

OFFLINE_AFTER = 3.0  # seconds: the server's offline threshold in this run


def seed(server: LiveServer) -> list[HttpAgent]:
    """The fleet described in the module docstring; returns the hosts that stay online."""
    web = server.data("POST", "/groups", {"name": "Web frontends", "slug": "web"})
    server.data("POST", "/groups", {"name": "Databases", "slug": "db"})
    inputs = [
        {"type": "journald", "name": "system journal", "options": {"include_units": ["nginx"]}},
        {
            "type": "file",
            "name": "nginx access",
            "options": {"include": ["/var/log/nginx/access.log"]},
            "sourcetypeOverride": "nginx_access",
            "indexOverride": "web",
        },
        {"type": "syslog", "name": "syslog", "options": {"mode": "udp", "address": "0.0.0.0:514"}},
    ]
    for body in inputs:
        server.data("POST", f"/groups/{web['id']}/inputs", body)
    version = server.data("GET", "/groups/web")["configVersion"]
    tokens = {
        slug: server.data("POST", "/enrolment-tokens", {"group": slug, "maxUses": 50})["token"]
        for slug in ("web", "db")
    }
    hosts: list[tuple[HttpAgent, str]] = []
    for n in range(1, 10):
        hosts.append((enrol(server.url, tokens["web"], f"web-{n:02d}.prod.example.com"), "web"))
    for n in range(1, 4):
        hosts.append((enrol(server.url, tokens["db"], f"db-{n}.prod.example.com"), "db"))
    offline, revoked, behind = hosts[3][0], hosts[7][0], hosts[5][0]
    offline.beat(appliedConfigVersion=version)
    time.sleep(OFFLINE_AFTER + 0.5)
    for agent, group in hosts:
        if agent in (offline, revoked):
            continue
        if agent is behind:
            error = {
                "configVersion": version,
                "message": "vector validate: sources.in_3f2a: address 0.0.0.0:514 in use",
                "at": "2026-11-29T19:42:00Z",
            }
            agent.beat(appliedConfigVersion=version - 1, configError=error)
        else:
            agent.beat(appliedConfigVersion=version if group == "web" else 1)
    server.data("POST", f"/agents/{revoked.id}/revoke")
    picked = [agent.id for agent, group in hosts if group == "web"][:4]
    upgrade = {"agentIds": picked, "type": "upgrade_agent", "payload": {"targetVersion": "0.4.2"}}
    server.data("POST", "/actions", upgrade)
    return [agent for agent, _ in hosts if agent not in (offline, revoked)]


def keep_beating(agents: list[HttpAgent], stop: threading.Event) -> None:
    """The online hosts go on beating (as agents do) while the screenshots are taken."""
    applied = {agent.id: agent.last["appliedConfigVersion"] for agent in agents}
    while not stop.wait(1.0):
        for agent in agents:
            error = agent.last["configError"]
            agent.beat(appliedConfigVersion=applied[agent.id], configError=error)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    reason = browser.missing_reason()
    if reason:
        print(f"ui_screenshots: {reason}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_live_server(Path(tmp), offline_threshold=OFFLINE_AFTER)
        stop = threading.Event()
        try:
            beater = threading.Thread(target=keep_beating, args=(seed(server), stop), daemon=True)
            beater.start()
            with browser.launch() as chromium:
                page = chromium.new_page(viewport={"width": 1360, "height": 900})
                browser.sign_in(page, server.url, server.admin_token)
                page.goto(f"{server.url}/ui/agents")
                page.screenshot(path=str(args.out / "ui-agents.png"), full_page=True)
                page.goto(f"{server.url}/ui/groups/web")
                page.screenshot(path=str(args.out / "ui-group.png"), full_page=True)
        finally:
            stop.set()
            server.stop()
    print(f"wrote {args.out / 'ui-agents.png'} and {args.out / 'ui-group.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
