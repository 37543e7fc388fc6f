"""The real server process on 127.0.0.1: start-up line, concurrency, shutdown, admin token."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from logpulse_agent.server.store import migrations
from tests.live_server import LISTENING, create_group_with_input, mint_token, start_live_server
from tests.server.spec_check import SpecChecker

HOOKS = {"response": [SpecChecker().hook]}


class TestServe:
    def test_port_zero_prints_the_bound_url_first_and_sigterm_exits_zero(
        self, tmp_path: Path
    ) -> None:
        """--port 0 binds a free port, the first stdout line names it, SIGTERM stops cleanly."""
        with start_live_server(tmp_path, event_hooks=HOOKS) as server:
            assert server.url.startswith("http://127.0.0.1:")
            assert not server.url.endswith(":0")
            health = httpx.get(server.url + "/healthz", timeout=5)
            latest = len(migrations())
            assert health.json() == {"data": {"status": "ok", "schemaVersion": latest}}
            spec = httpx.get(server.url + "/openapi.json", timeout=5).json()
            assert spec["openapi"] == "3.1.0"
            assert server.stop() == 0
        assert "logpulse-server stopped" in server.log.read_text()

    def test_sigint_also_stops_cleanly(self, tmp_path: Path) -> None:
        """Ctrl-C (SIGINT) ends with exit status 0 as well."""
        server = start_live_server(tmp_path)
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(10) == 0
        server.stop()

    def test_generated_admin_token_is_printed_once_and_stored_hashed(self, tmp_path: Path) -> None:
        """Without LOGPULSE_ADMIN_TOKEN the first start prints a token on stderr; it works,
        later starts do not print it, and the database holds only its hash."""
        env = {k: v for k, v in os.environ.items() if k != "LOGPULSE_ADMIN_TOKEN"}
        db = tmp_path / "s.db"
        args = [
            sys.executable,
            "-m",
            "logpulse_agent.server.cli",
            "serve",
            "--port",
            "0",
            "--db",
            str(db),
        ]
        outputs = []
        for _ in range(2):
            process = subprocess.Popen(
                args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            try:
                assert process.stdout is not None
                line = process.stdout.readline()
                assert line.startswith(LISTENING)
                process.send_signal(signal.SIGTERM)
                _, err = process.communicate(timeout=10)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate(timeout=10)
            assert process.returncode == 0, err
            outputs.append((line[len(LISTENING) :].strip(), err))
        first_err, second_err = outputs[0][1], outputs[1][1]
        assert "generated the admin token" in first_err
        assert "admin token" not in second_err
        token = first_err.split("): ")[1].split()[0]
        assert token.startswith("ADM_")
        blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("s.db"))
        assert token.encode() not in blob
        with start_live_server(tmp_path, db=db, admin_token=token, env={}) as server:
            assert server.admin("GET", "/groups").status_code == 200

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("ftp://x/y", "http(s) base URL"),
            ("https://ïngest.example.com", "must be ASCII"),
            ("https://ingest.example.com:0", "port must be from 1 to 65535"),
        ],
    )
    def test_bad_ingest_url_is_one_clear_line_and_exit_1(
        self, tmp_path: Path, url: str, reason: str
    ) -> None:
        """An ingest URL the renderer refuses stops serve before it listens, saying why."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "logpulse_agent.server.cli",
                "serve",
                "--port",
                "0",
                "--db",
                str(tmp_path / "s.db"),
                "--ingest-url",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert result.returncode == 1
        assert result.stdout == ""
        (line,) = result.stderr.strip().splitlines()
        assert "--ingest-url" in line and reason in line

    def test_sinks_point_at_the_servers_own_url_by_default(self, tmp_path: Path) -> None:
        """Without --ingest-url the rendered sinks send to this server's own HEC ingest."""
        with start_live_server(tmp_path) as server:
            create_group_with_input(server, "web")
            preview = server.admin("GET", "/groups/web/preview").text
            assert f"endpoint: {server.url}\n" in preview

    def test_public_url_is_what_agents_are_told(self, tmp_path: Path) -> None:
        """--public-url (LOGPULSE_PUBLIC_URL) names the URL agents reach, e.g. behind TLS."""
        env = {"LOGPULSE_PUBLIC_URL": "https://logpulse.example.com:8443/"}
        with start_live_server(tmp_path / "a", env=env) as server:
            create_group_with_input(server, "web")
            preview = server.admin("GET", "/groups/web/preview").text
            assert "endpoint: https://logpulse.example.com:8443\n" in preview
        result = subprocess.run(
            [sys.executable, "-m", "logpulse_agent.server.cli", "serve", "--port", "0",
             "--db", str(tmp_path / "b.db"), "--public-url", "ftp://x"],
            capture_output=True, text=True, timeout=20, env={**os.environ},
        )  # fmt: skip
        assert result.returncode == 1 and "--public-url 'ftp://x'" in result.stderr

    def test_busy_port_is_one_clear_line_and_exit_1(self, tmp_path: Path) -> None:
        """A port already taken is reported, not a traceback."""
        with start_live_server(tmp_path, event_hooks=HOOKS) as server:
            port = server.url.rsplit(":", 1)[1]
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "logpulse_agent.server.cli",
                    "serve",
                    "--port",
                    port,
                    "--db",
                    str(tmp_path / "other.db"),
                ],
                capture_output=True,
                text=True,
                timeout=20,
            )
        assert result.returncode == 1
        assert "cannot listen" in result.stderr and "Traceback" not in result.stderr


