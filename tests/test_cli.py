"""The ``logpulse-agent`` command line as an operator meets it (SPEC §3, §4).

Every command runs as a real subprocess (``python -m logpulse_agent``) with its whole layout
relocated under ``tmp_path`` (``LOGPULSE_CONFIG``, ``LOGPULSE_CONFIG_DIR``/``STATE_DIR``/
``LOG_DIR``), against the reference server over 127.0.0.1 where a control plane is needed. The
few checks that never get past argument parsing use click's ``CliRunner``.

What every failure must look like: exactly one line on stderr, ``logpulse-agent: error: …``,
nothing on stdout, a non-zero exit, nothing written, and no token echoed anywhere.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
from click.testing import CliRunner

from logpulse_agent.cli import main
from tests.agent_harness import AgentProcess, wait_until
from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server

ERROR_PREFIX = "logpulse-agent: error: "
# Enrolment retries an unreachable API 3 times with 1 to 2 s waits: bound it well above that.
UNREACHABLE_BOUND = 20.0


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One reference server for the module; every test makes its own groups and tokens."""
    with start_live_server(tmp_path_factory.mktemp("server")) as srv:
        yield srv


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_group(server: LiveServer, prefix: str = "web", **input_fields: Any) -> dict[str, Any]:
    return create_group_with_input(server, unique(prefix), **input_fields)


def new_host(
    tmp_path: Path,
    api_url: str,
    name: str = "host",
    *,
    extra_env: dict[str, str] | None = None,
    **kwargs: Any,
) -> AgentProcess:
    """An agent host under ``tmp_path/name``; never inherits an enrolment token or a proxy."""
    host = AgentProcess(tmp_path / name, api_url, **kwargs)
    for inherited in (
        "LOGPULSE_ENROL_TOKEN",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        host.env.pop(inherited, None)
    host.env.update(extra_env or {})
    return host


def files_of(host: AgentProcess) -> dict[str, bytes]:
    """Every regular file of the host's config and state directories, with its content."""
    found: dict[str, bytes] = {}
    for directory in (host.config_dir, host.state_dir):
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                found[str(path)] = path.read_bytes()
    return found


def host_identity(host: AgentProcess) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((host.state_dir / "identity.json").read_text())
    return data


def token_uses(server: LiveServer, group: dict[str, Any]) -> list[int]:
    return [t["uses"] for t in server.data("GET", "/enrolment-tokens", group=group["id"])]


def agents_of(server: LiveServer, group: dict[str, Any]) -> list[dict[str, Any]]:
    return list(server.data("GET", "/agents", group=group["id"]))


def assert_one_line_error(
    out: subprocess.CompletedProcess[str], *fragments: str, secrets: tuple[str, ...] = ()
) -> str:
    """A failure: non-zero exit, nothing on stdout, one ``logpulse-agent: error:`` line."""
    assert out.returncode != 0, (out.stdout, out.stderr)
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])
    assert_not_echoed(out, secrets)
    return lines[0]


