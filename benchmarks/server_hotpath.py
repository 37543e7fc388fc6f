"""CPU cost of the agent endpoints inside the server process, without sockets or a load generator.

    .venv/bin/python benchmarks/server_hotpath.py --agents 10000

Builds the real Starlette app over a fresh SQLite file, enrols ``--agents`` agents through it,
then calls the app directly over ASGI (no uvicorn, no kernel) and reports CPU microseconds per
request for the three requests a fleet makes: config poll answered 204 (the bulk of the
traffic), config poll answered 200, and heartbeat. Process CPU time is used, so the figure holds
on a noisy machine; each figure is the median of ``--rounds`` rounds. This is what to compare
before and after a change to the server's hot path; ``fleet_scale.py`` measures the whole.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from logpulse_agent.server.app import create_app  # noqa: E402

ADMIN = "ADM_bench_hotpath"


class Asgi:
    """Minimal ASGI client: one request, the whole body, status and headers back."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes = b"",
        query: str = "",
    ) -> tuple[int, dict[str, str], bytes]:
        raw_headers = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"logpulse-agent/0.1.0")]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers]
        if body:
            raw_headers += [
                (b"content-length", str(len(body)).encode()),
                (b"content-type", b"application/json"),
            ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8080),
            "state": {},
        }
        sent = False
        out: dict[str, Any] = {"body": []}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                out["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                out["body"].append(message.get("body", b""))

        await self.app(scope, receive, send)
        return out["status"], out["headers"], b"".join(out["body"])


async def measure(args: argparse.Namespace, db: Path) -> dict[str, Any]:
    app = create_app(db, admin_token=ADMIN, sweep_interval=None)
    client = Asgi(app)
    admin = [("authorization", f"Bearer {ADMIN}")]

    async def admin_call(method: str, path: str, payload: Any) -> Any:
        status, _, body = await client.request(
            method, "/api/v1/admin" + path, admin, json.dumps(payload).encode()
        )
        assert status < 300, (status, body)
        return json.loads(body)["data"]

    group = await admin_call("POST", "/groups", {"name": "hotpath"})
    await admin_call(
        "POST",
        f"/groups/{group['id']}/inputs",
        {"type": "demo_logs", "name": "demo", "options": {"format": "json"}},
    )
    token = (
        await admin_call(
            "POST",
            "/enrolment-tokens",
            {"group": group["id"], "maxUses": args.agents, "ttlSeconds": 3600},
        )
    )["token"]
    agents = []
    for n in range(args.agents):
        enrol = {
            "bootstrapToken": token,
            "hostname": f"h{n}",
            "platform": "linux",
            "os": "Debian",
            "kernel": "6.1",
            "agentVersion": "0.1.0",
            "vectorVersion": "0.40.0",
        }
        status, _, body = await client.request(
            "POST", "/api/v1/agents/enrol", [], json.dumps(enrol).encode()
        )
        assert status == 201, body
        data = json.loads(body)["data"]
        agents.append((data["agentId"], [("authorization", f"Bearer {data['agentToken']}")]))
    status, headers, _ = await client.request(
        "GET", f"/api/v1/agents/{agents[0][0]}/config", agents[0][1], query="since=0"
    )
    version, etag = int(headers["x-config-version"]), headers["x-config-etag"]

    heartbeat = json.dumps(
        {
            "agentVersion": "0.1.0",
            "vectorVersion": "0.40.0",
            "appliedConfigVersion": version,
            "vectorRunning": True,
            "vectorUptimeSeconds": 1234,
            "configError": None,
        },
        separators=(",", ":"),
    ).encode()

    async def poll_204(agent_id: str, auth: list[tuple[str, str]]) -> int:
        return (
            await client.request(
                "GET",
                f"/api/v1/agents/{agent_id}/config",
                [*auth, ("if-none-match", etag)],
                query=f"since={version}",
            )
        )[0]

    async def poll_200(agent_id: str, auth: list[tuple[str, str]]) -> int:
        path = f"/api/v1/agents/{agent_id}/config"
        return (await client.request("GET", path, auth, query="since=0"))[0]

    async def beat(agent_id: str, auth: list[tuple[str, str]]) -> int:
        path = f"/api/v1/agents/{agent_id}/heartbeat"
        return (await client.request("POST", path, auth, heartbeat))[0]

    results: dict[str, Any] = {}
    for name, call, expected in (
        ("config_204", poll_204, 204),
        ("config_200", poll_200, 200),
        ("heartbeat_200", beat, 200),
    ):
        rounds = []
        for r in range(args.rounds):
            batch = agents[(r * args.requests) % len(agents) :][: args.requests]
            batch = (batch * (args.requests // max(1, len(batch)) + 1))[: args.requests]
            start = time.process_time()
            for agent_id, auth in batch:
                status = await call(agent_id, auth)
                if status != expected:
                    raise RuntimeError(f"{name}: HTTP {status}, expected {expected}")
            rounds.append((time.process_time() - start) / len(batch))
        results[name] = {
            "cpu_us_per_request_median": statistics.median(rounds) * 1e6,
            "cpu_us_min": min(rounds) * 1e6,
            "cpu_us_max": max(rounds) * 1e6,
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lp-hotpath-") as tmp:
        results = asyncio.run(measure(args, Path(tmp) / "server.db"))
    for name, r in results.items():
        print(
            f"{name:<14} {r['cpu_us_per_request_median']:7.1f} us CPU/request "
            f"(min {r['cpu_us_min']:.1f}, max {r['cpu_us_max']:.1f})"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
