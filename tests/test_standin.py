"""The Vector stand-in honours the CLI facts of real Vector the agent relies on (SPEC §6, §9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logpulse_agent.vector.commands import parse_version
from tests.standin import (
    MINIMAL_CONFIG,
    Lines,
    events_named,
    install_standin,
    read_events,
    wait_until,
)

Start = Callable[..., "tuple[subprocess.Popen[bytes], Lines]"]


@pytest.fixture
def vector(tmp_path: Path) -> Path:
    return install_standin(tmp_path / "bin")


@pytest.fixture
def events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "events.jsonl"
    monkeypatch.setenv("STANDIN_EVENTS", str(path))
    return path


def write(path: Path, text: str) -> Path:
    """Replace ``path`` by rename, as the agent does."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def validate(vector: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(vector), "validate", *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


@pytest.fixture
def running(vector: Path, events: Path) -> Iterator[Start]:
    """Start the stand-in in run mode; ``start(*paths) -> (proc, lines)``; always cleaned up."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str | Path) -> tuple[subprocess.Popen[bytes], Lines]:
        proc = subprocess.Popen(
            [str(vector), *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc, Lines(proc)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


class TestVersion:
    def test_prints_the_version_line_vector_prints(self, vector: Path) -> None:
        """`vector --version` prints "vector X.Y.Z (target …)" like the real binary."""
        out = subprocess.run([str(vector), "--version"], capture_output=True, text=True, check=True)
        assert out.stdout.startswith("vector 0.57.0 (x86_64-unknown-linux-gnu ")
        assert parse_version(out.stdout) == "0.57.0"


class TestValidate:
    def test_valid_config_exits_0_with_report_on_stdout(
        self, vector: Path, tmp_path: Path, events: Path
    ) -> None:
        """A valid config exits 0 and reports "√ Loaded" … "Validated" on stdout."""
        config = write(tmp_path / "vector.yaml", MINIMAL_CONFIG)
        result = validate(vector, "--no-environment", "--config-yaml", config)
        assert result.returncode == 0, result.stdout
        lines = result.stdout.splitlines()
        assert lines[0] == f'√ Loaded ["{config}"]'
        assert lines[-1].strip() == "Validated"
        assert result.stderr == ""
        assert events_named(events, "validated")[0]["sources"] == ["in"]

    def test_empty_object_is_rejected_with_exit_78(self, vector: Path, tmp_path: Path) -> None:
        """`{}` never validates: no sources, no sinks, exit 78."""
        config = write(tmp_path / "vector.yaml", "{}\n")
        result = validate(vector, "--no-environment", "--config-yaml", config)
        assert result.returncode == 78
        assert "x No sources defined in the config." in result.stdout
        assert "x No sinks defined in the config." in result.stdout
        assert result.stdout.startswith(f'Failed to load ["{config}"]\n')

    def test_input_matching_nothing_is_rejected(self, vector: Path, tmp_path: Path) -> None:
        """An input naming no component is reported with Vector's wording."""
        config = write(tmp_path / "v.yaml", MINIMAL_CONFIG.replace("[in]", "[nope]"))
        result = validate(vector, "--no-environment", "--config-yaml", config)
        assert result.returncode == 78
        assert 'x Input "nope" for sink "out" doesn\'t match any components.' in result.stdout

    def test_missing_file_exits_78_with_an_error_log_line(
        self, vector: Path, tmp_path: Path
    ) -> None:
        """A config path that does not exist exits 78 before any report."""
        result = validate(vector, "--no-environment", "--config-yaml", tmp_path / "gone.yaml")
        assert result.returncode == 78
        assert "Config file not found in path." in result.stderr

    def test_validate_has_no_c_option(self, vector: Path, tmp_path: Path) -> None:
        """`validate -c` is a usage error, as in real Vector."""
        config = write(tmp_path / "vector.yaml", MINIMAL_CONFIG)
        assert validate(vector, "-c", config).returncode == 64

    def test_files_are_merged_and_conflicts_reported(self, vector: Path, tmp_path: Path) -> None:
        """Several --config-yaml files merge; a duplicate id or two data_dirs conflict."""
        first = write(tmp_path / "a.yaml", MINIMAL_CONFIG + "data_dir: /tmp/a\n")
        second = write(tmp_path / "b.yaml", "sources:\n  in:\n    type: stdin\ndata_dir: /tmp/b\n")
        result = validate(
            vector, "--no-environment", "--config-yaml", first, "--config-yaml", second
        )
        assert result.returncode == 78
        assert "x duplicate source id found: in" in result.stdout
        assert "x conflicting values for 'data_dir' found" in result.stdout
        options = write(tmp_path / "o.yaml", "data_dir: /tmp/a\n")
        ok = validate(vector, "--no-environment", "--config-yaml", options, "--config-yaml", first)
        assert ok.returncode == 0, ok.stdout

    def test_unknown_top_level_key_is_rejected(self, vector: Path, tmp_path: Path) -> None:
        """Only Vector's own top-level keys are accepted."""
        config = write(tmp_path / "v.yaml", MINIMAL_CONFIG + "pipelinez: {}\n")
        result = validate(vector, "--no-environment", "--config-yaml", config)
        assert "x unknown field `pipelinez`" in result.stdout

    def test_fail_validate_switch_rejects_the_content(self, vector: Path, tmp_path: Path) -> None:
        """`# standin: fail-validate` makes an otherwise valid config fail validation."""
        config = write(tmp_path / "v.yaml", "# standin: fail-validate\n" + MINIMAL_CONFIG)
        result = validate(vector, "--no-environment", "--config-yaml", config)
        assert result.returncode == 78
        assert result.stdout.count("\nx ") == 1

    def test_environment_checks_need_a_usable_data_dir(self, vector: Path, tmp_path: Path) -> None:
        """Without --no-environment a file source needs an existing data_dir."""
        body = MINIMAL_CONFIG.replace("demo_logs", "file") + f"data_dir: {tmp_path}/nope\n"
        config = write(tmp_path / "v.yaml", body)
        assert validate(vector, "--config-yaml", config).returncode == 78
        assert validate(vector, "--no-environment", "--config-yaml", config).returncode == 0


