"""Static settings: the settings file, then environment variables, then CLI flags (later wins).

Every path has a setting so tests, containers and non-root runs can move the whole layout under
one directory. Intervals are seconds and may be fractional (tests use 0.05).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from logpulse_agent.errors import SettingsError
from logpulse_agent.state.layout import Layout

DEFAULT_CONFIG_FILE = Path("/etc/logpulse-agent/agent.yaml")
BUNDLED_VECTOR = Path("/opt/logpulse-agent/vector/bin/vector")


@dataclass(frozen=True)
class Settings:
    """The agent's static settings; see the README's settings table."""

    api_url: str | None = None
    config_dir: Path = Path("/etc/logpulse-agent")
    state_dir: Path = Path("/var/lib/logpulse-agent")
    log_dir: Path = Path("/var/log/logpulse-agent")
    vector_bin: str = ""  # resolved by load_settings: bundled Vector, else `vector` on PATH
    poll_interval: float = 10.0
    heartbeat_interval: float = 30.0
    install_url: str = "https://get.logpulse.io"
    ca_bundle: Path | None = None
    platform: str = "linux"
    allow_insecure_http: bool = False

    @property
    def layout(self) -> Layout:
        """Where the agent's files are under these directories."""
        return Layout(self.config_dir, self.state_dir, self.log_dir)

    @property
    def token_file(self) -> Path:
        return self.layout.token

    @property
    def bootstrap_token_file(self) -> Path:
        return self.layout.bootstrap_token


# key -> environment variable
ENV_VARS: dict[str, str] = {
    "api_url": "LOGPULSE_API_URL",
    "config_dir": "LOGPULSE_CONFIG_DIR",
    "state_dir": "LOGPULSE_STATE_DIR",
    "log_dir": "LOGPULSE_LOG_DIR",
    "vector_bin": "LOGPULSE_VECTOR_BIN",
    "poll_interval": "LOGPULSE_POLL_INTERVAL",
    "heartbeat_interval": "LOGPULSE_HEARTBEAT_INTERVAL",
    "install_url": "LOGPULSE_INSTALL_URL",
    "ca_bundle": "LOGPULSE_CA_BUNDLE",
    "platform": "LOGPULSE_PLATFORM",
    "allow_insecure_http": "LOGPULSE_ALLOW_INSECURE_HTTP",
}
PLATFORMS = ("linux", "kubernetes")
_PATH_KEYS = {"config_dir", "state_dir", "log_dir", "ca_bundle"}
_INTERVAL_KEYS = {"poll_interval", "heartbeat_interval"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(key: str, value: Any) -> Any:
    """Turn a raw value from YAML, the environment or a flag into the field's type."""
    if key in _INTERVAL_KEYS:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise SettingsError(key, value, "not a number of seconds") from None
        if not seconds > 0 or seconds == float("inf"):
            raise SettingsError(key, value, "must be a positive number of seconds")
        return seconds
    if key == "allow_insecure_http":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise SettingsError(key, value, "not a boolean (true/false)")
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise SettingsError(key, value, "must be a string")
    if key in _PATH_KEYS:
        return Path(value).expanduser() if str(value) else None
    if key == "platform" and value not in PLATFORMS:
        raise SettingsError(key, value, f"must be one of {', '.join(PLATFORMS)}")
    return str(value)


def _read_file(path: Path, required: bool) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise SettingsError("config", str(path), "file does not exist") from None
        return {}
    except OSError as exc:
        raise SettingsError("config", str(path), exc.strerror or str(exc)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SettingsError("config", str(path), f"not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError("config", str(path), "must be a mapping of settings")
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(unknown[0], data[unknown[0]], f"unknown setting in {path}")
    return data


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from the file, the environment and ``overrides`` (CLI flags).

    ``config_file`` (or ``LOGPULSE_CONFIG``) must exist when given explicitly; the default
    ``/etc/logpulse-agent/agent.yaml`` may be absent.
    """
    explicit = config_file
    if explicit is None and environ.get("LOGPULSE_CONFIG"):
        explicit = Path(environ["LOGPULSE_CONFIG"])
    raw: dict[str, Any] = _read_file(explicit or DEFAULT_CONFIG_FILE, required=explicit is not None)
    for key, var in ENV_VARS.items():
        if var in environ:
            raw[key] = environ[var]
    for key, value in (overrides or {}).items():
        if value is not None:
            raw[key] = value
    if "platform" not in raw:
        raw["platform"] = "kubernetes" if environ.get("KUBERNETES_SERVICE_HOST") else "linux"
    values = {key: _coerce(key, value) for key, value in raw.items()}
    settings = Settings(**values)
    if not settings.vector_bin:
        settings = replace(settings, vector_bin=default_vector_bin(environ))
    if settings.api_url is not None:
        check_url("api_url", settings.api_url, settings.allow_insecure_http)
    check_url("install_url", settings.install_url, settings.allow_insecure_http)
    return settings


def default_vector_bin(environ: Mapping[str, str] = os.environ) -> str:
    """The bundled Vector when installed, else ``vector`` found on ``PATH``."""
    if BUNDLED_VECTOR.exists():
        return str(BUNDLED_VECTOR)
    return shutil.which("vector", path=environ.get("PATH")) or "vector"


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(key: str, url: str, allow_insecure_http: bool) -> bool:
    """Validate an API or install URL; return True when it is plain HTTP that needs a warning.

    ``http://`` is refused unless the host is a loopback address or ``allow_insecure_http``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(key, url, "must be an http(s):// URL with a host")
    if parts.scheme == "https":
        return False
    if is_loopback_host(parts.hostname):
        return False
    if not allow_insecure_http:
        raise SettingsError(
            key,
            url,
            "plain http:// is refused for non-loopback hosts (tokens would travel in clear text); "
            "use https:// or set allow_insecure_http",
        )
    return True