class TestConcurrencyOverTheNetwork:
    def test_fifty_concurrent_enrolments_on_ten_uses_make_exactly_ten_agents(
        self, tmp_path: Path
    ) -> None:
        """50 simultaneous enrol requests over 127.0.0.1 on maxUses=10: ten 201s, forty 401s."""
        spec = SpecChecker()
        with start_live_server(tmp_path, event_hooks=HOOKS) as server:
            create_group_with_input(server, "web")
            token = mint_token(server, "web", max_uses=10)

            async def race() -> list[int]:
                async with httpx.AsyncClient(
                    base_url=server.url,
                    timeout=30,
                    event_hooks={"response": [spec.acheck]},
                    limits=httpx.Limits(max_connections=50),
                ) as client:

                    async def one(n: int) -> int:
                        body = {
                            "bootstrapToken": token,
                            "hostname": f"h{n}",
                            "platform": "linux",
                            "agentVersion": "0.4.1",
                        }
                        return (await client.post("/api/v1/agents/enrol", json=body)).status_code

                    return await asyncio.gather(*(one(n) for n in range(50)))

            statuses = asyncio.run(race())
            assert statuses.count(201) == 10
            assert statuses.count(401) == 40
            assert len(server.data("GET", "/agents")) == 10
            (row,) = server.data("GET", "/enrolment-tokens")
            assert (row["uses"], row["state"]) == (10, "exhausted")


class TestAgentProtocolOverTheNetwork:
    def test_enrol_poll_beat_and_upgrade_over_a_socket(self, tmp_path: Path) -> None:
        """The three agent endpoints behave the same over uvicorn as in-process."""
        with (
            start_live_server(tmp_path, event_hooks=HOOKS) as server,
            httpx.Client(base_url=server.url, event_hooks=HOOKS, timeout=10) as agent_http,
        ):
            create_group_with_input(server, "web")
            body = {
                "bootstrapToken": mint_token(server, "web"),
                "hostname": "h",
                "platform": "linux",
                "agentVersion": "0.4.1",
            }
            enrolled = agent_http.post("/api/v1/agents/enrol", json=body).json()["data"]
            auth = {"Authorization": f"Bearer {enrolled['agentToken']}"}
            base = f"/api/v1/agents/{enrolled['agentId']}"
            first = agent_http.get(f"{base}/config", params={"since": 0}, headers=auth)
            assert first.status_code == 200 and b"demo_logs" in first.content
            etag = first.headers["x-config-etag"]
            again = agent_http.get(
                f"{base}/config", params={"since": 2}, headers={**auth, "If-None-Match": etag}
            )
            assert again.status_code == 204
            server.data(
                "POST",
                "/actions",
                {
                    "agentIds": [enrolled["agentId"]],
                    "type": "upgrade_agent",
                    "payload": {"targetVersion": "0.4.2"},
                },
            )
            beat = {"agentVersion": "0.4.1", "appliedConfigVersion": 2, "vectorRunning": True}
            answer = agent_http.post(f"{base}/heartbeat", json=beat, headers=auth).json()
            (action,) = answer["data"]["pendingActions"]
            assert action["payload"] == {"targetVersion": "0.4.2"}
            server.data("POST", f"/agents/{enrolled['agentId']}/revoke")
            assert agent_http.get(f"{base}/config", headers=auth).status_code == 403


class TestLiveServerHelper:
    def test_helpers_build_a_group_and_a_token(self, tmp_path: Path) -> None:
        """create_group_with_input and mint_token give a group at version 2 and an EBT_."""
        with start_live_server(
            tmp_path, ingest_url="https://ingest.example.com", event_hooks=HOOKS
        ) as server:
            group = create_group_with_input(server, "web", indexOverride="prod")
            assert (group["configVersion"], group["inputCount"]) == (2, 1)
            assert mint_token(server, group["slug"]).startswith("EBT_")
            preview = server.admin("GET", "/groups/web/preview").text
            assert "https://ingest.example.com" in preview and "index: prod" in preview

    def test_a_server_that_cannot_start_raises_with_its_log(self, tmp_path: Path) -> None:
        """A start-up failure is an error carrying the server's own message."""
        with pytest.raises(RuntimeError, match="did not start"):
            start_live_server(tmp_path, ingest_url="not a url")
