"""``logpulse-server rollout …``: staged rollouts from the command line (SPEC §11.3).

rollout status GROUP            the group's latest config rollout (or --id ROLLOUT_ID)
rollout pause|resume|abort GROUP [--reason TEXT]
rollout list [--group GROUP] [--kind config|upgrade]
rollout policy GROUP --strategy staged --phases 1,10%,50%,100% --soak 2m --max-failures 0
rollout upgrade --version X (--group GROUP | AGENT_ID…) [--phases …] [--soak …]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from logpulse_agent.server.admin_client import Session, admin_command, parse_duration, table


@click.group()
def rollout() -> None:
    """Staged rollouts of configs and upgrades: status, pause, resume, abort, policy."""


def _phases(text: str) -> list[int | str]:
    """``"1,10%,100%"`` → ``[1, "10%", "100%"]`` (checked by the server)."""
    items: list[int | str] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise click.BadParameter(f"{text!r} has an empty phase")
        items.append(int(part) if part.isdigit() else part)
    return items


def _path(group_ref: str | None, rollout_id: str | None) -> str:
    if rollout_id:
        return f"/rollouts/{rollout_id}"
    if not group_ref:
        raise click.UsageError("give GROUP or --id ROLLOUT_ID")
    return f"/groups/{group_ref}/rollout"


def _when(stamp: str | None) -> str:
    return "-" if stamp is None else stamp.replace("T", " ").replace("Z", "")


def describe(r: dict[str, Any]) -> str:
    """The readable ``rollout status``: state and reason first, then phases, failures, history."""
    where = f"group {r['groupSlug']}" if r["groupSlug"] else "selected agents"
    what = (
        f"version {r['fromVersion']} → {r['toVersion']}"
        if r["kind"] == "config"
        else f"upgrade to {r['targetVersion']}"
    )
    phases = ", ".join(str(p) for p in r["phases"])
    c = r["counts"]
    lines = [
        f"rollout {r['id'][:8]} ({r['kind']}, {where}): {r['state'].upper()}",
        f"{what}; phase {r['phase']} of {len(r['phases'])} (phases {phases};"
        f" soak {r['soakSeconds']} s; max failures {r['maxFailures']})",
    ]
    if r["reason"]:
        lines.append(f"reason: {r['reason']}")
    lines.append(
        f"agents: admitted {c['admitted']}, applied {c['applied']}, healthy {c['healthy']},"
        f" failed {c['failed']}, waiting {c['waiting']}"
    )
    lines.append(f"started by {r['startedBy']} at {_when(r['startedAt'])}")
    rows = [
        [
            p["phase"],
            p["size"],
            p["admitted"] if p["startedAt"] else "-",
            p["failed"],
            p["result"],
            _when(p["startedAt"]),
            _when(p["passedAt"]),
        ]
        for p in r["phaseResults"]
    ]
    lines += [
        "",
        table(("PHASE", "SIZE", "ADMITTED", "FAILED", "RESULT", "STARTED", "PASSED"), rows),
    ]
    failed = r.get("failedAgents") or []
    if failed:
        rows = [
            [
                f"{f['hostname']} ({f['agentId'][:8]})",
                f["phase"],
                _when(f["failedAt"]),
                f["failure"],
            ]
            for f in failed
        ]
        lines += ["", table(("FAILED AGENT", "PHASE", "AT", "FAILURE"), rows)]
    events = r.get("events") or []
    if events:
        rows = [[_when(e["at"]), e["kind"], e["actor"], e["reason"] or ""] for e in events]
        lines += ["", table(("WHEN", "EVENT", "BY", "DETAIL"), rows)]
    return "\n".join(lines)


@admin_command(rollout, "status")
@click.argument("group_ref", metavar="[GROUP]", required=False)
@click.option("--id", "rollout_id", help="A rollout id instead of a group (staged upgrades).")
def rollout_status(s: Session, group_ref: str | None, rollout_id: str | None) -> None:
    """Show the group's latest config rollout: state, reason, phases, failures, history."""
    r = s.call("GET", _path(group_ref, rollout_id))
    s.emit(r, describe(r))


def _command(verb: str, help_text: str) -> None:
    @admin_command(rollout, verb)
    @click.argument("group_ref", metavar="[GROUP]", required=False)
    @click.option("--id", "rollout_id", help="A rollout id instead of a group.")
    @click.option("--reason", help="Why; recorded in the rollout's history.")
    def run(s: Session, group_ref: str | None, rollout_id: str | None, reason: str | None) -> None:
        body = {"reason": reason} if reason else None
        r = s.call("POST", f"{_path(group_ref, rollout_id)}/{verb}", body)
        s.emit(r, describe(r))

    run.help = help_text


