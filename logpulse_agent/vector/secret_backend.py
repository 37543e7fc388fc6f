"""``logpulse-agent vector-secret``: Vector's ``exec`` secret backend for the agent token.

Vector runs the backend's ``command`` whenever it loads its config (start, reload, validate),
writes one JSON request on its stdin and reads one JSON object from its stdout (vectordotdev/
vector ``src/secrets/exec.rs``)::

    request   {"version": "1.0", "secrets": ["agent_token"]}
              (protocol 1.1 adds "type" and "config"; we accept and ignore them)
    response  {"agent_token": {"value": "AGT_…", "error": null}}

A key whose entry has an ``error``, an empty ``value`` or no entry at all fails Vector's load
("secret for key 'k' was not retrieved: …"). Vector logs each line the backend writes on stderr
as a warning, so stderr carries our diagnostics — never the token.

The rendered config says ``SECRET[logpulse.agent_token]``: the token is never written into any
YAML file and never passes through the environment.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

AGENT_TOKEN_KEY = "agent_token"  # noqa: S105 (a key name, not a secret)
SUPPORTED_VERSIONS = ("1.0", "1.1")


class MalformedRequest(ValueError):
    """Raised when stdin does not hold a Vector exec-backend request."""


def secret_command(token_file: Path) -> list[str]:
    """The argv Vector runs to resolve ``SECRET[logpulse.agent_token]``.

    ``sys.executable -m logpulse_agent`` works from a venv and from a source checkout; in a
    frozen release bundle (SPEC §8) ``sys.executable`` is the agent itself.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, "vector-secret", "--token-file", str(token_file)]
    return [
        sys.executable,
        "-m",
        "logpulse_agent",
        "vector-secret",
        "--token-file",
        str(token_file),
    ]


def parse_request(request: bytes) -> list[str]:
    """The secret keys Vector asks for; raises :class:`MalformedRequest` on anything else."""
    try:
        document = json.loads(request)
    except (UnicodeDecodeError, ValueError):
        raise MalformedRequest("request on stdin is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedRequest("request must be a JSON object")
    version = document.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise MalformedRequest(
            f"unsupported protocol version {version!r} (expected one of "
            f"{', '.join(SUPPORTED_VERSIONS)})"
        )
    keys = document.get("secrets")
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise MalformedRequest("'secrets' must be a list of key names")
    return list(keys)


def respond(request: bytes, token: str | None, unavailable: str = "no agent token") -> bytes:
    """Answer one request: the token for ``agent_token``, an error entry for any other key.

    ``token`` is None when the agent has none; ``unavailable`` then says why (it ends up in
    Vector's log, so it must not contain a secret). Raises :class:`MalformedRequest`.
    """
    answer: dict[str, dict[str, Any]] = {}
    for key in parse_request(request):
        if key != AGENT_TOKEN_KEY:
            error = f"unknown secret key {key!r}: logpulse-agent provides only {AGENT_TOKEN_KEY!r}"
            answer[key] = {"value": None, "error": error}
        elif token:
            answer[key] = {"value": token, "error": None}
        else:
            answer[key] = {"value": None, "error": unavailable}
    return json.dumps(answer).encode("utf-8") + b"\n"


def read_token(token_file: Path) -> tuple[str | None, str]:
    """The token in ``token_file`` (None when absent or unreadable) and, if None, why."""
    try:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None, f"no agent token: {token_file} does not exist (enrol this host first)"
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return None, f"cannot read agent token {token_file}: {reason}"
    if not token:
        return None, f"no agent token: {token_file} is empty (enrol this host again)"
    return token, ""


def main(token_file: Path, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Serve one request from ``stdin`` on ``stdout``; 0 when answered, 1 on a bad request.

    On a bad request stdout still gets ``{}`` so Vector reports the missing key cleanly, and
    stderr (which Vector logs) gets the reason.
    """
    token, unavailable = read_token(token_file)
    try:
        answer = respond(stdin.read(), token, unavailable)
    except MalformedRequest as exc:
        sys.stderr.write(f"logpulse-agent vector-secret: {exc}\n")
        stdout.write(b"{}\n")
        stdout.flush()
        return 1
    stdout.write(answer)
    stdout.flush()
    return 0


def _cli(argv: Sequence[str] | None = None) -> int:
    """``python -m logpulse_agent.vector.secret_backend --token-file PATH`` (tests, debugging)."""
    import argparse  # here, not at the top: the daemon imports this module and never parses

    parser = argparse.ArgumentParser(prog="logpulse-agent vector-secret")
    parser.add_argument("--token-file", type=Path, required=True)
    args = parser.parse_args(argv)
    return main(args.token_file, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(_cli())