class TestRun:
    def test_logs_started_and_stops_with_exit_0_on_sigterm(
        self, running: Start, tmp_path: Path, events: Path
    ) -> None:
        """It logs "Vector has started."; SIGTERM logs the shutdown and exits 0."""
        config = write(tmp_path / "vector.yaml", MINIMAL_CONFIG)
        proc, lines = running("--config-yaml", config)
        started = lines.until("Vector has started.")[-1]
        assert ' INFO vector: Vector has started. debug="false" version="0.57.0"' in started
        proc.send_signal(signal.SIGTERM)
        assert "Vector has stopped." in lines.until("Vector has stopped.")[-1]
        assert proc.wait(timeout=10) == 0
        assert [e["event"] for e in read_events(events)] == ["started", "stopping", "stopped"]

    def test_sigint_stops_gracefully_too(self, running: Start, tmp_path: Path) -> None:
        """SIGINT (Ctrl-C) is a graceful shutdown with exit 0."""
        config = write(tmp_path / "vector.yaml", MINIMAL_CONFIG)
        proc, lines = running("-c", config)
        lines.until("Vector has started.")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0

    def test_invalid_config_is_a_start_up_failure_with_exit_78(
        self, running: Start, tmp_path: Path
    ) -> None:
        """A config that does not load exits 78 with "Configuration error." lines."""
        config = write(tmp_path / "vector.yaml", "{}\n")
        proc, lines = running("--config-yaml", config)
        assert proc.wait(timeout=10) == 78
        assert any("ERROR vector::cli: Configuration error." in line for line in lines.rest())

    def test_yaml_named_without_yaml_suffix_is_read_as_toml(
        self, running: Start, tmp_path: Path
    ) -> None:
        """With -c, a file not ending in .yaml/.yml/.json is parsed as TOML and fails."""
        config = write(tmp_path / "vector.conf", MINIMAL_CONFIG)
        proc, _ = running("-c", config)
        assert proc.wait(timeout=10) == 78
        proc2, lines = running("--config-yaml", config)
        lines.until("Vector has started.")
        proc2.terminate()

    def test_json_log_format(self, running: Start, tmp_path: Path) -> None:
        """--log-format json writes one JSON object per line with a top-level message."""
        config = write(tmp_path / "vector.yaml", MINIMAL_CONFIG)
        proc, lines = running("--log-format", "json", "--config-yaml", config)
        record = json.loads(lines.until("Vector has started.")[-1])
        assert record["message"] == "Vector has started."
        proc.terminate()


