"""What the daemon knows, as typed sections of one :class:`AgentStatus`.

Each section is a frozen dataclass that one part of the daemon owns and replaces whole:

    identity       IdentityStatus       the daemon, once enrolled
    control_plane  ControlPlaneStatus   heartbeat and config sync (reachability, last error)
    config         ConfigStatus         config sync (applied version, last config error)
    vector         VectorStatus         the status feed, from the supervisor
    actions        ActionsStatus        the status feed and heartbeat (pending results, upgrade)

``status.json`` (:meth:`AgentStatus.to_json`) and the heartbeat
(:func:`logpulse_agent.heartbeat.body.build_heartbeat`) are both views of these sections. A new
section is a dataclass here, a field of :class:`AgentStatus` with its JSON key, and whatever
``status`` prints of it (:mod:`.report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from logpulse_agent.clock import rfc3339
from logpulse_agent.controlplane.protocol import ConfigErrorReport

ControlPlaneState = Literal["connecting", "ok", "unreachable", "revoked", "waiting-enrolment"]


@dataclass(frozen=True)
class IdentityStatus:
    agent_id: str
    group_id: str
    api_url: str

    def to_json(self) -> dict[str, Any]:
        return {"agentId": self.agent_id, "groupId": self.group_id, "apiUrl": self.api_url}


@dataclass(frozen=True)
class ControlPlaneStatus:
    """``last_heartbeat_at``: Unix time of the last ``2xx`` heartbeat."""

    state: ControlPlaneState = "connecting"
    error: str | None = None
    last_heartbeat_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        last = self.last_heartbeat_at
        return {
            "state": self.state,
            "error": self.error,
            "lastHeartbeatAt": None if last is None else rfc3339(last),
        }


@dataclass(frozen=True)
class ConfigStatus:
    """The applied config; ``error`` is the last rejected one until a later one applies."""

    applied_version: int = 0
    etag: str | None = None
    empty: bool = False
    error: ConfigErrorReport | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "appliedVersion": self.applied_version,
            "etag": self.etag,
            "empty": self.empty,
            "lastError": None if self.error is None else self.error.to_json(),
        }


@dataclass(frozen=True)
class VectorStatus:
    """The supervisor's view of Vector; ``started_at`` RFC 3339, None unless it runs;
    ``last_error`` why it last failed to start or exited unasked (None once it runs again)."""

    state: str
    pid: int | None
    running: bool
    should_run: bool
    started_at: str | None
    version: str | None
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "pid": self.pid,
            "running": self.running,
            "shouldRun": self.should_run,
            "startedAt": self.started_at,
            "version": self.version,
            "lastError": self.last_error,
        }


@dataclass(frozen=True)
class UpgradeStatus:
    """The upgrade in flight (versions without ``v``, ``started_at`` RFC 3339)."""

    action_id: str
    from_version: str
    to_version: str
    started_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "actionId": self.action_id,
            "fromVersion": self.from_version,
            "toVersion": self.to_version,
            "startedAt": self.started_at,
        }


@dataclass(frozen=True)
class ActionsStatus:
    pending_results: int = 0
    inflight_upgrade: UpgradeStatus | None = None


@dataclass(frozen=True)
class AgentStatus:
    """Every section; ``vector`` is None until the supervisor was first asked."""

    identity: IdentityStatus | None = None
    control_plane: ControlPlaneStatus = field(default_factory=ControlPlaneStatus)
    config: ConfigStatus = field(default_factory=ConfigStatus)
    vector: VectorStatus | None = None
    actions: ActionsStatus = field(default_factory=ActionsStatus)

    def to_json(self) -> dict[str, Any]:
        """The sections as ``status.json`` holds them (the daemon adds pid and times)."""
        upgrade = self.actions.inflight_upgrade
        return {
            "identity": None if self.identity is None else self.identity.to_json(),
            "controlPlane": self.control_plane.to_json(),
            "config": self.config.to_json(),
            "vector": {} if self.vector is None else self.vector.to_json(),
            "pendingActionResults": self.actions.pending_results,
            "inflightUpgrade": None if upgrade is None else upgrade.to_json(),
        }


Section = IdentityStatus | ControlPlaneStatus | ConfigStatus | VectorStatus | ActionsStatus

# Which field of AgentStatus each section type fills.
SECTION_FIELDS: dict[type[Any], str] = {
    IdentityStatus: "identity",
    ControlPlaneStatus: "control_plane",
    ConfigStatus: "config",
    VectorStatus: "vector",
    ActionsStatus: "actions",
}