def assert_not_echoed(out: subprocess.CompletedProcess[str], secrets: tuple[str, ...]) -> None:
    for secret in secrets:
        assert secret and secret not in out.stdout + out.stderr, "a token was echoed"


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Relay:
    """A tiny relay on 127.0.0.1 in front of the reference server, one request per connection.

    With ``tls`` it terminates HTTPS with that (certificate, key) pair — an HTTPS control plane
    with a certificate no trust store knows. A request in absolute form (``POST http://host/p``)
    is what an HTTP proxy receives; the relay forwards it in origin form, so it also serves as
    the ``HTTP_PROXY`` that lets a non-loopback ``http://`` URL stay on 127.0.0.1.
    """

    def __init__(self, upstream: str, tls: tuple[Path, Path] | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream = (str(parts.hostname), int(parts.port or 80))
        self.context: ssl.SSLContext | None = None
        if tls is not None:
            self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.context.load_cert_chain(*tls)
        self.request_lines: list[str] = []
        self.handshake_failures = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with contextlib.ExitStack() as stack:
            stack.enter_context(conn)
            if self.context is not None:
                try:
                    conn = stack.enter_context(self.context.wrap_socket(conn, server_side=True))
                except (ssl.SSLError, OSError):
                    self.handshake_failures += 1
                    return
            with contextlib.suppress(OSError, ValueError):
                self._forward(conn)

    def _forward(self, conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.request_lines.append(request_line)
        method, target, version = request_line.split(" ")
        if "://" in target:
            parts = urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [
            line
            for line in header_lines
            if line.split(":", 1)[0].strip().lower()
            not in ("connection", "proxy-connection", "keep-alive")
        ]
        length = 0
        for line in headers:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk
        forwarded = "\r\n".join([f"{method} {target} {version}", *headers, "Connection: close"])
        with socket.create_connection(self.upstream, timeout=10) as upstream:
            upstream.sendall(forwarded.encode("latin-1") + b"\r\n\r\n" + body)
            while chunk := upstream.recv(65536):
                conn.sendall(chunk)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


@pytest.fixture
def relay_factory() -> Iterator[Any]:
    relays: list[Relay] = []

    def make(upstream: str, tls: tuple[Path, Path] | None = None) -> Relay:
        relays.append(Relay(upstream, tls))
        return relays[-1]

    yield make
    for relay in relays:
        relay.close()


def cli(
    host: AgentProcess, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one ``logpulse-agent`` command for ``host`` (bounded; output kept for the leak scan)."""
    out = subprocess.run(
        [*host.command, *args],
        env={**host.env, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    record = host.root / f"cli-{len(host.outputs)}.out"
    record.write_text(out.stdout + out.stderr)
    host.outputs.append(record)
    return out


def enrol(host: AgentProcess, token: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli(host, "enrol", "--api-url", host.api_url, "--token", token, *extra)


def expire_token(server: LiveServer, token_id: str) -> None:
    """Backdate a token's expiry in the server's database.

    The admin API's shortest ttl is 60 s and the server subprocess has no clock hook; editing
    the one column the expiry check reads is the honest shortcut (SQLite WAL allows a second
    writer, the server reads the row afresh on every enrolment).
    """
    with contextlib.closing(sqlite3.connect(server.db, timeout=10)) as conn, conn:
        conn.execute(
            "UPDATE agent_enrollment_tokens SET expires_at = ? WHERE id = ?",
            (time.time() - 1, token_id),
        )


# --- --version and argument errors -----------------------------------------------------------


class TestArguments:
    def test_version_prints_name_and_version(self) -> None:
        """`--version` prints `logpulse-agent 0.1.0` and exits 0."""
        result = CliRunner().invoke(main, ["--version"])
        assert result.exit_code == 0
        assert result.output == "logpulse-agent 0.1.0\n"

    def test_version_of_the_real_command(self, tmp_path: Path) -> None:
        """The command a host runs says the same, with no settings file present."""
        host = new_host(tmp_path, "http://127.0.0.1:9")
        out = cli(host, "--version")
        assert (out.returncode, out.stdout, out.stderr) == (0, "logpulse-agent 0.1.0\n", "")

    def test_help_survives_python_oo(self, tmp_path: Path) -> None:
        """The release bundle is compiled without docstrings (-OO); `--help` still explains
        every command."""
        host = new_host(tmp_path, "http://127.0.0.1:9")
        out = subprocess.run(
            [sys.executable, "-OO", "-m", "logpulse_agent", "--help"],
            env=host.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        assert "enrols with LogPulse" in out.stdout
        for command, words in {
            "enrol": "Enrol this host",
            "run": "Run the agent daemon",
            "status": "Show what the running daemon",
            "vector-secret": "secret backend",
        }.items():
            commands = out.stdout.split("Commands:")[1].splitlines()
            line = next(ln for ln in commands if ln.strip().startswith(f"{command} "))
            assert words in line, line

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["enrol"], "Missing option '--api-url' (see 'logpulse-agent enrol --help')"),
            (
                ["run", "--poll-interval", "abc"],
                "Invalid value for '--poll-interval': 'abc' is not a valid float "
                "(see 'logpulse-agent run --help')",
            ),
            (["frob"], "No such command 'frob' (see 'logpulse-agent --help')"),
            (
                ["enrol", "--api-url", "https://api.example", "EBT_typedinthewrongplace"],
                "Got unexpected extra argument (EBT_***) (see 'logpulse-agent enrol --help')",
            ),
        ],
        ids=["missing-option", "bad-value", "unknown-command", "stray-token"],
    )
    def test_usage_errors_are_one_line(self, tmp_path: Path, args: list[str], message: str) -> None:
        """Click's usage errors come out as the agent's one line (exit 2), not a usage block,
        and a token typed in the wrong place is masked."""
        host = new_host(tmp_path, "http://127.0.0.1:9")
        out = cli(host, *args)
        assert (out.returncode, out.stdout, out.stderr) == (2, "", f"{ERROR_PREFIX}{message}\n")

    def test_bare_command_prints_the_help(self, tmp_path: Path) -> None:
        host = new_host(tmp_path, "http://127.0.0.1:9")
        out = cli(host)
        assert out.returncode == 2 and "Commands:" in out.stdout + out.stderr

    def test_token_and_token_file_together_are_refused(self, tmp_path: Path) -> None:
        """`--token` and `--token-file` together: one line, exit 2, no token echoed."""
        (tmp_path / "agent.yaml").touch()
        token_file = tmp_path / "bootstrap"
        token_file.write_text("EBT_fromthefile\n")
        result = CliRunner().invoke(
            main,
            [
                "enrol",
                "--api-url",
                "http://127.0.0.1:9",
                "--token",
                "EBT_fromtheflag",
                "--token-file",
                str(token_file),
                "--config",
                str(tmp_path / "agent.yaml"),
                "--config-dir",
                str(tmp_path / "etc"),
                "--state-dir",
                str(tmp_path / "lib"),
            ],
            env={"LOGPULSE_ENROL_TOKEN": None},
        )
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        assert result.stderr == ERROR_PREFIX + "give either --token or --token-file, not both\n"
        assert "EBT_from" not in result.output
        assert not (tmp_path / "etc").exists() and not (tmp_path / "lib").exists()

    def test_missing_token_is_refused(self, tmp_path: Path) -> None:
        """No `--token`, `--token-file` or LOGPULSE_ENROL_TOKEN: one line naming all three."""
        (tmp_path / "agent.yaml").touch()
        result = CliRunner().invoke(
            main,
            ["enrol", "--api-url", "http://127.0.0.1:9", "--config", str(tmp_path / "agent.yaml")],
            env={"LOGPULSE_ENROL_TOKEN": None},
        )
        assert result.exit_code == 2
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith(ERROR_PREFIX)
        for name in ("--token", "--token-file", "LOGPULSE_ENROL_TOKEN"):
            assert name in line


# --- enrol: the successful paths -------------------------------------------------------------


class TestEnrol:
    def test_prints_agent_id_and_next_step_and_stores_identity(
        self, server: LiveServer, tmp_path: Path
    ) -> None:
        """Success: agent id and next step on stdout, exit 0, token 0600, identity on disk."""
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url)
        out = enrol(host, token)
        assert out.returncode == 0, out.stderr
        assert out.stderr == ""
        [agent] = agents_of(server, group)
        assert f"agent id {agent['id']}" in out.stdout
        assert "next:" in out.stdout and "logpulse-agent run" in out.stdout
        token_path = host.config_dir / "agent-token"
        assert token_path.stat().st_mode & 0o777 == 0o600
        assert host.token().startswith("AGT_")
        identity = json.loads((host.state_dir / "identity.json").read_text())
        assert identity["agentId"] == agent["id"]
        assert identity["groupId"] == group["id"]
        assert identity["apiUrl"] == server.url
        assert token_uses(server, group) == [1]
        host.assert_no_secret([token, host.token()])

    def test_token_file(self, server: LiveServer, tmp_path: Path) -> None:
        """`--token-file PATH` reads the bootstrap token from a file."""
        group = new_group(server)
        token = mint_token(server, group["slug"])
        token_file = tmp_path / "bootstrap-token"
        token_file.write_text(token + "\n")
        host = new_host(tmp_path, server.url)
        out = cli(host, "enrol", "--api-url", server.url, "--token-file", str(token_file))
        assert out.returncode == 0, out.stderr
        assert [a["id"] for a in agents_of(server, group)] == [host_identity(host)["agentId"]]
        host.assert_no_secret([token, host.token()])

    def test_token_from_the_environment(self, server: LiveServer, tmp_path: Path) -> None:
        """LOGPULSE_ENROL_TOKEN stands in for `--token`."""
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url)
        out = cli(host, "enrol", "--api-url", server.url, env={"LOGPULSE_ENROL_TOKEN": token})
        assert out.returncode == 0, out.stderr
        assert host_identity(host)["groupId"] == group["id"]
        host.assert_no_secret([token, host.token()])

    def test_group_slug_overrides_the_tokens_group(
        self, server: LiveServer, tmp_path: Path
    ) -> None:
        """`--group SLUG` enrols into that group instead of the token's."""
        token_group, other = new_group(server, "web"), new_group(server, "db")
        token = mint_token(server, token_group["slug"])
        host = new_host(tmp_path, server.url)
        out = enrol(host, token, "--group", other["slug"])
        assert out.returncode == 0, out.stderr
        assert f"in group {other['id']}" in out.stdout
        assert host_identity(host)["groupId"] == other["id"]
        assert agents_of(server, token_group) == []
        assert [a["id"] for a in agents_of(server, other)] == [host_identity(host)["agentId"]]

    def test_already_enrolled_needs_force_and_nothing_changes(
        self, server: LiveServer, tmp_path: Path
    ) -> None:
        """Enrolling an enrolled host without `--force`: error naming the fix, files untouched,
        the second token not consumed."""
        group = new_group(server)
        first, second = mint_token(server, group["slug"]), mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url)
        assert enrol(host, first).returncode == 0
        before = files_of(host)
        agent_id = host_identity(host)["agentId"]
        out = enrol(host, second)
        assert_one_line_error(
            out, "already enrolled", agent_id, "--force", secrets=(first, second, host.token())
        )
        assert files_of(host) == before
        assert sorted(token_uses(server, group)) == [0, 1]
        assert len(agents_of(server, group)) == 1

    def test_force_enrols_again_with_a_new_identity(
        self, server: LiveServer, tmp_path: Path
    ) -> None:
        """With `--force` the host gets a new agent id and a new agent token."""
        group = new_group(server)
        token = mint_token(server, group["slug"], max_uses=2)
        host = new_host(tmp_path, server.url)
        assert enrol(host, token).returncode == 0
        old_id, old_token = host_identity(host)["agentId"], host.token()
        out = enrol(host, token, "--force")
        assert out.returncode == 0, out.stderr
        new_id = host_identity(host)["agentId"]
        assert new_id != old_id and f"agent id {new_id}" in out.stdout
        assert host.token() != old_token and host.token().startswith("AGT_")
        assert (host.config_dir / "agent-token").stat().st_mode & 0o777 == 0o600
        host.assert_no_secret([token, old_token, host.token()])

    def test_failed_force_keeps_the_old_identity(self, server: LiveServer, tmp_path: Path) -> None:
        """A `--force` re-enrolment the server refuses leaves the working identity in place."""
        group = new_group(server)
        token = mint_token(server, group["slug"], max_uses=1)
        host = new_host(tmp_path, server.url)
        assert enrol(host, token).returncode == 0
        before = files_of(host)
        out = enrol(host, token, "--force")
        assert_one_line_error(out, "used up", secrets=(token, host.token()))
        assert files_of(host) == before


# --- enrol: every refusal is one line and writes nothing -------------------------------------


class TestEnrolRefused:
    def refused(
        self,
        host: AgentProcess,
        out: subprocess.CompletedProcess[str],
        *fragments: str,
        secrets: tuple[str, ...] = (),
        before: dict[str, bytes] | None = None,
    ) -> str:
        line = assert_one_line_error(out, *fragments, secrets=secrets)
        assert files_of(host) == (before if before is not None else {}), "enrol wrote a file"
        host.assert_no_secret(secrets)
        return line

    def test_unknown_token(self, server: LiveServer, tmp_path: Path) -> None:
        """A well-formed token the server never minted: 401, "unknown"."""
        host = new_host(tmp_path, server.url)
        bogus = "EBT_" + uuid.uuid4().hex + uuid.uuid4().hex[:11]
        self.refused(
            host,
            enrol(host, bogus),
            "refused the bootstrap token",
            "unknown",
            secrets=(bogus,),
            before=files_of(host),
        )

    def test_expired_token(self, server: LiveServer, tmp_path: Path) -> None:
        """A token past its expiry: 401, "expired"."""
        group = new_group(server)
        minted = server.data("POST", "/enrolment-tokens", {"group": group["id"], "ttlSeconds": 60})
        expire_token(server, minted["id"])
        [shown] = server.data("GET", "/enrolment-tokens", group=group["id"])
        assert shown["state"] == "expired"
        host = new_host(tmp_path, server.url)
        before = files_of(host)
        self.refused(
            host,
            enrol(host, minted["token"]),
            "refused the bootstrap token",
            "expired",
            secrets=(minted["token"],),
            before=before,
        )
        assert token_uses(server, group) == [0]

    def test_exhausted_token(self, server: LiveServer, tmp_path: Path) -> None:
        """maxUses=1 used twice: the second host gets 401, "used up"."""
        group = new_group(server)
        token = mint_token(server, group["slug"], max_uses=1)
        first = new_host(tmp_path, server.url, "first")
        assert enrol(first, token).returncode == 0
        second = new_host(tmp_path, server.url, "second")
        before = files_of(second)
        self.refused(
            second,
            enrol(second, token),
            "refused the bootstrap token",
            "used up",
            secrets=(token, first.token()),
            before=before,
        )
        assert token_uses(server, group) == [1]
        assert len(agents_of(server, group)) == 1

    def test_revoked_token(self, server: LiveServer, tmp_path: Path) -> None:
        """A revoked token: 401, "revoked"."""
        group = new_group(server)
        minted = server.data("POST", "/enrolment-tokens", {"group": group["id"]})
        server.data("POST", f"/enrolment-tokens/{minted['id']}/revoke")
        host = new_host(tmp_path, server.url)
        before = files_of(host)
        self.refused(
            host,
            enrol(host, minted["token"]),
            "refused the bootstrap token",
            "revoked",
            secrets=(minted["token"],),
            before=before,
        )

    def test_unknown_group(self, server: LiveServer, tmp_path: Path) -> None:
        """`--group` naming no group: 404, the slug named, the token's use not consumed."""
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url)
        before = files_of(host)
        self.refused(
            host,
            enrol(host, token, "--group", "no-such-group"),
            "no group",
            "no-such-group",
            secrets=(token,),
            before=before,
        )
        assert token_uses(server, group) == [0]

    def test_unreachable_api(self, tmp_path: Path) -> None:
        """Nothing listening: a bounded few retries, then one line saying unreachable."""
        host = new_host(tmp_path, f"http://127.0.0.1:{free_port()}")
        before = files_of(host)
        token = "EBT_" + uuid.uuid4().hex
        started = time.monotonic()
        out = enrol(host, token)
        elapsed = time.monotonic() - started
        self.refused(
            host, out, "unreachable", "connection refused", secrets=(token,), before=before
        )
        assert elapsed < UNREACHABLE_BOUND

    def test_tls_failure(
        self,
        server: LiveServer,
        tmp_path: Path,
        self_signed: tuple[Path, Path],
        relay_factory: Any,
    ) -> None:
        """An HTTPS control plane with an unknown certificate: one line about the certificate
        naming `ca_bundle`, and no retries (a trust failure does not heal by waiting)."""
        relay = relay_factory(server.url, tls=self_signed)
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, f"https://127.0.0.1:{relay.port}")
        before = files_of(host)
        self.refused(
            host,
            enrol(host, token),
            "tls",
            "certificate verify failed",
            "ca_bundle",
            secrets=(token,),
            before=before,
        )
        wait_until(lambda: relay.handshake_failures >= 1, 5, "the refused handshake")
        time.sleep(0.2)
        assert relay.handshake_failures == 1
        assert relay.request_lines == []
        assert token_uses(server, group) == [0]

    def test_tls_with_the_ca_bundle_succeeds(
        self,
        server: LiveServer,
        tmp_path: Path,
        self_signed: tuple[Path, Path],
        relay_factory: Any,
    ) -> None:
        """The same HTTPS front trusted through LOGPULSE_CA_BUNDLE enrols: the failure above
        was the certificate, nothing else."""
        relay = relay_factory(server.url, tls=self_signed)
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(
            tmp_path,
            f"https://127.0.0.1:{relay.port}",
            extra_env={"LOGPULSE_CA_BUNDLE": str(self_signed[0])},
        )
        out = enrol(host, token)
        assert out.returncode == 0, out.stderr
        assert relay.request_lines == ["POST /api/v1/agents/enrol HTTP/1.1"]
        assert host_identity(host)["apiUrl"] == host.api_url
        host.assert_no_secret([token, host.token()])

    @pytest.mark.parametrize("which", ["state_dir", "config_dir"])
    def test_unwritable_paths(self, server: LiveServer, tmp_path: Path, which: str) -> None:
        """A directory that cannot be created: one line naming it, before the token is spent.

        Tests run as root, where chmod stops nothing; a path under a regular file fails mkdir
        for everyone.
        """
        group = new_group(server)
        token = mint_token(server, group["slug"])
        blocker = tmp_path / "blocker"
        blocker.write_text("a file, not a directory\n")
        target = blocker / "sub"
        variable = {"state_dir": "LOGPULSE_STATE_DIR", "config_dir": "LOGPULSE_CONFIG_DIR"}[which]
        host = new_host(tmp_path, server.url, extra_env={variable: str(target)})
        before = files_of(host)
        self.refused(
            host,
            enrol(host, token),
            "cannot create",
            str(target),
            "not a directory",
            secrets=(token,),
            before=before,
        )
        assert token_uses(server, group) == [0]
        assert agents_of(server, group) == []

    @pytest.mark.parametrize(
        "bad", ["hunter2-not-a-token", "AGT_looksLikeAnAgentToken", "EBT_two words"]
    )
    def test_token_that_is_not_a_bootstrap_token(
        self, server: LiveServer, tmp_path: Path, bad: str
    ) -> None:
        """Anything but one `EBT_…` word is refused locally, without echoing it."""
        host = new_host(tmp_path, server.url)
        before = files_of(host)
        line = self.refused(
            host,
            enrol(host, bad),
            "bootstrap token",
            "EBT_",
            secrets=(bad, bad.split()[-1]),
            before=before,
        )
        assert "hunter2" not in line and "looksLike" not in line

    def test_empty_token_file(self, server: LiveServer, tmp_path: Path) -> None:
        """An empty `--token-file` says the token is empty."""
        token_file = tmp_path / "empty"
        token_file.write_text("\n")
        host = new_host(tmp_path, server.url)
        before = files_of(host)
        out = cli(host, "enrol", "--api-url", server.url, "--token-file", str(token_file))
        self.refused(host, out, "token", before=before)

    def test_missing_token_file(self, server: LiveServer, tmp_path: Path) -> None:
        """A `--token-file` that does not exist: one line naming it."""
        host = new_host(tmp_path, server.url)
        before = files_of(host)
        missing = tmp_path / "nope"
        out = cli(host, "enrol", "--api-url", server.url, "--token-file", str(missing))
        self.refused(host, out, "cannot read token file", str(missing), before=before)

    def test_plain_http_to_a_remote_host_is_refused(
        self, tmp_path: Path, relay_factory: Any
    ) -> None:
        """`http://` to a non-loopback host is refused before any connection is made."""
        relay = relay_factory("http://127.0.0.1:9")
        host = new_host(
            tmp_path,
            "http://logpulse.test",
            extra_env={"HTTP_PROXY": f"http://127.0.0.1:{relay.port}", "NO_PROXY": ""},
        )
        before = files_of(host)
        token = "EBT_" + uuid.uuid4().hex
        self.refused(
            host,
            enrol(host, token),
            "plain http://",
            "allow_insecure_http",
            secrets=(token,),
            before=before,
        )
        assert relay.request_lines == []

    @pytest.mark.parametrize("how", ["flag", "settings file"])
    def test_plain_http_allowed_explicitly_warns(
        self, server: LiveServer, tmp_path: Path, relay_factory: Any, how: str
    ) -> None:
        """With `--allow-insecure-http` (or `allow_insecure_http: true`) it enrols, after one
        warning naming the risk. The remote host is reached through an HTTP proxy on 127.0.0.1
        (HTTP_PROXY is honoured), so nothing leaves the machine."""
        relay = relay_factory(server.url)
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(
            tmp_path,
            "http://logpulse.test",
            extra_env={"HTTP_PROXY": f"http://127.0.0.1:{relay.port}", "NO_PROXY": ""},
        )
        extra = ["--allow-insecure-http"] if how == "flag" else []
        if how == "settings file":
            (host.config_dir / "agent.yaml").write_text("allow_insecure_http: true\n")
        out = enrol(host, token, *extra)
        assert out.returncode == 0, out.stderr
        [warning] = out.stderr.splitlines()
        assert warning.startswith("logpulse-agent: warning: http://logpulse.test")
        assert "plain http" in warning and "unencrypted" in warning
        assert relay.request_lines == ["POST http://logpulse.test/api/v1/agents/enrol HTTP/1.1"]
        assert host_identity(host)["apiUrl"] == "http://logpulse.test"
        host.assert_no_secret([token, host.token()])