_command("pause", "Pause: no further phase is admitted (a failure still halts and rolls back).")
_command("resume", "Resume a paused rollout.")
_command("abort", "Abort and roll back: every agent is served the previous version again.")


@admin_command(rollout, "list")
@click.option("--group", "group_ref", help="Only this group's rollouts.")
@click.option("--kind", type=click.Choice(["config", "upgrade"]))
def rollout_list(s: Session, group_ref: str | None, kind: str | None) -> None:
    """Past and present rollouts, newest first."""
    found = s.call("GET", "/rollouts", group=group_ref, kind=kind)
    rows = [
        [
            r["id"][:8],
            r["kind"],
            r["groupSlug"] or "-",
            f"{r['fromVersion']}→{r['toVersion']}" if r["kind"] == "config" else r["targetVersion"],
            r["state"],
            f"{r['phase']}/{len(r['phases'])}",
            r["counts"]["failed"],
            r["startedBy"],
            _when(r["startedAt"]),
        ]
        for r in found
    ]
    headers = ("ID", "KIND", "GROUP", "CHANGE", "STATE", "PHASE", "FAILED", "BY", "STARTED")
    s.emit(found, table(headers, rows) if found else "no rollouts")


def _stages(phases: str | None, soak: str | None, max_failures: int | None) -> dict[str, Any]:
    stages: dict[str, Any] = {}
    if phases is not None:
        stages["phases"] = _phases(phases)
    if soak is not None:
        stages["soakSeconds"] = parse_duration(soak)
    if max_failures is not None:
        stages["maxFailures"] = max_failures
    return stages


_PHASES_HELP = 'Cumulative phases, e.g. "1,10%,50%,100%" (must end with 100%).'


@admin_command(rollout, "policy")
@click.argument("group_ref", metavar="GROUP")
@click.option("--strategy", type=click.Choice(["immediate", "staged"]), required=True)
@click.option("--phases", help=_PHASES_HELP)
@click.option("--soak", help="How long admitted agents must stay healthy: 30s, 2m.")
@click.option("--max-failures", type=click.IntRange(0), help="Failures tolerated (default 0).")
def rollout_policy(
    s: Session,
    group_ref: str,
    strategy: str,
    phases: str | None,
    soak: str | None,
    max_failures: int | None,
) -> None:
    """Set the group's rollout policy; it applies from the next config change."""
    policy = {"strategy": strategy, **_stages(phases, soak, max_failures)}
    g = s.call("PATCH", f"/groups/{group_ref}", {"rollout": policy})
    s.emit(g, f"group {g['slug']}: rollout policy {_policy_text(g['rollout'])}")


def _policy_text(policy: dict[str, Any]) -> str:
    if policy["strategy"] == "immediate":
        return "immediate (every agent at its next poll)"
    phases = ", ".join(str(p) for p in policy["phases"])
    return (
        f"staged: phases {phases}; soak {policy['soakSeconds']} s;"
        f" max failures {policy['maxFailures']}"
    )


@admin_command(rollout, "upgrade")
@click.argument("agent_ids", metavar="[AGENT_ID...]", nargs=-1)
@click.option("--group", "group_ref", help="Upgrade this group's agents (instead of AGENT_IDs).")
@click.option("--version", "target", required=True, help="Target agent version, e.g. 0.4.2.")
@click.option("--phases", help=_PHASES_HELP + " Default 1,10%,50%,100%.")
@click.option("--soak", help="How long upgraded agents must stay healthy (default 2m).")
@click.option("--max-failures", type=click.IntRange(0), help="Failures tolerated (default 0).")
@click.option("--deadline", default="30m", show_default=True, help="Each action expires after.")
def rollout_upgrade(
    s: Session,
    agent_ids: Sequence[str],
    group_ref: str | None,
    target: str,
    phases: str | None,
    soak: str | None,
    max_failures: int | None,
    deadline: str,
) -> None:
    """A staged bulk upgrade: actions phase by phase, each gated on the upgraded agents' health."""
    if bool(agent_ids) == bool(group_ref):
        raise click.UsageError("give either --group GROUP or AGENT_IDs")
    body: dict[str, Any] = {
        "targetVersion": target,
        "deadlineSeconds": parse_duration(deadline),
        **_stages(phases, soak, max_failures),
    }
    body.update({"group": group_ref} if group_ref else {"agentIds": list(agent_ids)})
    r = s.call("POST", "/upgrades", body)
    s.emit(r, f"started staged upgrade {r['id']}\n" + describe(r))
