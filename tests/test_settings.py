"""Settings: file, then environment, then flags; clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from logpulse_agent.errors import SettingsError
from logpulse_agent.settings import check_url, load_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class TestPrecedence:
    def test_environment_beats_file_and_flags_beat_environment(self, tmp_path: Path) -> None:
        """A flag wins over the environment, which wins over the settings file."""
        cfg = write(
            tmp_path / "agent.yaml", "poll_interval: 7\nheartbeat_interval: 9\nlog_dir: /a\n"
        )
        env = {"LOGPULSE_POLL_INTERVAL": "3", "LOGPULSE_LOG_DIR": "/b"}
        settings = load_settings(cfg, env, {"log_dir": "/c"})
        assert settings.poll_interval == 3.0
        assert settings.heartbeat_interval == 9.0
        assert settings.log_dir == Path("/c")

    def test_config_file_from_environment(self, tmp_path: Path) -> None:
        """LOGPULSE_CONFIG names the settings file."""
        cfg = write(tmp_path / "x.yaml", f"state_dir: {tmp_path}/state\n")
        settings = load_settings(None, {"LOGPULSE_CONFIG": str(cfg)})
        assert settings.state_dir == tmp_path / "state"

    def test_fractional_intervals_are_accepted(self) -> None:
        """Tests run with intervals like 0.05 s."""
        settings = load_settings(None, {"LOGPULSE_CONFIG": "", "LOGPULSE_POLL_INTERVAL": "0.05"})
        assert settings.poll_interval == 0.05

    def test_platform_defaults_to_kubernetes_inside_a_pod(self) -> None:
        """KUBERNETES_SERVICE_HOST selects the kubernetes platform."""
        assert load_settings(None, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}).platform == "kubernetes"
        assert load_settings(None, {}).platform == "linux"

    def test_every_path_is_relocatable(self, tmp_path: Path) -> None:
        """Config, state and log directories all follow their settings."""
        env = {
            "LOGPULSE_CONFIG_DIR": str(tmp_path / "etc"),
            "LOGPULSE_STATE_DIR": str(tmp_path / "lib"),
            "LOGPULSE_LOG_DIR": str(tmp_path / "log"),
            "LOGPULSE_VECTOR_BIN": "/x/vector",
        }
        settings = load_settings(None, env)
        assert settings.token_file == tmp_path / "etc" / "agent-token"
        assert settings.state_dir == tmp_path / "lib"
        assert settings.log_dir == tmp_path / "log"
        assert settings.vector_bin == "/x/vector"


class TestBadValues:
    @pytest.mark.parametrize("value", ["x", "-1", "0", "inf", ""])
    def test_interval_must_be_a_positive_number(self, value: str) -> None:
        """A non-number or non-positive interval is a one-line error naming the key."""
        with pytest.raises(SettingsError) as info:
            load_settings(None, {"LOGPULSE_POLL_INTERVAL": value})
        assert "'poll_interval'" in str(info.value)
        assert "\n" not in str(info.value)

    def test_unknown_key_in_file_is_refused(self, tmp_path: Path) -> None:
        """A typo in agent.yaml is reported instead of silently ignored."""
        cfg = write(tmp_path / "a.yaml", "pol_interval: 5\n")
        with pytest.raises(SettingsError, match="pol_interval"):
            load_settings(cfg, {})

    def test_broken_yaml_is_reported_with_its_line(self, tmp_path: Path) -> None:
        """A YAML syntax error names the file and line."""
        cfg = write(tmp_path / "a.yaml", "poll_interval: 5\n  bad: [\n")
        with pytest.raises(SettingsError, match="line"):
            load_settings(cfg, {})

    def test_explicit_missing_file_is_an_error(self, tmp_path: Path) -> None:
        """--config pointing nowhere fails instead of running on defaults."""
        with pytest.raises(SettingsError, match="does not exist"):
            load_settings(tmp_path / "nope.yaml", {})

    def test_unknown_platform_is_refused(self) -> None:
        """Only linux and kubernetes exist."""
        with pytest.raises(SettingsError, match="platform"):
            load_settings(None, {"LOGPULSE_PLATFORM": "windows"})


class TestInsecureHttp:
    def test_plain_http_to_a_remote_host_is_refused(self) -> None:
        """http:// to a non-loopback host needs allow_insecure_http."""
        with pytest.raises(SettingsError, match="allow_insecure_http"):
            load_settings(None, {"LOGPULSE_API_URL": "http://cp.example.com"})

    def test_plain_http_is_allowed_with_the_flag_and_flagged_for_a_warning(self) -> None:
        """With the opt-in the URL is accepted and check_url asks for a warning."""
        settings = load_settings(
            None, {"LOGPULSE_API_URL": "http://cp.example.com", "LOGPULSE_ALLOW_INSECURE_HTTP": "1"}
        )
        assert settings.allow_insecure_http is True
        assert check_url("api_url", "http://cp.example.com", True) is True

    @pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:1"])
    def test_loopback_http_is_fine(self, url: str) -> None:
        """Loopback traffic never leaves the host."""
        assert check_url("api_url", url, False) is False

    def test_not_a_url_is_refused(self) -> None:
        """Garbage in api_url is a clear error."""
        with pytest.raises(SettingsError, match="http"):
            check_url("api_url", "ftp://x", False)