# --- settings errors, for every command -------------------------------------------------------

BAD_SETTINGS = {
    "broken yaml": (
        "poll_interval: 5\napi_url: [oops\nlog_dir: /x\n",
        ("not valid YAML at line 3",),
    ),
    "unknown key": ("pol_interval: 5\n", ("'pol_interval'", "unknown setting", "agent.yaml")),
    "bad interval": ("poll_interval: soon\n", ("'poll_interval'", "not a number of seconds")),
    "bad platform": ("platform: windows\n", ("'platform'", "linux, kubernetes")),
}
COMMANDS = {
    "enrol": ["enrol", "--api-url", "{url}", "--token", "{token}"],
    "run": ["run"],
    "status": ["status"],
    "status --json": ["status", "--json"],
    "vector-secret": ["vector-secret"],
}


class TestSettingsErrors:
    @pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
    @pytest.mark.parametrize("command", sorted(COMMANDS))
    def test_bad_settings_file(
        self, server: LiveServer, tmp_path: Path, command: str, case: str
    ) -> None:
        """A broken agent.yaml stops every command with one line saying what is wrong."""
        text, fragments = BAD_SETTINGS[case]
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url)
        # The harness sets the intervals in the environment, which would win over the file.
        for variable in ("LOGPULSE_POLL_INTERVAL", "LOGPULSE_HEARTBEAT_INTERVAL"):
            host.env.pop(variable)
        (host.config_dir / "agent.yaml").write_text(text)
        args = [a.format(url=server.url, token=token) for a in COMMANDS[command]]
        out = cli(host, *args, stdin='{"version": "1.0", "secrets": ["agent_token"]}')
        line = assert_one_line_error(out, *fragments, secrets=(token,))
        if case in ("broken yaml", "unknown key"):  # value errors name the key, not the file
            assert str(host.config_dir / "agent.yaml") in line
        assert token_uses(server, group) == [0]

    @pytest.mark.parametrize(
        ("env", "args", "fragments"),
        [
            ({"LOGPULSE_HEARTBEAT_INTERVAL": "0"}, [], ("'heartbeat_interval'", "positive")),
            ({"LOGPULSE_POLL_INTERVAL": "ten"}, [], ("'poll_interval'", "not a number")),
            ({}, ["--poll-interval", "-1"], ("'poll_interval'", "positive")),
            ({"LOGPULSE_CONFIG": "/nonexistent/agent.yaml"}, [], ("file does not exist",)),
            ({"LOGPULSE_INSTALL_URL": "ftp://get.logpulse.test"}, [], ("'install_url'",)),
        ],
        ids=[
            "env interval zero",
            "env interval word",
            "flag interval",
            "missing file",
            "install url scheme",
        ],
    )
    def test_bad_values_stop_run(
        self,
        server: LiveServer,
        tmp_path: Path,
        env: dict[str, str],
        args: list[str],
        fragments: tuple[str, ...],
    ) -> None:
        """Bad values from the environment or flags stop `run` with one line, before it
        touches anything."""
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url)
        (host.config_dir / "bootstrap-token").write_text(token + "\n")
        before = files_of(host)
        out = cli(host, "run", *args, env=env)
        assert_one_line_error(out, *fragments, secrets=(token,))
        assert files_of(host) == before
        assert token_uses(server, group) == [0]

    def test_missing_ca_bundle_stops_enrol_and_an_enrolled_run(
        self, server: LiveServer, tmp_path: Path
    ) -> None:
        """A `ca_bundle` that does not exist: `enrol` and (once enrolled) `run` stop with one
        line naming the setting. (A daemon still waiting for enrolment keeps retrying: the
        file may yet be provisioned.)"""
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url)
        missing = {"LOGPULSE_CA_BUNDLE": str(tmp_path / "no-ca.pem")}
        out = cli(host, "enrol", "--api-url", server.url, "--token", token, env=missing)
        assert_one_line_error(out, "'ca_bundle'", "no such file", secrets=(token,))
        assert token_uses(server, group) == [0]
        assert enrol(host, token).returncode == 0
        out = cli(host, "run", env=missing)
        assert_one_line_error(out, "'ca_bundle'", "no such file", secrets=(token, host.token()))

    def test_run_with_an_unusable_log_dir_is_one_line_not_a_traceback(self, tmp_path: Path) -> None:
        """Regression: a log_dir that cannot be created crashed `run` with a traceback."""
        blocker = tmp_path / "blocker"
        blocker.write_text("a file\n")
        host = new_host(
            tmp_path, "http://127.0.0.1:9", extra_env={"LOGPULSE_LOG_DIR": str(blocker / "log")}
        )
        out = cli(host, "run")
        assert_one_line_error(out, "cannot write logs to", str(blocker / "log"))
        assert "Traceback" not in out.stderr


