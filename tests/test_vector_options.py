"""The agent-owned global options file and the restart-versus-reload decision."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from logpulse_agent.vector.options import (
    global_options,
    render_global_options,
    requires_restart,
    secret_command,
)
from tests.standin import MINIMAL_CONFIG, install_standin


class TestRenderGlobalOptions:
    def test_declares_data_dir_and_the_logpulse_exec_backend(self) -> None:
        """The file holds data_dir and the `logpulse` exec secret backend, nothing else."""
        text = render_global_options(Path("/var/lib/lp/vector"), ["/usr/bin/lp", "vector-secret"])
        assert yaml.safe_load(text) == {
            "data_dir": "/var/lib/lp/vector",
            "secret": {
                "logpulse": {
                    "type": "exec",
                    "command": ["/usr/bin/lp", "vector-secret"],
                    "timeout": 15,
                }
            },
        }

    def test_is_accepted_by_vector_validate_next_to_components(self, tmp_path: Path) -> None:
        """The rendered options merge with a components-only config into a valid one."""
        vector = install_standin(tmp_path / "bin")
        options = tmp_path / "options.yaml"
        options.write_text(render_global_options(tmp_path / "data", secret_command(tmp_path / "t")))
        config = tmp_path / "vector.yaml"
        config.write_text(MINIMAL_CONFIG)
        args = ["--config-yaml", str(options), "--config-yaml", str(config)]
        result = subprocess.run(
            [str(vector), "validate", "--no-environment", *args], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout

    def test_secret_command_runs_the_agent_module(self, tmp_path: Path) -> None:
        """The backend command is this interpreter running `logpulse_agent vector-secret`."""
        command = secret_command(tmp_path / "agent-token")
        assert command[1:] == [
            "-m",
            "logpulse_agent",
            "vector-secret",
            "--token-file",
            str(tmp_path / "agent-token"),
        ]


class TestGlobalOptions:
    def test_keeps_only_keys_that_are_not_component_tables(self) -> None:
        """sources/transforms/sinks/enrichment_tables/tests/secret are not global options."""
        text = MINIMAL_CONFIG + "data_dir: /d\napi:\n  enabled: true\nsecret: {}\ntests: []\n"
        assert global_options(text) == {"data_dir": "/d", "api": {"enabled": True}}

    def test_empty_document_has_no_global_options(self) -> None:
        """An empty file has no global options."""
        assert global_options("") == {}

    @pytest.mark.parametrize(
        ("text", "reason"),
        [("- a\n", "mapping"), ("just text\n", "mapping"), ("a: [\n", "not valid YAML")],
    )
    def test_rejects_non_mapping_documents(self, text: str, reason: str) -> None:
        """A YAML list or scalar, or no YAML at all, is not a Vector config."""
        with pytest.raises(ValueError, match=reason):
            global_options(text)

    def test_parses_with_libyaml_when_pyyaml_has_it(self) -> None:
        """The pure-Python loader takes most of a minute on a few MiB; libyaml does not."""
        from logpulse_agent.vector import options

        expected = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
        assert options._SAFE_LOADER is expected


class TestRequiresRestart:
    def test_component_changes_reload(self) -> None:
        """Changing only components is a reload."""
        new = MINIMAL_CONFIG.replace("json", "logfmt")
        assert not requires_restart(MINIMAL_CONFIG + "data_dir: /d\n", new + "data_dir: /d\n")

    def test_changed_global_option_restarts(self) -> None:
        """Changing, adding or removing a global option needs a restart."""
        assert requires_restart(
            MINIMAL_CONFIG + "data_dir: /a\n", MINIMAL_CONFIG + "data_dir: /b\n"
        )
        assert requires_restart(MINIMAL_CONFIG, MINIMAL_CONFIG + "acknowledgements: true\n")
        assert requires_restart(MINIMAL_CONFIG + "timezone: UTC\n", MINIMAL_CONFIG)

    def test_unknown_or_unparseable_old_config_restarts(self) -> None:
        """No old config, or one that does not parse, restarts (always correct)."""
        assert requires_restart(None, MINIMAL_CONFIG)
        assert requires_restart("a: [\n", MINIMAL_CONFIG)
