"""Enrolment: trade a bootstrap token (EBT_) for this host's identity and agent token (AGT_)."""

from __future__ import annotations

import platform
import socket
from collections.abc import Mapping
from pathlib import Path

import structlog

from logpulse_agent import __version__
from logpulse_agent.clock import rfc3339, utc_now
from logpulse_agent.controlplane.client import ControlPlaneClient, RetryPolicy, make_http_client
from logpulse_agent.controlplane.identity import Identity, IdentityStore
from logpulse_agent.controlplane.protocol import EnrolRequest
from logpulse_agent.errors import SettingsError, StateError
from logpulse_agent.settings import Settings
from logpulse_agent.vector.commands import vector_version

log = structlog.get_logger(__name__)

BOOTSTRAP_PREFIX = "EBT_"


def os_pretty_name(os_release: Path = Path("/etc/os-release")) -> str:
    """``PRETTY_NAME`` from os-release (e.g. "Ubuntu 24.04 LTS"), else the kernel's name."""
    try:
        for line in os_release.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key == "PRETTY_NAME":
                return value.strip().strip('"') or platform.system()
    except OSError:
        pass
    return platform.system()


def enrol_hostname(platform_name: str, environ: Mapping[str, str]) -> str:
    """The name this host enrols under: on Kubernetes the node's name when the DaemonSet passes
    it as ``LOGPULSE_NODE_NAME`` (the pod's own hostname is its generated pod name, which says
    nothing in the dashboard and changes with every rollout), else the host name."""
    node = environ.get("LOGPULSE_NODE_NAME", "").strip()
    if platform_name == "kubernetes" and node:
        return node
    return socket.gethostname()


def check_bootstrap_token(token: str) -> str:
    token = token.strip()
    if not token:
        raise SettingsError("token", "", "the bootstrap token is empty")
    if not token.startswith(BOOTSTRAP_PREFIX) or any(c.isspace() for c in token):
        raise SettingsError(
            "token", "<hidden>", "does not look like a bootstrap token (expected EBT_…)"
        )
    return token


def read_token_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise StateError(f"cannot read token file {path}: {exc.strerror or exc}") from exc


def find_bootstrap_token(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """``LOGPULSE_ENROL_TOKEN``, else the provisioned ``bootstrap-token`` file, else None."""
    if environ.get("LOGPULSE_ENROL_TOKEN", "").strip():
        return environ["LOGPULSE_ENROL_TOKEN"].strip()
    path = settings.bootstrap_token_file
    if path.exists():
        return read_token_file(path) or None
    return None


async def enrol(
    settings: Settings,
    token: str,
    *,
    api_url: str,
    environ: Mapping[str, str],
    group_slug: str | None = None,
    retry: RetryPolicy | None = None,
) -> Identity:
    """Enrol this host; on success the token (0600) and identity are on disk.

    ``environ`` is the agent's environment (``LOGPULSE_NODE_NAME``, and what ``vector
    --version`` runs with). Directories are checked for writability first, so a host that could
    not store the answer never consumes one of the bootstrap token's uses.
    """
    token = check_bootstrap_token(token)
    settings.layout.ensure_dirs()
    request = EnrolRequest(
        bootstrap_token=token,
        hostname=enrol_hostname(settings.platform, environ),
        platform=settings.platform,
        os=os_pretty_name(),
        kernel=platform.release(),
        agent_version=__version__,
        vector_version=await vector_version(settings.vector_bin, environ),
        group_slug=group_slug,
    )
    async with make_http_client(settings, version=__version__) as http:
        client = ControlPlaneClient(http, api_url, retry=retry or RetryPolicy(max_attempts=3))
        result = await client.enrol(request)
    identity = Identity(
        agent_id=result.agent_id,
        group_id=result.group_id,
        api_url=api_url,
        enrolled_at=rfc3339(utc_now()),
    )
    IdentityStore(settings.layout).save(identity, result.agent_token)
    log.info("agent.enrolled", agent_id=identity.agent_id, group_id=identity.group_id)
    return identity