class TestReload:
    def start(
        self, running: Start, tmp_path: Path, text: str = MINIMAL_CONFIG
    ) -> tuple[Path, subprocess.Popen[bytes], Lines]:
        config = write(tmp_path / "vector.yaml", text)
        proc, lines = running("--config-yaml", config)
        lines.until("Vector has started.")
        return config, proc, lines

    def test_sighup_rereads_the_files(self, running: Start, tmp_path: Path, events: Path) -> None:
        """SIGHUP loads the new file content and logs "Vector has reloaded." with the path."""
        config, proc, lines = self.start(running, tmp_path)
        write(config, MINIMAL_CONFIG.replace("in:", "in2:").replace("[in]", "[in2]"))
        proc.send_signal(signal.SIGHUP)
        line = lines.until("Vector has reloaded.")[-1]
        assert f'path=[File("{config}", Some(Yaml))]' in line
        assert events_named(events, "reloaded")[0]["sources"] == ["in2"]

    def test_failed_load_keeps_the_old_config(
        self, running: Start, tmp_path: Path, events: Path
    ) -> None:
        """A file that does not load aborts the reload; the old config keeps running."""
        config, proc, lines = self.start(running, tmp_path)
        write(config, "sources: [\n")
        proc.send_signal(signal.SIGHUP)
        lines.until("Failed to load config files, reload aborted.")
        write(config, MINIMAL_CONFIG.replace("in:", "in3:").replace("[in]", "[in3]"))
        proc.send_signal(signal.SIGHUP)
        lines.until("Vector has reloaded.")
        assert [e["event"] for e in read_events(events)] == ["started", "reload_failed", "reloaded"]
        assert proc.poll() is None

    def test_fail_reload_switch_is_not_successful(
        self, running: Start, tmp_path: Path, events: Path
    ) -> None:
        """`# standin: fail-reload` content loads but the reload "was not successful"."""
        config, proc, lines = self.start(running, tmp_path)
        old = events_named(events, "started")[0]["config_sha256"]
        write(config, "# standin: fail-reload\n" + MINIMAL_CONFIG)
        proc.send_signal(signal.SIGHUP)
        seen = lines.until("Reload was not successful.")
        assert any("Old configuration restored successfully." in line for line in seen)
        assert events_named(events, "reload_failed")[0]["reason"] == "build"
        assert events_named(events, "started")[0]["config_sha256"] == old

    def test_changed_global_option_fails_the_reload(
        self, running: Start, tmp_path: Path, events: Path
    ) -> None:
        """Changing data_dir by SIGHUP fails like real Vector: restart needed."""
        config, proc, lines = self.start(running, tmp_path, MINIMAL_CONFIG + "data_dir: /tmp\n")
        write(config, MINIMAL_CONFIG + "data_dir: /var/tmp\n")
        proc.send_signal(signal.SIGHUP)
        seen = lines.until("Reload was not successful.")
        assert any("Global options can't be changed while reloading" in line for line in seen)
        assert events_named(events, "reload_failed")[0]["reason"] == "global_options"
        write(config, MINIMAL_CONFIG.replace("json", "logfmt") + "data_dir: /tmp\n")
        proc.send_signal(signal.SIGHUP)
        lines.until("Vector has reloaded.")

    def test_repeated_lines_are_rate_limited_like_vectors_internal_logs(
        self, running: Start, tmp_path: Path, events: Path
    ) -> None:
        """Within the window a repeat becomes a "suppressed" notice, further ones vanish."""
        _, proc, lines = self.start(running, tmp_path)
        for _ in range(3):
            proc.send_signal(signal.SIGHUP)
            wait_until(lambda n=_ + 1: len(events_named(events, "reloaded")) == n)
        proc.terminate()
        lines.rest()
        log = "\n".join(lines.seen)
        assert log.count("Vector has reloaded.") == 2  # the line and one notice
        assert "Internal log [Vector has reloaded.] is being suppressed to avoid flooding." in log

    def test_rate_limit_window_is_set_by_the_cli(self, running: Start, tmp_path: Path) -> None:
        """--internal-log-rate-limit 0 logs every reload."""
        config = write(tmp_path / "vector.yaml", MINIMAL_CONFIG)
        proc, lines = running("--internal-log-rate-limit", "0", "--config-yaml", config)
        lines.until("Vector has started.")
        for _ in range(3):
            proc.send_signal(signal.SIGHUP)
            lines.until("INFO vector: Vector has reloaded.")
        proc.terminate()

    def test_vanished_config_file_exits_78(self, running: Start, tmp_path: Path) -> None:
        """A config path missing at reload time makes Vector exit 78."""
        config, proc, _ = self.start(running, tmp_path)
        config.unlink()
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(timeout=10) == 78


