"""The heartbeat body, built purely from what the agent knows at that moment.

A heartbeat is a view of the same sections ``status.json`` shows (:mod:`logpulse_agent.status`),
plus Vector's uptime and the results waiting in the journal. A new heartbeat field is a field
of :class:`~logpulse_agent.controlplane.protocol.Heartbeat` and one line here, reading the
section that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from logpulse_agent.controlplane.protocol import ActionResult, Heartbeat
from logpulse_agent.status.sections import AgentStatus


@dataclass(frozen=True)
class HeartbeatSnapshot:
    """What the agent knows when a heartbeat is built."""

    agent_version: str
    status: AgentStatus
    vector_uptime_seconds: int
    results: tuple[ActionResult, ...] = ()


def build_heartbeat(snapshot: HeartbeatSnapshot) -> Heartbeat:
    """The body of ``POST /api/v1/agents/{id}/heartbeat`` for ``snapshot``."""
    vector, config = snapshot.status.vector, snapshot.status.config
    return Heartbeat(
        agent_version=snapshot.agent_version,
        vector_version=None if vector is None else vector.version,
        applied_config_version=config.applied_version,
        vector_running=vector is not None and vector.running,
        vector_uptime_seconds=snapshot.vector_uptime_seconds,
        config_error=config.error,
        action_results=snapshot.results,
    )
