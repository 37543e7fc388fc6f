"""`logpulse-agent vector-secret`: Vector's exec secret backend for the agent token."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from logpulse_agent.errors import ValidationFailed
from logpulse_agent.vector import commands as cli
from logpulse_agent.vector.options import render_global_options
from logpulse_agent.vector.secret_backend import (
    MalformedRequest,
    main,
    read_token,
    respond,
)
from tests.standin import MINIMAL_CONFIG, events_named, install_standin

TOKEN = "AGT_x8Yc-0123456789abcdefghijklmnopqrstuv"


def request(*keys: str, version: str = "1.0") -> bytes:
    return json.dumps({"version": version, "secrets": list(keys)}).encode()


class TestRespond:
    def test_answers_the_agent_token(self) -> None:
        """`agent_token` gets the token with a null error."""
        answer = json.loads(respond(request("agent_token"), TOKEN))
        assert answer == {"agent_token": {"value": TOKEN, "error": None}}

    def test_unknown_keys_get_an_error_entry(self) -> None:
        """Any other key gets an error that names the one key we provide."""
        answer = json.loads(respond(request("agent_token", "db_password"), TOKEN))
        assert answer["agent_token"]["value"] == TOKEN
        assert answer["db_password"]["value"] is None
        assert "only 'agent_token'" in answer["db_password"]["error"]

    def test_missing_token_is_an_error_entry_with_the_reason(self) -> None:
        """Without a token the entry carries the reason instead of a value."""
        answer = json.loads(respond(request("agent_token"), None, "not enrolled"))
        assert answer == {"agent_token": {"value": None, "error": "not enrolled"}}

    def test_accepts_protocol_1_1(self) -> None:
        """Protocol 1.1 adds type/config fields; they are accepted and ignored."""
        body = json.dumps({"version": "1.1", "secrets": ["agent_token"], "type": "x", "config": {}})
        assert json.loads(respond(body.encode(), TOKEN))["agent_token"]["value"] == TOKEN

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"not json", "not JSON"),
            (b"[]", "JSON object"),
            (b'{"version": "2.0", "secrets": []}', "unsupported protocol version"),
            (b'{"version": "1.0", "secrets": "agent_token"}', "list of key names"),
            (b'{"version": "1.0"}', "list of key names"),
        ],
    )
    def test_malformed_requests_are_refused_clearly(self, body: bytes, reason: str) -> None:
        """Anything but a Vector request raises MalformedRequest saying what is wrong."""
        with pytest.raises(MalformedRequest, match=reason):
            respond(body, TOKEN)


class TestReadToken:
    def test_reads_and_strips_the_token(self, tmp_path: Path) -> None:
        """The file's content without the trailing newline is the token."""
        (tmp_path / "agent-token").write_text(TOKEN + "\n")
        assert read_token(tmp_path / "agent-token") == (TOKEN, "")

    def test_missing_or_empty_file_explains_itself(self, tmp_path: Path) -> None:
        """A missing or empty token file gives None and a reason naming the file."""
        token, reason = read_token(tmp_path / "agent-token")
        assert token is None and "does not exist" in reason and "enrol" in reason
        (tmp_path / "agent-token").write_text("\n")
        token, reason = read_token(tmp_path / "agent-token")
        assert token is None and "is empty" in reason


class TestMain:
    def test_serves_one_request(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """main() answers on stdout, exits 0 and writes nothing on stderr."""
        (tmp_path / "agent-token").write_text(TOKEN)
        out = io.BytesIO()
        assert main(tmp_path / "agent-token", io.BytesIO(request("agent_token")), out) == 0
        assert json.loads(out.getvalue())["agent_token"]["value"] == TOKEN
        assert capsys.readouterr().err == ""

    def test_bad_request_exits_1_with_empty_answer(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A malformed request gets `{}` on stdout and the reason on stderr, never the token."""
        (tmp_path / "agent-token").write_text(TOKEN)
        out = io.BytesIO()
        assert main(tmp_path / "agent-token", io.BytesIO(b"garbage"), out) == 1
        assert json.loads(out.getvalue()) == {}
        err = capsys.readouterr().err
        assert "not JSON" in err and TOKEN not in err


class TestThroughVector:
    """The stand-in resolves SECRET[logpulse.agent_token] by running this module."""

    def files(self, tmp_path: Path, token_file: Path) -> list[Path]:
        command = [sys.executable, "-m", "logpulse_agent.vector.secret_backend"]
        options = tmp_path / "options.yaml"
        data_dir = tmp_path / "data"
        data_dir.mkdir(exist_ok=True)
        options.write_text(
            render_global_options(data_dir, [*command, "--token-file", str(token_file)])
        )
        config = tmp_path / "vector.yaml"
        sink = "type: http\n    auth:\n      strategy: bearer\n"
        sink += "      token: SECRET[logpulse.agent_token]"
        config.write_text(MINIMAL_CONFIG.replace("type: blackhole", sink))
        return [options, config]

    @pytest.mark.anyio
    async def test_token_reaches_vector_and_nowhere_else(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Validation resolves the token through the backend; no output or event holds it."""
        events = tmp_path / "events.jsonl"
        (tmp_path / "agent-token").write_text(TOKEN + "\n")
        vector = install_standin(tmp_path / "bin")
        env = {**os.environ, "STANDIN_EVENTS": str(events)}
        files = self.files(tmp_path, tmp_path / "agent-token")
        await cli.validate(str(vector), files, env)
        resolved = events_named(events, "secret_resolved")
        assert resolved[0]["backend"] == "logpulse" and resolved[0]["obtained"] is True
        assert TOKEN not in events.read_text()
        assert all(TOKEN not in path.read_text() for path in files)

    @pytest.mark.anyio
    async def test_missing_token_fails_validation_with_the_reason(self, tmp_path: Path) -> None:
        """Without a token file, validation fails and says the host must enrol."""
        vector = install_standin(tmp_path / "bin")
        with pytest.raises(ValidationFailed) as failure:
            await cli.validate(str(vector), self.files(tmp_path, tmp_path / "none"), os.environ)
        message = str(failure.value)
        assert "secret for key 'agent_token' was not retrieved: no agent token" in message
