"""Who this host is to the control plane: ``identity.json`` and the agent token.

    config_dir/agent-token      the AGT_ token, mode 0600 (created with that mode), nothing else
    state_dir/identity.json     {"agentId", "groupId", "apiUrl", "enrolledAt"}, mode 0640

Neither can be re-learned: a corrupt identity is a :class:`StateError` naming the file
(:class:`~logpulse_agent.state.records.Recovery` REQUIRED), never set aside silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from logpulse_agent.errors import NotEnrolled, StateError
from logpulse_agent.state import atomic
from logpulse_agent.state.layout import Layout
from logpulse_agent.state.records import DataclassCodec, RecordFile, Recovery

TOKEN_PREFIX = "AGT_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True)
class Identity:
    """Who this host is to the control plane."""

    agent_id: str
    group_id: str
    api_url: str
    enrolled_at: str = ""


class IdentityStore:
    """The identity and token files of ``layout``."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._identity = RecordFile(
            layout.identity,
            DataclassCodec(Identity, name="identity"),
            recovery=Recovery.REQUIRED,
        )

    def is_enrolled(self) -> bool:
        return self.layout.identity.exists() and self.layout.token.exists()

    def load(self) -> Identity:
        """The identity; :class:`NotEnrolled` without one, :class:`StateError` when corrupt."""
        identity = self._identity.load()
        if identity is None:
            raise NotEnrolled(f"not enrolled: {self.layout.identity} does not exist")
        return identity

    def save(self, identity: Identity, token: str) -> None:
        """Store the token (0600, created with that mode) and then the identity."""
        if not token.startswith(TOKEN_PREFIX):
            raise StateError("the control plane returned an agent token without the AGT_ prefix")
        atomic.write_text(self.layout.token, token + "\n", mode=0o600)
        self._identity.save(identity)

    def load_token(self) -> str:
        path = self.layout.token
        try:
            token = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise NotEnrolled(f"not enrolled: {path} does not exist") from None
        except OSError as exc:
            raise StateError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if not token.startswith(TOKEN_PREFIX):
            raise StateError(f"{path} does not hold an AGT_ token")
        return token