class TestSwitches:
    def test_crash_on_start_logs_started_then_exits_0(
        self, running: Start, tmp_path: Path, events: Path
    ) -> None:
        """A crash after a successful start exits 0, like real Vector."""
        config = write(tmp_path / "v.yaml", "# standin: crash-on-start\n" + MINIMAL_CONFIG)
        proc, lines = running("--config-yaml", config)
        lines.until("Vector has started.")
        assert proc.wait(timeout=10) == 0
        assert [e["event"] for e in read_events(events)] == ["started", "crashed", "stopped"]

    def test_fail_start_exits_78_without_starting(self, running: Start, tmp_path: Path) -> None:
        """`# standin: fail-start` is a start-up failure: exit 78, no started line."""
        config = write(tmp_path / "v.yaml", "# standin: fail-start\n" + MINIMAL_CONFIG)
        proc, lines = running("--config-yaml", config)
        assert proc.wait(timeout=10) == 78
        assert not any("Vector has started." in line for line in lines.rest())

    def test_exit_after_exits_0_after_the_delay(
        self, running: Start, tmp_path: Path, events: Path
    ) -> None:
        """`# standin: exit-after=0.2` exits 0 once the delay has passed."""
        config = write(tmp_path / "v.yaml", "# standin: exit-after=0.2\n" + MINIMAL_CONFIG)
        proc, lines = running("--config-yaml", config)
        lines.until("All sources have finished.")
        assert proc.wait(timeout=10) == 0
        stopped = events_named(events, "stopped")[0]
        assert stopped["at"] - events_named(events, "started")[0]["at"] >= 0.2

    def test_hang_on_sigterm_ignores_sigterm(self, running: Start, tmp_path: Path) -> None:
        """`# standin: hang-on-sigterm` says it is stopping and then never exits by itself."""
        config = write(tmp_path / "v.yaml", "# standin: hang-on-sigterm\n" + MINIMAL_CONFIG)
        proc, lines = running("--config-yaml", config)
        lines.until("Vector has started.")
        proc.send_signal(signal.SIGTERM)
        lines.until("Vector is stopping.")
        proc.send_signal(signal.SIGTERM)
        # Still alive to log the second one (rate-limited like Vector's internal logs).
        lines.until("Internal log [Signal received.] is being suppressed to avoid flooding.")
        assert proc.poll() is None
        proc.kill()
        assert proc.wait(timeout=10) == -signal.SIGKILL


SECRET_SCRIPT = """\
import json, sys
request = json.load(sys.stdin)
with open({log!r}, "w") as handle:
    json.dump(request, handle)
print("backend says hello", file=sys.stderr)
answer = {{k: {{"value": "s3cr3t-" + k, "error": None}} for k in request["secrets"]}}
answer.pop("missing", None)
if "broken" in answer:
    answer["broken"] = {{"value": None, "error": "backend is down"}}
json.dump(answer, sys.stdout)
"""


class TestExecSecrets:
    def config(self, tmp_path: Path, key: str) -> Path:
        script = tmp_path / "backend.py"
        script.write_text(SECRET_SCRIPT.format(log=str(tmp_path / "request.json")))
        body = MINIMAL_CONFIG.replace(
            "type: blackhole", f"type: http\n    auth_token: SECRET[test.{key}]"
        )
        command = json.dumps([sys.executable, str(script)])
        secret = f"secret:\n  test:\n    type: exec\n    command: {command}\n"
        return write(tmp_path / "v.yaml", body + secret)

    def test_resolves_secrets_through_an_exec_backend(
        self, vector: Path, tmp_path: Path, events: Path
    ) -> None:
        """Vector's exec protocol: JSON request on stdin, values from stdout, never logged."""
        result = validate(
            vector, "--no-environment", "--config-yaml", self.config(tmp_path, "token")
        )
        assert result.returncode == 0, result.stdout
        assert json.loads((tmp_path / "request.json").read_text()) == {
            "version": "1.0",
            "secrets": ["token"],
        }
        assert "An exec backend generated message on stderr: backend says hello." in result.stderr
        resolved = events_named(events, "secret_resolved")
        assert resolved[0]["backend"] == "test" and resolved[0]["keys"] == ["token"]
        assert resolved[0]["obtained"] is True
        assert "s3cr3t" not in events.read_text() + result.stdout + result.stderr

    def test_error_from_the_backend_fails_the_load(self, vector: Path, tmp_path: Path) -> None:
        """An entry with an error fails the config with Vector's message."""
        result = validate(
            vector, "--no-environment", "--config-yaml", self.config(tmp_path, "broken")
        )
        assert result.returncode == 78
        assert (
            "x Error while retrieving secret from backend \"test\": secret for key 'broken' "
            "was not retrieved: backend is down." in result.stdout
        )

    def test_key_missing_from_the_answer_fails_the_load(self, vector: Path, tmp_path: Path) -> None:
        """A key the backend did not answer is "not retrieved"."""
        result = validate(
            vector, "--no-environment", "--config-yaml", self.config(tmp_path, "missing")
        )
        assert "secret for key 'missing' was not retrieved." in result.stdout

    def test_undeclared_backend_fails_the_load(self, vector: Path, tmp_path: Path) -> None:
        """SECRET[x.y] without a backend called x is an error."""
        config = write(tmp_path / "v.yaml", MINIMAL_CONFIG + "# token: SECRET[nope.key]\n")
        result = validate(vector, "--no-environment", "--config-yaml", config)
        assert 'x Backend "nope" is required for secret retrieval' in result.stdout