# --- status ----------------------------------------------------------------------------------


def status(host: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(host, "status", *args)


def status_json(host: AgentProcess) -> tuple[int, dict[str, Any]]:
    out = status(host, "--json")
    assert out.stderr == ""
    [line] = out.stdout.splitlines()  # one JSON object, one line
    document = json.loads(line)
    assert isinstance(document, dict)
    assert isinstance(document["health"], str) and isinstance(document["problems"], list)
    return out.returncode, document


class TestStatus:
    def test_not_enrolled_exits_2(self, tmp_path: Path) -> None:
        """No identity: exit 2 with the command to enrol; `--json` says not-enrolled."""
        host = new_host(tmp_path, "http://127.0.0.1:9")
        out = status(host)
        assert out.returncode == 2
        assert "not enrolled" in out.stdout and "logpulse-agent enrol" in out.stdout
        code, document = status_json(host)
        assert code == 2
        assert document["health"] == "not-enrolled"
        assert document["problems"] == ["this host is not enrolled"]

    def test_enrolled_but_never_run_is_degraded(self, server: LiveServer, tmp_path: Path) -> None:
        """Enrolled, daemon never started: exit 1, degraded, the reason shown."""
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url)
        assert enrol(host, token).returncode == 0
        out = status(host)
        assert out.returncode == 1
        assert "degraded" in out.stdout
        assert "the agent daemon is not running" in out.stdout
        code, document = status_json(host)
        assert code == 1
        assert document["health"] == "degraded"
        assert "the agent daemon is not running" in document["problems"]
        host.assert_no_secret([token, host.token()])

    def test_healthy_running_agent_exits_0_and_degraded_after_it_stops(
        self, server: LiveServer, tmp_path: Path
    ) -> None:
        """A running agent with Vector up: exit 0, healthy, no problems; once it is stopped
        the same command says degraded."""
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url)
        try:
            assert enrol(host, token).returncode == 0
            host.start()
            wait_until(lambda: host.applied_version() == group["configVersion"], 20, "config")
            wait_until(
                lambda: host.snapshot().get("vector", {}).get("state") == "RUNNING", 10, "Vector"
            )
            wait_until(
                lambda: (host.snapshot().get("controlPlane") or {}).get("lastHeartbeatAt"),
                10,
                "a heartbeat",
            )
            code, document = status_json(host)
            assert (code, document["health"], document["problems"]) == (0, "healthy", [])
            assert document["identity"]["agentId"] == host_identity(host)["agentId"]
            assert document["config"]["appliedVersion"] == group["configVersion"]
            assert document["vector"]["state"] == "RUNNING"
            text = status(host)
            assert text.returncode == 0 and "healthy" in text.stdout
            assert "RUNNING" in text.stdout
            assert host.terminate() == 0
            code, document = status_json(host)
            assert code == 1 and "the agent daemon is not running" in document["problems"]
            host.assert_no_secret([token, host.token()])
        finally:
            host.close()


