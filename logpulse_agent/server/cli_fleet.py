"""``logpulse-server`` admin commands for the fleet: tokens, agents, upgrades, actions."""

from __future__ import annotations

import json

import click

from logpulse_agent.server.admin_client import (
    AGENT_HEADERS,
    Session,
    admin_command,
    agent_rows,
    parse_duration,
    printable,
    table,
)


@click.group()
def token() -> None:
    """Enrolment (EBT_) tokens: mint, list, revoke."""


@admin_command(token, "mint")
@click.argument("group_ref", metavar="GROUP")
@click.option("--ttl", default="24h", show_default=True, help="Lifetime: 90s, 30m, 24h, 7d.")
@click.option("--max-uses", type=click.IntRange(1), default=100, show_default=True)
@click.option("--label", help="A note to recognise the token by.")
def token_mint(s: Session, group_ref: str, ttl: str, max_uses: int, label: str | None) -> None:
    """Mint a token; the token alone goes to stdout (it is shown only now)."""
    body = {
        "group": group_ref,
        "ttlSeconds": parse_duration(ttl),
        "maxUses": max_uses,
        "label": label,
    }
    t = s.call("POST", "/enrolment-tokens", body)
    s.emit(t, t["token"])
    if not s.as_json:
        click.echo(
            f"enrolment token {t['id']} for group {group_ref}: {t['maxUses']} uses,"
            f" expires {t['expiresAt']}; it is not shown again",
            err=True,
        )


@admin_command(token, "list")
@click.argument("group_ref", metavar="[GROUP]", required=False)
def token_list(s: Session, group_ref: str | None) -> None:
    rows = s.call("GET", "/enrolment-tokens", group=group_ref)
    lines = [
        [t["id"], t["state"], f"{t['uses']}/{t['maxUses']}", t["expiresAt"], t["label"]]
        for t in rows
    ]
    s.emit(rows, table(("ID", "STATE", "USES", "EXPIRES", "LABEL"), lines))


@admin_command(token, "revoke")
@click.argument("token_id")
def token_revoke(s: Session, token_id: str) -> None:
    t = s.call("POST", f"/enrolment-tokens/{token_id}/revoke")
    s.emit(t, f"revoked enrolment token {t['id']}")


@click.group()
def agents() -> None:
    """Enrolled agents: list, health history, move, revoke."""


@admin_command(agents, "list")
@click.option("--group", "group_ref", help="Only this group (id or slug).")
@click.option("--status", type=click.Choice(["online", "offline", "revoked"]))
@click.option(
    "--health",
    type=click.Choice(["healthy", "degraded", "failed", "unknown"]),
    help="Only agents whose last reported health is this (unknown: none reported).",
)
def agents_list(s: Session, group_ref: str | None, status: str | None, health: str | None) -> None:
    """HEALTH is what the agent last reported (state: reason); EVENTS/s is what this server's
    ingest received from it over the last 10 s ("-": none ever)."""
    rows = s.call("GET", "/agents", group=group_ref, status=status, health=health)
    s.emit(rows, table(AGENT_HEADERS, agent_rows(rows)) if rows else "no agents")


@admin_command(agents, "health")
@click.argument("agent_id")
def agents_health(s: Session, agent_id: str) -> None:
    """The agent's health transitions, newest first."""
    rows = s.call("GET", f"/agents/{agent_id}/health")
    lines = [[h["at"], h["state"], h["since"], h["reason"]] for h in rows]
    s.emit(rows, table(("AT", "STATE", "SINCE", "REASON"), lines) if rows else "no health reported")


@admin_command(agents, "move")
@click.argument("agent_id")
@click.argument("group_ref", metavar="GROUP")
def agents_move(s: Session, agent_id: str, group_ref: str) -> None:
    a = s.call("POST", f"/agents/{agent_id}/move", {"group": group_ref})
    s.emit(
        a,
        f"moved {printable(a['hostname'])} ({a['id']}) to group {a['groupSlug']};"
        f" it picks up config version {a['groupConfigVersion']} on its next poll",
    )


@admin_command(agents, "revoke")
@click.argument("agent_id")
def agents_revoke(s: Session, agent_id: str) -> None:
    a = s.call("POST", f"/agents/{agent_id}/revoke")
    s.emit(a, f"revoked {printable(a['hostname'])} ({a['id']}); its next request gets 403")


@admin_command(None, "upgrade")
@click.argument("agent_ids", metavar="AGENT_ID...", nargs=-1, required=True)
@click.option("--version", "target", required=True, help="Target agent version, e.g. 0.4.2.")
@click.option("--deadline", default="30m", show_default=True, help="Expire after: 30m, 2h…")
def upgrade(s: Session, agent_ids: tuple[str, ...], target: str, deadline: str) -> None:
    """Queue an upgrade_agent action for each AGENT_ID."""
    body = {
        "agentIds": list(agent_ids),
        "type": "upgrade_agent",
        "payload": {"targetVersion": target},
        "deadlineSeconds": parse_duration(deadline),
    }
    created = s.call("POST", "/actions", body)
    lines = "\n".join(
        f"queued upgrade to {target} for {a['agentId']}: action {a['id']}" for a in created
    )
    s.emit(created, lines)


@click.group()
def actions() -> None:
    """Remote actions: list, cancel."""


@admin_command(actions, "list")
@click.option("--agent", "agent_id", help="Only this agent's actions.")
@click.option(
    "--status", type=click.Choice(["pending", "running", "done", "failed", "cancelled", "expired"])
)
def actions_list(s: Session, agent_id: str | None, status: str | None) -> None:
    rows = s.call("GET", "/actions", agentId=agent_id, status=status)
    lines = [
        [
            a["id"],
            a["agentId"],
            a["type"],
            a["status"],
            a["createdAt"],
            json.dumps(a["payload"]),
            json.dumps(a["result"]) if a["result"] else "-",
        ]
        for a in rows
    ]
    headers = ("ID", "AGENT", "TYPE", "STATUS", "CREATED", "PAYLOAD", "RESULT")
    s.emit(rows, table(headers, lines) if rows else "no actions")


@admin_command(actions, "cancel")
@click.argument("action_id")
def actions_cancel(s: Session, action_id: str) -> None:
    a = s.call("POST", f"/actions/{action_id}/cancel")
    s.emit(a, f"cancelled action {a['id']}")
