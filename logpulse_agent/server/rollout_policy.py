"""A group's rollout policy (SPEC §11.3): parsing, the defaults, and how big each phase is.

    {"strategy": "immediate"}                                   the default: one poll, everyone
    {"strategy": "staged", "phases": [1, "10%", "50%", "100%"],
     "soakSeconds": 120, "maxFailures": 0}

Phases are cumulative: an integer is a number of agents, ``"N%"`` a share of the group (rounded
up, so ``"1%"`` of 50 agents is 1 agent). ``"50%"`` of 10 agents is 5 agents *in total*, not 5
more. The last phase must be ``"100%"``: a rollout that completes has reached every agent.
Omitted staged fields take the defaults above. Pure functions only; :class:`PolicyError` carries
the one-line message the API answers with (422).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

Phase = int | str

DEFAULT_PHASES: tuple[Phase, ...] = (1, "10%", "50%", "100%")
DEFAULT_SOAK_SECONDS = 120.0
DEFAULT_MAX_FAILURES = 0
MAX_PHASES = 20
MAX_SOAK_SECONDS = 7 * 86400
_PERCENT_RE = re.compile(r"^(\d{1,3}(?:\.\d{1,3})?)%$")
_STAGED_FIELDS = {"strategy", "phases", "soakSeconds", "maxFailures"}


class PolicyError(ValueError):
    """Raised when a rollout policy or a phase list is not usable; ``str()`` says why."""


@dataclass(frozen=True)
class Policy:
    """A checked policy. ``phases``/``soak_seconds``/``max_failures`` matter for ``staged``."""

    strategy: str = "immediate"
    phases: tuple[Phase, ...] = DEFAULT_PHASES
    soak_seconds: float = DEFAULT_SOAK_SECONDS
    max_failures: int = DEFAULT_MAX_FAILURES

    @property
    def staged(self) -> bool:
        return self.strategy == "staged"

    def to_json(self) -> dict[str, Any]:
        """The API form; ``immediate`` is just ``{"strategy": "immediate"}``."""
        if not self.staged:
            return {"strategy": "immediate"}
        return {"strategy": "staged", **self.stages_json()}

    def stages_json(self) -> dict[str, Any]:
        soak: float | int = self.soak_seconds
        if float(soak).is_integer():
            soak = int(soak)
        return {"phases": list(self.phases), "soakSeconds": soak, "maxFailures": self.max_failures}


IMMEDIATE = Policy()


def _percent(text: str) -> float | None:
    match = _PERCENT_RE.match(text)
    return None if match is None else float(match.group(1))


def check_phases(phases: Any) -> tuple[Phase, ...]:
    """The phase list, checked: 1-20 cumulative steps, growing, ending with ``"100%"``."""
    if not isinstance(phases, list) or not phases:
        raise PolicyError('phases must be a non-empty list such as [1, "10%", "100%"]')
    if len(phases) > MAX_PHASES:
        raise PolicyError(f"phases: at most {MAX_PHASES} phases, got {len(phases)}")
    counts: list[int] = []
    shares: list[float] = []
    for index, phase in enumerate(phases):
        if isinstance(phase, bool) or not isinstance(phase, (int, str)):
            raise PolicyError(f"phases[{index}]: {phase!r} is neither a count nor a percentage")
        if isinstance(phase, int):
            if phase < 1:
                raise PolicyError(f"phases[{index}]: a count of agents must be at least 1")
            if counts and phase <= counts[-1]:
                raise PolicyError(f"phases[{index}]: counts must grow (phases are cumulative)")
            counts.append(phase)
            continue
        share = _percent(phase)
        if share is None or not 0 < share <= 100:
            raise PolicyError(f'phases[{index}]: {phase!r} is not a percentage like "10%"')
        if shares and share <= shares[-1]:
            raise PolicyError(f"phases[{index}]: percentages must grow (phases are cumulative)")
        shares.append(share)
    if phases[-1] != "100%":
        raise PolicyError('phases must end with "100%" so that a completed rollout reaches all')
    return tuple(phases)


def parse(value: Any) -> Policy:
    """A policy from its JSON form (the ``rollout`` of a group PATCH)."""
    if not isinstance(value, dict):
        raise PolicyError("rollout must be an object with a strategy")
    strategy = value.get("strategy")
    if strategy == "immediate":
        extra = sorted(set(value) - {"strategy"})
        if extra:
            raise PolicyError(f"rollout: {', '.join(extra)} only apply to the staged strategy")
        return IMMEDIATE
    if strategy != "staged":
        raise PolicyError('rollout.strategy must be "immediate" or "staged"')
    unknown = sorted(set(value) - _STAGED_FIELDS)
    if unknown:
        raise PolicyError(f"rollout: unknown field(s) {', '.join(unknown)}")
    return Policy("staged", *parse_stages(value))


def parse_stages(value: dict[str, Any]) -> tuple[tuple[Phase, ...], float, int]:
    """``(phases, soak_seconds, max_failures)`` from a body, with the defaults filled in."""
    phases = check_phases(value.get("phases", list(DEFAULT_PHASES)))
    soak = value.get("soakSeconds", DEFAULT_SOAK_SECONDS)
    if isinstance(soak, bool) or not isinstance(soak, (int, float)) or not math.isfinite(soak):
        raise PolicyError("soakSeconds must be a number of seconds")
    if not 0 <= soak <= MAX_SOAK_SECONDS:
        raise PolicyError(f"soakSeconds must be between 0 and {MAX_SOAK_SECONDS}")
    failures = value.get("maxFailures", DEFAULT_MAX_FAILURES)
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
        raise PolicyError("maxFailures must be a whole number, 0 or more")
    return phases, float(soak), failures


def load(text: str | None) -> Policy:
    """The policy stored in ``agent_groups.rollout_policy`` (``NULL`` → immediate)."""
    return IMMEDIATE if text is None else parse(json.loads(text))


def dump(policy: Policy) -> str | None:
    """The stored form: ``NULL`` for the default."""
    if not policy.staged:
        return None
    return json.dumps(policy.to_json(), separators=(",", ":"))


def phase_target(phase: Phase, total: int) -> int:
    """How many agents a (cumulative) phase covers in a group of ``total`` agents."""
    if isinstance(phase, int):
        return min(phase, total)
    share = _percent(phase)
    assert share is not None  # checked by check_phases
    # Rounded up (a phase of a non-empty group has someone in it); the small epsilon keeps
    # 10% of 10 at 1, not 2, despite float error.
    return min(total, math.ceil(share * total / 100 - 1e-9))