# --- vector-secret ---------------------------------------------------------------------------


def request(*keys: str, version: str = "1.0") -> str:
    return json.dumps({"version": version, "secrets": list(keys)})


class TestVectorSecret:
    @pytest.fixture
    def host(self, tmp_path: Path) -> AgentProcess:
        host = new_host(tmp_path, "http://127.0.0.1:9")
        token = "AGT_" + uuid.uuid4().hex + uuid.uuid4().hex[:11]
        (host.config_dir / "agent-token").write_text(token + "\n")
        (host.config_dir / "agent-token").chmod(0o600)
        return host

    @pytest.mark.parametrize("version", ["1.0", "1.1"])
    def test_returns_the_token_from_the_token_file(self, host: AgentProcess, version: str) -> None:
        """Vector's request on stdin → the token from `<config_dir>/agent-token`, exit 0."""
        out = cli(host, "vector-secret", stdin=request("agent_token", version=version))
        assert (out.returncode, out.stderr) == (0, "")
        assert json.loads(out.stdout) == {"agent_token": {"value": host.token(), "error": None}}

    def test_token_file_flag(self, host: AgentProcess, tmp_path: Path) -> None:
        """`--token-file` points at another file (what the agent declares to Vector)."""
        other = tmp_path / "elsewhere"
        other.write_text("AGT_another\n")
        out = cli(host, "vector-secret", "--token-file", str(other), stdin=request("agent_token"))
        assert out.returncode == 0
        assert json.loads(out.stdout)["agent_token"] == {"value": "AGT_another", "error": None}

    def test_unknown_key_gets_an_error_entry(self, host: AgentProcess) -> None:
        """Another key gets `value: null` and an error naming the one key provided."""
        out = cli(host, "vector-secret", stdin=request("agent_token", "db_password"))
        assert out.returncode == 0
        answer = json.loads(out.stdout)
        assert answer["agent_token"] == {"value": host.token(), "error": None}
        assert answer["db_password"]["value"] is None
        assert "unknown secret key 'db_password'" in answer["db_password"]["error"]

    def test_no_token_file_gets_an_error_entry_naming_the_fix(self, tmp_path: Path) -> None:
        """Not enrolled: the key's error says so (Vector logs it), no crash."""
        host = new_host(tmp_path, "http://127.0.0.1:9")
        out = cli(host, "vector-secret", stdin=request("agent_token"))
        assert out.returncode == 0
        entry = json.loads(out.stdout)["agent_token"]
        assert entry["value"] is None and "enrol" in entry["error"]

    @pytest.mark.parametrize(
        ("stdin", "reason"),
        [
            ("", "not JSON"),
            ("agent_token please", "not JSON"),
            ("[]", "JSON object"),
            ('{"version": "9.9", "secrets": ["agent_token"]}', "unsupported protocol version"),
            ('{"version": "1.0", "secrets": "agent_token"}', "'secrets' must be a list"),
        ],
        ids=["empty", "text", "array", "version", "secrets type"],
    )
    def test_malformed_request_is_a_clear_error(
        self, host: AgentProcess, stdin: str, reason: str
    ) -> None:
        """A malformed request: non-zero exit, one stderr line with the reason, `{}` on
        stdout so Vector reports the key as missing — and no token anywhere."""
        out = cli(host, "vector-secret", stdin=stdin)
        assert out.returncode != 0
        [line] = out.stderr.splitlines()
        assert line.startswith("logpulse-agent vector-secret: ") and reason in line
        assert out.stdout.strip() == "{}"
        assert_not_echoed(out, (host.token(),))


