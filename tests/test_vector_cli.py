"""`vector --version` and `vector validate`, as the agent runs them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest

from logpulse_agent.errors import ValidationFailed
from logpulse_agent.vector.commands import (
    child_env,
    failure_message,
    first_error,
    parse_version,
    validate,
    validate_args,
    vector_version,
)
from tests.standin import MINIMAL_CONFIG, events_named, install_standin

REPORT = """\
Failed to load ["/var/lib/logpulse-agent/vector.next.yaml"]
------------------------------------------------------------
x Input "nope" for sink "out" doesn't match any components.
x No sources defined in the config.

"""


def script(path: Path, body: str) -> Path:
    """An executable Python script standing in for a misbehaving binary."""
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(0o755)
    return path


class TestParsing:
    def test_parses_the_version_vector_prints(self) -> None:
        """The number after "vector" is the version, with or without a build suffix."""
        assert (
            parse_version("vector 0.40.0 (x86_64-unknown-linux-gnu 1167aa9 2024-07-29)") == "0.40.0"
        )
        assert (
            parse_version("vector 0.57.0-nightly (aarch64-unknown-linux-musl)\n")
            == "0.57.0-nightly"
        )
        assert parse_version("noise\nvector v0.39.1 (x)\n") == "0.39.1"

    def test_anything_else_has_no_version(self) -> None:
        """Output that is not Vector's version line gives None."""
        assert parse_version("") is None
        assert parse_version("vectors 1.2.3") is None
        assert parse_version("error: unexpected argument") is None

    def test_validate_forces_every_file_to_yaml_without_environment(self) -> None:
        """Every path gets --config-yaml, and --no-environment comes first."""
        assert validate_args("vector", [Path("/a.yaml"), Path("/b")]) == [
            "vector",
            "validate",
            "--no-environment",
            "--config-yaml",
            "/a.yaml",
            "--config-yaml",
            "/b",
        ]

    def test_first_error_is_the_first_x_line(self) -> None:
        """The summary is the first `x` line of the report."""
        assert first_error(REPORT) == 'Input "nope" for sink "out" doesn\'t match any components.'

    def test_first_error_falls_back_to_error_log_lines(self) -> None:
        """Without a report, the first ERROR log line on stderr explains the failure."""
        stderr = (
            "2026-01-01T00:00:00.000000Z ERROR vector::config::loading: Config file not found "
            'in path. path="/x.yaml"\n'
        )
        assert first_error("", stderr) == 'Config file not found in path. path="/x.yaml"'
        assert first_error("", "") is None

    def test_failure_message_is_one_redacted_line(self) -> None:
        """The message is one line, tokens masked, exit code when nothing else is known."""
        report = "Failed\n------\nx bad token AGT_abcdefghijklmnop in sink\n"
        message = failure_message(78, report)
        assert message == "vector validate rejected the config: bad token AGT_*** in sink"
        assert failure_message(1, "", "") == "vector validate failed with exit code 1"

    def test_child_env_drops_vector_config_path_variables(self) -> None:
        """VECTOR_CONFIG* variables would add config files; they never reach Vector."""
        env = {
            "PATH": "/bin",
            "VECTOR_CONFIG": "/x",
            "VECTOR_CONFIG_YAML": "/y",
            "VECTOR_LOG": "info",
        }
        assert child_env(env) == {"PATH": "/bin", "VECTOR_LOG": "info"}


class TestVectorVersion:
    @pytest.mark.anyio
    async def test_reads_the_version_from_the_binary(self, tmp_path: Path) -> None:
        """`vector --version` is run and parsed."""
        assert await vector_version(str(install_standin(tmp_path))) == "0.57.0"

    @pytest.mark.anyio
    async def test_missing_or_failing_binary_gives_none(self, tmp_path: Path) -> None:
        """A missing binary, a non-zero exit or unparseable output give None."""
        assert await vector_version(str(tmp_path / "nope")) is None
        failing = script(tmp_path / "failing", "import sys; print('vector 1.2.3'); sys.exit(1)")
        assert await vector_version(str(failing)) is None
        odd = script(tmp_path / "odd", "print('hello')")
        assert await vector_version(str(odd)) is None

    @pytest.mark.anyio
    async def test_hanging_binary_is_killed_after_the_timeout(self, tmp_path: Path) -> None:
        """A binary that never answers is killed and reaped; the version is None."""
        pid_file = tmp_path / "pid"
        body = (
            f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)"
        )
        hanging = script(tmp_path / "hanging", body)
        assert await vector_version(str(hanging), timeout=1.0) is None
        assert not psutil.pid_exists(int(pid_file.read_text()))


