"""``logpulse-server`` admin commands, run with CliRunner against a live server (the data-plane
ones too: HEALTH and EVENTS/s columns, ``agents health``, ``tail``, ``ingest …``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from logpulse_agent.server import admin_client, cli_config
from logpulse_agent.server.admin_client import (
    ago,
    health_cell,
    parse_duration,
    parse_option,
    rate_cell,
    table,
)
from logpulse_agent.server.cli import main
from logpulse_agent.server.cli_ingest import event_line
from tests.live_server import LiveServer, start_live_server
from tests.server.harness import beat
from tests.server.spec_check import SpecChecker


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    hooks = {"response": [SpecChecker().hook]}
    with start_live_server(tmp_path_factory.mktemp("cli"), event_hooks=hooks) as live:
        yield live


@pytest.fixture(autouse=True)
def checked_cli_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's own HTTP client checks every answer against the OpenAPI document too."""
    checker = SpecChecker()
    original = admin_client.AdminClient

    def client(url: str, token: str | None) -> admin_client.AdminClient:
        return original(url, token, event_hooks={"response": [checker.hook]})

    monkeypatch.setattr(admin_client, "AdminClient", client)
    monkeypatch.setattr(cli_config, "AdminClient", client)


@pytest.fixture
def run(server: LiveServer) -> Any:
    runner = CliRunner()
    env = {"LOGPULSE_SERVER_URL": server.url, "LOGPULSE_ADMIN_TOKEN": server.admin_token}

    def invoke(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(main, list(args), env=env)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def enrol(server: LiveServer, group: str, hostname: str = "web-1") -> dict[str, Any]:
    token = server.data("POST", "/enrolment-tokens", {"group": group})["token"]
    body = {
        "bootstrapToken": token,
        "hostname": hostname,
        "platform": "linux",
        "agentVersion": "0.4.1",
        "vectorVersion": "0.40.0",
    }
    data: dict[str, Any] = httpx.post(server.url + "/api/v1/agents/enrol", json=body).json()["data"]
    return data


class TestGroupCommands:
    def test_create_list_rename_delete(self, run: Any) -> None:
        """A group goes through its whole life from the command line."""
        created = run("group", "create", "Edge Nodes")
        assert "created group edge-nodes" in created.stdout
        assert "at config version 1" in created.stdout
        listed = run("group", "list").stdout
        assert listed.splitlines()[0].split() == [
            "SLUG",
            "NAME",
            "VERSION",
            "INPUTS",
            "AGENTS",
            "ID",
        ]
        assert "edge-nodes" in listed
        renamed = run("group", "rename", "edge-nodes", "Edge")
        assert "'Edge', config version 2" in renamed.stdout
        assert "deleted group edge-nodes" in run("group", "delete", "edge-nodes").stdout
        assert "edge-nodes" not in run("group", "list").stdout

    def test_json_flag_prints_the_api_data(self, run: Any) -> None:
        """--json prints the data the API answered."""
        import json

        run("group", "create", "json-group")
        data = json.loads(run("group", "list", "--json").stdout)
        assert "json-group" in [g["slug"] for g in data]


class TestInputCommands:
    def test_add_edit_disable_enable_remove_and_preview(self, run: Any, server: LiveServer) -> None:
        """Inputs are managed by id; each change shows in the preview and the version."""
        run("group", "create", "inputs")
        added = run(
            "input",
            "add",
            "inputs",
            "syslog",
            "fw",
            "-o",
            "mode=udp",
            "-o",
            "address=0.0.0.0:514",
            "--index",
            "network",
            "--source",
            "prod-fw1",
        )
        assert "added syslog input 'fw'" in added.stdout
        input_id = added.stdout.split("(")[1].split(",")[0]
        preview = run("preview", "inputs")
        assert "type: syslog" in preview.stdout and "index: network" in preview.stdout
        assert "version 2" in preview.stderr
        assert "sourcetype: agent_syslog" in preview.stdout
        run("input", "edit", input_id, "--sourcetype", "cisco_asa", "-o", "max_length=4096")
        edited = server.data("GET", f"/inputs/{input_id}")
        assert edited["sourcetypeOverride"] == "cisco_asa"
        assert edited["options"] == {"mode": "udp", "address": "0.0.0.0:514", "max_length": 4096}
        assert "disabled" in run("input", "disable", input_id).stdout
        assert run("preview", "inputs").stdout.strip() == "{}"
        assert "enabled" in run("input", "enable", input_id).stdout
        listed = run("input", "list", "inputs").stdout
        assert "fw" in listed and "cisco_asa" in listed
        assert f"removed input {input_id}" in run("input", "remove", input_id).stdout
        assert server.data("GET", "/groups/inputs")["configVersion"] == 6

    def test_preview_is_byte_identical_to_the_api(self, run: Any, server: LiveServer) -> None:
        """preview prints the exact bytes of the admin preview."""
        run("group", "create", "exact")
        run("input", "add", "exact", "demo_logs", "demo", "-o", "format=json")
        api = server.admin("GET", "/groups/exact/preview", platform="kubernetes").content
        printed = run("preview", "exact", "--platform", "kubernetes").stdout_bytes
        assert printed == api + (b"" if api.endswith(b"\n") else b"\n")

    def test_invalid_options_fail_with_the_servers_message(self, run: Any) -> None:
        """A refused input prints the server's one-line reason and exits 1."""
        run("group", "create", "bad-inputs")
        result = run("input", "add", "bad-inputs", "file", "logs", ok=False)
        assert result.exit_code == 1
        assert "include" in result.stderr and "HTTP 422" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1

    def test_edit_without_changes_is_a_usage_error(self, run: Any) -> None:
        """input edit with nothing to change says so."""
        result = run("input", "edit", "whatever", ok=False)
        assert result.exit_code == 2
        assert "nothing to change" in result.stderr


class TestTokenCommands:
    def test_mint_prints_only_the_token_on_stdout(self, run: Any, server: LiveServer) -> None:
        """token mint prints the EBT_ token alone on stdout, details on stderr."""
        run("group", "create", "tokens")
        minted = run(
            "token", "mint", "tokens", "--ttl", "2h", "--max-uses", "3", "--label", "rack 4"
        )
        token = minted.stdout.strip()
        assert token.startswith("EBT_") and "\n" not in token
        assert "3 uses" in minted.stderr and "not shown again" in minted.stderr
        listed = run("token", "list", "tokens").stdout
        assert "0/3" in listed and "rack 4" in listed and token not in listed
        token_id = server.data("GET", "/enrolment-tokens", group="tokens")[0]["id"]
        assert f"revoked enrolment token {token_id}" in run("token", "revoke", token_id).stdout
        assert "revoked" in run("token", "list", "tokens").stdout


class TestAgentCommands:
    def test_agents_list_is_a_readable_table(self, run: Any, server: LiveServer) -> None:
        """Host, group, online with last seen, versions, applied/target, last error."""
        run("group", "create", "fleet")
        run("input", "add", "fleet", "demo_logs", "demo", "-o", "format=json")
        agent = enrol(server, "fleet", "web-7.example.com")
        error = {"configVersion": 2, "message": "vector validate failed"}
        httpx.post(
            f"{server.url}/api/v1/agents/{agent['agentId']}/heartbeat",
            json=beat(appliedConfigVersion=1, configError=error),
            headers={"Authorization": f"Bearer {agent['agentToken']}"},
        )
        listed = run("agents", "list", "--group", "fleet").stdout
        header, row = listed.splitlines()
        assert header.split()[:6] == ["HOST", "GROUP", "STATUS", "AGENT", "VECTOR", "CONFIG"]
        assert row.startswith("web-7.example.com  fleet")
        assert "online (" in row and "s ago)" in row
        assert "0.4.1" in row and "0.40.0" in row and "1/2" in row
        assert "v2: vector validate failed" in row

    def test_a_hostile_hostname_cannot_reach_the_terminal(
        self, run: Any, server: LiveServer
    ) -> None:
        """Agent-supplied strings are printed with control characters escaped: no escape
        sequence (CSI, OSC, 8-bit CSI), no bell, no forged line, no bidi override."""
        run("group", "create", "hostile")
        evil = "evil\x1b[2J\x1b]0;pwned\x07\u009b31m\nforged-row\r\x7f\u202etxt.exe"
        agent = enrol(server, "hostile", evil)
        error = {"configVersion": 1, "message": "boom\x1b[31m red"}
        httpx.post(
            f"{server.url}/api/v1/agents/{agent['agentId']}/heartbeat",
            json=beat(vectorVersion="0.40\x1b[5m", configError=error),
            headers={"Authorization": f"Bearer {agent['agentToken']}"},
        )
        outputs = [
            run("agents", "list", "--group", "hostile").stdout,
            run("agents", "move", agent["agentId"], "hostile").stdout,
            run("agents", "revoke", agent["agentId"]).stdout,
        ]
        for out in outputs:
            assert not any(c in out for c in "\x1b\x07\x9b\r\x7f\u202e"), repr(out)
            assert "evil\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\x0aforged-row" in out
        assert len(outputs[0].splitlines()) == 2  # the header and one row, nothing forged
        assert "0.40\\x1b[5m" in outputs[0] and "boom\\x1b[31m red" in outputs[0]
        as_json = run("agents", "list", "--group", "hostile", "--json").stdout
        assert "\x1b" not in as_json and "\\u001b" in as_json

    def test_move_upgrade_actions_and_revoke(self, run: Any, server: LiveServer) -> None:
        """move, upgrade (many agents), actions list/cancel and revoke."""
        run("group", "create", "blue")
        run("group", "create", "green")
        a = enrol(server, "blue", "a")["agentId"]
        b = enrol(server, "blue", "b")["agentId"]
        moved = run("agents", "move", a, "green").stdout
        assert "to group green" in moved
        queued = run("upgrade", a, b, "--version", "0.4.2", "--deadline", "1h").stdout
        assert queued.count("queued upgrade to 0.4.2") == 2
        listed = run("actions", "list", "--agent", a).stdout
        assert "upgrade_agent" in listed and "pending" in listed and "0.4.2" in listed
        action_id = server.data("GET", "/actions", agentId=a)[0]["id"]
        assert f"cancelled action {action_id}" in run("actions", "cancel", action_id).stdout
        again = run("actions", "cancel", action_id, ok=False)
        assert again.exit_code == 1 and "only pending actions cancel" in again.stderr
        assert "its next request gets 403" in run("agents", "revoke", b).stdout
        assert "revoked" in run("agents", "list", "--status", "revoked").stdout

    def test_upgrade_with_a_bad_version_is_refused(self, run: Any, server: LiveServer) -> None:
        """A target version that is not a version is refused by the server, nothing queued."""
        run("group", "create", "strict")
        agent = enrol(server, "strict")["agentId"]
        result = run("upgrade", agent, "--version", "1.2; reboot", ok=False)
        assert result.exit_code == 1 and "targetVersion" in result.stderr
        assert server.data("GET", "/actions", agentId=agent) == []


class TestFailures:
    def test_unknown_group_is_one_line_and_exit_1(self, run: Any) -> None:
        """The server's 404 message is printed as one line."""
        result = run("group", "delete", "no-such-group", ok=False)
        assert result.exit_code == 1
        assert result.stderr.strip() == "Error: no group with id or slug 'no-such-group' (HTTP 404)"

    def test_missing_admin_token_is_explained(self, server: LiveServer) -> None:
        """Without a token the command says how to give one."""
        result = CliRunner().invoke(
            main, ["group", "list", "--url", server.url], env={"LOGPULSE_ADMIN_TOKEN": ""}
        )
        assert result.exit_code == 1
        assert "LOGPULSE_ADMIN_TOKEN" in result.stderr

    def test_wrong_admin_token_is_refused(self, server: LiveServer) -> None:
        """A wrong token prints the server's 401 message."""
        result = CliRunner().invoke(
            main, ["group", "list", "--url", server.url, "--admin-token", "nope"]
        )
        assert result.exit_code == 1 and "HTTP 401" in result.stderr

    def test_unreachable_server_is_one_line(self, tmp_path: Path) -> None:
        """Nothing listening: one line naming the URL."""
        result = CliRunner().invoke(
            main, ["agents", "list", "--url", "http://127.0.0.1:9", "--admin-token", "x"]
        )
        assert result.exit_code == 1
        assert "cannot reach logpulse-server at http://127.0.0.1:9" in result.stderr
        assert "Traceback" not in result.output


class TestHelpers:
    def test_printable_escapes_terminal_controls(self) -> None:
        assert admin_client.printable("a\x1b[1mb\x00\u0085\u2028\u2066") == (
            "a\\x1b[1mb\\x00\\x85\\u2028\\u2066"
        )
        assert admin_client.printable("plain ünïcode ✓") == "plain ünïcode ✓"
        assert table(("H",), [["x\ny"]]) == "H\nx\\x0ay"

    def test_durations(self) -> None:
        """90, 90s, 30m, 24h and 7d are seconds; anything else is refused."""
        assert [parse_duration(t) for t in ("90", "90s", "30m", "24h", "7d")] == [
            90,
            90,
            1800,
            86400,
            604800,
        ]
        for bad in ("soon", "\u0663\u0660m", "1 0m"):
            with pytest.raises(Exception, match="not a duration"):
                parse_duration(bad)

    def test_options_are_json_when_they_parse(self) -> None:
        """port=514 is a number, a list parses, plain text stays text."""
        assert parse_option("port=514") == ("port", 514)
        assert parse_option('include=["/var/log/*.log"]') == ("include", ["/var/log/*.log"])
        assert parse_option("mode=udp") == ("mode", "udp")

    def test_ago_and_table(self) -> None:
        """Relative times and padded columns."""
        from datetime import datetime, timezone

        now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
        assert ago("2025-01-01T11:59:18Z", now) == "42s ago"
        assert ago("2025-01-01T09:00:00Z", now) == "3h ago"
        assert ago(None, now) == "never"
        assert table(("A", "BB"), [["x", None]]) == "A  BB\nx  -"


def send_events(server: LiveServer, token: str, *messages: str, host: str = "web-1") -> None:
    body = "".join(
        json.dumps({"event": {"message": m}, "host": host, "sourcetype": "agent_demo_logs",
                    "source": "logpulse-agent", "index": "main"})
        for m in messages
    )  # fmt: skip
    response = httpx.post(
        server.url + "/services/collector/event",
        content=body,
        headers={"Authorization": f"Splunk {token}"},
    )
    assert response.status_code == 200, response.text


def heartbeat(server: LiveServer, agent: dict[str, Any], **fields: Any) -> None:
    response = httpx.post(
        f"{server.url}/api/v1/agents/{agent['agentId']}/heartbeat",
        json=beat(**fields),
        headers={"Authorization": f"Bearer {agent['agentToken']}"},
    )
    assert response.status_code == 200, response.text


class TestAgentsList:
    def test_health_and_events_per_second_columns(self, run: Any, server: LiveServer) -> None:
        """HEALTH shows state and reason; EVENTS/s what the ingest got ("-": nothing yet)."""
        run("group", "create", "hc")
        sick = enrol(server, "hc", "a-sick")
        quiet = enrol(server, "hc", "b-quiet")
        reason = "sink out_3f2a: 41 request errors in 30 s (HTTP 403)"
        since = "2025-06-15T15:00:00Z"
        heartbeat(server, sick, health={"state": "degraded", "reason": reason, "since": since})
        heartbeat(server, quiet)
        send_events(server, sick["agentToken"], *(f"m{i}" for i in range(30)))
        listed = run("agents", "list", "--group", "hc").stdout.splitlines()
        header = listed[0]
        assert "HEALTH" in header and "EVENTS/s" in header
        assert header.index("RUNNING") < header.index("HEALTH") < header.index("EVENTS/s")
        sick_row, quiet_row = listed[1], listed[2]
        assert f"degraded: {reason}"[:59] in sick_row
        rate = sick_row[header.index("EVENTS/s") :].split()[0]
        assert float(rate) > 0
        assert quiet_row[header.index("HEALTH") :].split()[:2] == ["healthy", "-"]

    def test_health_filter(self, run: Any, server: LiveServer) -> None:
        """--health degraded lists only agents whose last report was degraded."""
        run("group", "create", "hf")
        a = enrol(server, "hf", "hf-bad")
        enrol(server, "hf", "hf-silent")
        since = "2025-06-15T15:00:00Z"
        heartbeat(server, a, health={"state": "degraded", "reason": "x", "since": since})
        degraded = run("agents", "list", "--group", "hf", "--health", "degraded").stdout
        assert "hf-bad" in degraded and "hf-silent" not in degraded
        unknown = run("agents", "list", "--group", "hf", "--health", "unknown").stdout
        assert "hf-silent" in unknown and "hf-bad" not in unknown

    def test_agents_health_shows_transitions(self, run: Any, server: LiveServer) -> None:
        """`agents health ID` lists the transitions, newest first."""
        run("group", "create", "hh")
        a = enrol(server, "hh", "hh-1")
        since = "2025-06-15T15:00:00Z"
        assert run("agents", "health", a["agentId"]).stdout.strip() == "no health reported"
        heartbeat(server, a, health={"state": "healthy", "reason": None, "since": since})
        heartbeat(server, a, health={"state": "failed", "reason": "vector down", "since": since})
        lines = run("agents", "health", a["agentId"]).stdout.splitlines()
        assert lines[0].split() == ["AT", "STATE", "SINCE", "REASON"]
        assert "failed" in lines[1] and "vector down" in lines[1]
        assert "healthy" in lines[2]


class TestTail:
    def test_tail_prints_the_groups_recent_events(self, run: Any, server: LiveServer) -> None:
        """One line per event: time, host, index/sourcetype/source, the event."""
        run("group", "create", "tl")
        a = enrol(server, "tl", "tl-1")
        send_events(server, a["agentToken"], "first", "second", "third")
        lines = run("tail", "tl", "-n", "2").stdout.splitlines()
        assert len(lines) == 2
        assert " web-1 main/agent_demo_logs/logpulse-agent " in lines[0]
        assert lines[0].endswith('{"message": "second"}')
        assert lines[1].endswith('{"message": "third"}')
        as_json = [json.loads(x) for x in run("tail", "tl", "--json").stdout.splitlines()]
        assert [e["event"]["message"] for e in as_json] == ["first", "second", "third"]

    def test_follow_prints_only_new_events(self, run: Any, server: LiveServer) -> None:
        """--follow polls with the last seq seen, so no event is printed twice."""
        run("group", "create", "tf")
        a = enrol(server, "tf", "tf-1")
        send_events(server, a["agentToken"], "one", "two")
        out = run("tail", "tf", "-f", "--polls", "3", "--interval", "0.1").stdout.splitlines()
        assert [line.rsplit(" ", 1)[-1] for line in out] == ['"one"}', '"two"}']

    def test_unknown_group(self, run: Any) -> None:
        result = run("tail", "nope", ok=False)
        assert result.exit_code == 1 and "nope" in result.stderr

    def test_events_cannot_drive_the_terminal(self) -> None:
        """Escape sequences and newlines in an event are shown, not obeyed."""
        line = event_line(
            {
                "receivedAt": "2025-06-15T15:00:00Z",
                "host": "h\x1b[2J",
                "agentId": "a" * 32,
                "index": "main",
                "sourcetype": "s",
                "source": "x",
                "event": "evil\x1b]0;title\x07\nsecond line",
            }
        )
        assert "\x1b" not in line and "\n" not in line and "\\x1b" in line


class TestIngestCommands:
    def test_status_pause_resume(self, run: Any, server: LiveServer) -> None:
        """pause answers 503 to sinks until resume; status says so."""
        run("group", "create", "ip")
        a = enrol(server, "ip", "ip-1")
        paused = run("ingest", "pause", "--for", "5m").stdout
        assert "paused until" in paused and "answering 503" in paused
        response = httpx.post(
            server.url + "/services/collector/event",
            content=b'{"event": "x"}',
            headers={"Authorization": f"Splunk {a['agentToken']}"},
        )
        assert response.status_code == 503
        assert "server_is_busy=" in run("ingest", "status").stdout
        assert run("ingest", "resume").stdout.startswith("ingest accepting")
        bad = run("ingest", "pause", "--for", "2d", ok=False)
        assert bad.exit_code == 2 and "--for" in bad.output

    def test_totals(self, run: Any, server: LiveServer) -> None:
        """Totals by the chosen dimensions, as a table."""
        run("group", "create", "it")
        a = enrol(server, "it", "it-1")
        send_events(server, a["agentToken"], "x", "y")
        lines = run("ingest", "totals", "--group", "it", "--by", "sourcetype").stdout.splitlines()
        assert lines[0].split() == ["SOURCETYPE", "EVENTS", "BYTES", "LAST", "EVENT"]
        assert lines[1].split()[:2] == ["agent_demo_logs", "2"]
        empty = run("ingest", "totals", "--agent", enrol(server, "it", "it-2")["agentId"]).stdout
        assert empty.strip() == "no events counted"


class TestCells:
    def test_health_cell(self) -> None:
        assert health_cell(None) == "-"
        assert health_cell({"state": "healthy", "reason": None}) == "healthy"
        long = health_cell({"state": "degraded", "reason": "r" * 100})
        assert len(long) == 60 and long.endswith("…")

    def test_rate_cell(self) -> None:
        assert rate_cell(None) == "-"
        assert rate_cell({"events": 0, "eventsPerSecond": 0}) == "-"
        assert rate_cell({"events": 12, "eventsPerSecond": 0}) == "0.0"
        assert rate_cell({"events": 12, "eventsPerSecond": 41.25}) == "41.2"