# --- run: enrolling by itself, or waiting and saying so once ---------------------------------


WAITING = "agent.waiting_for_enrolment"


class TestRunEnrolment:
    def test_waits_says_so_once_and_stops_on_sigterm(self, tmp_path: Path) -> None:
        """No enrolment, no token: one log line saying what it waits for, however many checks
        pass (0.1 s apart); SIGTERM ends it with exit 0."""
        host = new_host(tmp_path, "http://127.0.0.1:9", poll_interval=0.1)
        try:
            host.start()
            wait_until(lambda: WAITING in host.output(), 20, "the waiting line")
            time.sleep(1.5)  # ~15 checks at 0.1 s
            assert host.proc is not None and host.proc.poll() is None
            output = host.output()
            assert output.count(WAITING) == 1, output
            assert "no bootstrap token" in output and "bootstrap-token" in output
            assert (host.log_dir / "agent.log").read_text().count(WAITING) == 1
            assert status(host).returncode == 2
            assert host.terminate(10) == 0
            assert not (host.config_dir / "agent-token").exists()
        finally:
            host.close()

    def test_enrols_from_a_bootstrap_token_file_dropped_while_waiting(
        self, server: LiveServer, tmp_path: Path
    ) -> None:
        """Provisioning drops `bootstrap-token` into config_dir later: the waiting daemon
        notices at its next check, enrols and starts Vector on the group's config."""
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url, poll_interval=0.1)
        try:
            host.start()
            wait_until(lambda: WAITING in host.output(), 20, "the waiting line")
            drop = host.config_dir / "bootstrap-token"
            drop.write_text(token + "\n")
            drop.chmod(0o640)
            wait_until(lambda: host.applied_version() == group["configVersion"], 20, "config")
            wait_until(lambda: host.events("started"), 10, "Vector to start")
            assert [a["id"] for a in agents_of(server, group)] == [host_identity(host)["agentId"]]
            assert (host.config_dir / "agent-token").stat().st_mode & 0o777 == 0o600
            assert host.output().count(WAITING) == 1
            assert host.terminate() == 0
            host.assert_no_secret([token, host.token()])
        finally:
            host.close()

    def test_enrols_from_the_environment_token(self, server: LiveServer, tmp_path: Path) -> None:
        """LOGPULSE_ENROL_TOKEN: `run` enrols by itself without waiting, and the bootstrap
        token never reaches Vector's environment."""
        group = new_group(server)
        token = mint_token(server, group["slug"])
        host = new_host(tmp_path, server.url, poll_interval=0.1)
        try:
            host.start(env={"LOGPULSE_ENROL_TOKEN": token})
            wait_until(lambda: host.applied_version() == group["configVersion"], 20, "config")
            wait_until(lambda: host.events("started"), 10, "Vector to start")
            assert WAITING not in host.output()
            vector = psutil.Process(host.events("started")[-1]["pid"])
            assert "LOGPULSE_ENROL_TOKEN" not in vector.environ()
            assert token not in json.dumps(vector.environ())
            assert host.terminate() == 0
            host.assert_no_secret([token, host.token()])
        finally:
            host.close()

    def test_refused_token_is_logged_once_and_the_daemon_keeps_waiting(
        self, server: LiveServer, tmp_path: Path
    ) -> None:
        """A bootstrap token the server refuses: one error line however often it retries, no
        identity, still running, SIGTERM → 0."""
        group = new_group(server)
        minted = server.data("POST", "/enrolment-tokens", {"group": group["id"]})
        server.data("POST", f"/enrolment-tokens/{minted['id']}/revoke")
        host = new_host(tmp_path, server.url, poll_interval=0.05)  # retries every 1.5 s
        try:
            host.start(env={"LOGPULSE_ENROL_TOKEN": minted["token"]})
            wait_until(lambda: "agent.enrol_failed" in host.output(), 20, "the refusal")
            time.sleep(3.5)  # at least two more attempts
            assert host.proc is not None and host.proc.poll() is None
            output = host.output()
            assert output.count("agent.enrol_failed") == 1, output
            assert "revoked" in output
            assert not (host.state_dir / "identity.json").exists()
            assert host.terminate(10) == 0
            host.assert_no_secret([minted["token"]])
        finally:
            host.close()