class TestValidate:
    def files(self, tmp_path: Path, body: str = MINIMAL_CONFIG) -> list[Path]:
        config = tmp_path / "vector.next.yaml"
        config.write_text(body)
        return [config]

    @pytest.mark.anyio
    async def test_valid_config_passes(self, tmp_path: Path) -> None:
        """A valid candidate returns, with the environment handed to Vector."""
        events = tmp_path / "events.jsonl"
        env = {**os.environ, "STANDIN_EVENTS": str(events)}
        await validate(str(install_standin(tmp_path / "bin")), self.files(tmp_path), env)
        assert len(events_named(events, "validated")) == 1

    @pytest.mark.anyio
    async def test_rejected_config_raises_with_summary_and_report(self, tmp_path: Path) -> None:
        """Exit 78 raises ValidationFailed: one-line message, full report attached."""
        vector = str(install_standin(tmp_path / "bin"))
        with pytest.raises(ValidationFailed) as failure:
            await validate(vector, self.files(tmp_path, "{}\n"), os.environ)
        assert str(failure.value) == (
            "vector validate rejected the config: No sources defined in the config."
        )
        assert "x No sinks defined in the config." in failure.value.report

    @pytest.mark.anyio
    async def test_tokens_never_reach_the_message_or_report(self, tmp_path: Path) -> None:
        """A token quoted in Vector's report is masked in the error."""
        vector = str(install_standin(tmp_path / "bin"))
        body = MINIMAL_CONFIG.replace("[in]", "[AGT_supersecretvalue123]")
        with pytest.raises(ValidationFailed) as failure:
            await validate(vector, self.files(tmp_path, body), os.environ)
        assert "AGT_supersecret" not in str(failure.value) + failure.value.report
        assert "AGT_***" in str(failure.value)

    @pytest.mark.anyio
    async def test_missing_config_file_is_explained_from_stderr(self, tmp_path: Path) -> None:
        """A missing file has no report; the message comes from Vector's error log line."""
        vector = str(install_standin(tmp_path / "bin"))
        with pytest.raises(ValidationFailed, match="Config file not found in path"):
            await validate(vector, [tmp_path / "gone.yaml"], os.environ)

    @pytest.mark.anyio
    async def test_missing_binary_fails_validation(self, tmp_path: Path) -> None:
        """A binary that cannot be run fails validation with a clear reason."""
        with pytest.raises(ValidationFailed, match=r"cannot run .* validate"):
            await validate(str(tmp_path / "nope"), self.files(tmp_path), os.environ)

    @pytest.mark.anyio
    async def test_other_non_zero_exit_fails_validation(self, tmp_path: Path) -> None:
        """Any non-zero exit, not only 78, is a failure."""
        crashing = script(tmp_path / "crashing", "import sys; sys.exit(101)")
        with pytest.raises(ValidationFailed, match="exit code 101"):
            await validate(str(crashing), self.files(tmp_path), os.environ)

    @pytest.mark.anyio
    async def test_hanging_validate_times_out_and_is_reaped(self, tmp_path: Path) -> None:
        """A validate that never finishes is killed after the timeout."""
        pid_file = tmp_path / "pid"
        body = (
            f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)"
        )
        hanging = script(tmp_path / "hanging", body)
        with pytest.raises(ValidationFailed, match=r"did not finish within 1s"):
            await validate(str(hanging), self.files(tmp_path), os.environ, timeout=1.0)
        assert not psutil.pid_exists(int(pid_file.read_text()))
