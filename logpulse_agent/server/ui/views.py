"""What a page shows of an agent or an action, derived from the admin API's JSON (pure).

The pages read the same JSON the admin API answers (``agents.to_json``, ``actions.to_json``),
and these functions only add what the eye needs: the badge text, how long ago, whether the
agent runs an older config than its group's. A field the server does not report yet (health,
data plane) stays ``None`` and the page shows ``—``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from logpulse_agent.server.admin_client import ago
from logpulse_agent.server.ui.templating import when

STATUS_LABELS = {"online": "Online", "offline": "Offline", "revoked": "Revoked"}
HEALTH_LABELS = {"healthy": "Healthy", "degraded": "Degraded", "failed": "Failed"}
ACTION_LABELS = {
    "pending": "Pending",
    "running": "Running",
    "done": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "expired": "Expired",
}


def status_tip(agent: dict[str, Any], now: datetime) -> str:
    """The badge's tooltip: when the agent was last seen (the operator's first question)."""
    last = agent.get("lastHeartbeatAt")
    if agent["status"] == "revoked":
        return f"revoked {when(agent.get('revokedAt'))}"
    if last is None:
        return f"never sent a heartbeat (enrolled {when(agent.get('enrolledAt'))})"
    return f"last seen {when(last)} ({ago(last, now)})"


def events_per_second(agent: dict[str, Any]) -> float | None:
    """Events per second from this agent: what this server's ingest received from it (the
    agents list's EVENTS/s, SPEC §11.2) when it ever received any, else what the agent's sinks
    reported sending over its last heartbeat window (``dataPlane``, SPEC §11.1; an ingest
    elsewhere); ``None`` when neither is known."""
    ingest = agent.get("ingest")
    if isinstance(ingest, dict) and ingest.get("lastEventAt") is not None:
        rate = ingest.get("eventsPerSecond")
        if isinstance(rate, (int, float)):
            return float(rate)
    plane = agent.get("dataPlane")
    if not isinstance(plane, dict):
        return None
    window, sent = plane.get("windowSeconds"), plane.get("eventsOut")
    if not isinstance(window, (int, float)) or window <= 0 or not isinstance(sent, (int, float)):
        return None
    return float(sent) / float(window)


def history_view(entry: dict[str, Any]) -> dict[str, Any]:
    """One health transition (``agent_health.history``) with its label."""
    return {**entry, "stateLabel": HEALTH_LABELS.get(entry["state"], entry["state"])}


def agent_view(agent: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``agent`` (admin JSON) plus ``statusLabel``, ``statusTip``, ``behind``, ``health``
    (``{"state", "label", "reason", "since"}`` or ``None``) and ``eventsPerSecond``."""
    applied, wanted = agent.get("appliedConfigVersion"), agent.get("groupConfigVersion")
    health = agent.get("health")
    health_view = None
    if isinstance(health, dict) and health.get("state"):
        state = str(health["state"])
        health_view = {
            "state": state,
            "label": HEALTH_LABELS.get(state, state),
            "reason": health.get("reason"),
            "since": health.get("since"),
        }
    return {
        **agent,
        "statusLabel": STATUS_LABELS.get(agent["status"], agent["status"]),
        "statusTip": status_tip(agent, now),
        "behind": (
            agent["status"] != "revoked"
            and isinstance(applied, int)
            and isinstance(wanted, int)
            and applied < wanted
        ),
        "healthView": health_view,
        "eventsPerSecond": events_per_second(agent),
    }


def action_outcome(action: dict[str, Any]) -> str | None:
    """One line of what an action's result says: the error, or ``0.4.1 → 0.4.2``."""
    result = action.get("result")
    if not isinstance(result, dict):
        return None
    lines = str(result.get("error") or "").strip().splitlines()
    if lines:
        return lines[0].strip()[:300]
    if result.get("fromVersion") or result.get("toVersion"):
        return f"{result.get('fromVersion') or '?'} → {result.get('toVersion') or '?'}"
    return None


def action_view(action: dict[str, Any], hostname: str | None = None) -> dict[str, Any]:
    """``action`` (admin JSON) plus ``statusLabel``, ``target`` (upgrade version), ``outcome``
    and ``hostname`` when known."""
    payload = action.get("payload") or {}
    return {
        **action,
        "statusLabel": ACTION_LABELS.get(action["status"], action["status"]),
        "target": payload.get("targetVersion") if isinstance(payload, dict) else None,
        "outcome": action_outcome(action),
        "hostname": hostname,
    }
