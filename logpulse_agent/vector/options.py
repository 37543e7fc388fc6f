"""Vector's global options, owned by the agent, and when a config change needs a restart.

The control plane's YAML carries only components (sources, transforms, sinks); the agent writes
a second file with the *global* options it owns — ``data_dir`` under the state directory and the
``logpulse`` exec secret backend — and runs ``vector --config-yaml <options> --config-yaml
<components>``. Vector merges the two files.

A SIGHUP reload cannot change a global option: Vector refuses it with "Global options can't be
changed while reloading config file; reload aborted." and keeps the old pipeline (vectordotdev/
vector ``src/topology/running.rs``, ``reload_config_and_respawn``). :func:`requires_restart` tells
config sync to restart Vector instead of reloading it when that would happen.

Everything here is pure: text in, values out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from logpulse_agent.vector.secret_backend import secret_command

__all__ = [
    "COMPONENT_KEYS",
    "SECRET_BACKEND",
    "global_options",
    "render_global_options",
    "requires_restart",
    "secret_command",
]

# The name of the secret backend a rendered config refers to as ``SECRET[logpulse.agent_token]``.
SECRET_BACKEND = "logpulse"  # noqa: S105 (a key name, not a secret)

# Top-level keys that hold components or secret backends: Vector rebuilds these on a reload.
# Every other top-level key (``data_dir``, ``api``, ``log_schema``, ``acknowledgements``, ...) is
# a global option the running topology cannot change (vectordotdev/vector
# ``src/config/builder.rs``: ``ConfigBuilder`` = flattened ``GlobalOptions`` + these tables).
COMPONENT_KEYS = frozenset(
    {"sources", "transforms", "sinks", "enrichment_tables", "tests", "secret"}
)

# Vector's exec backend times out after 5 s by default (``src/secrets/exec.rs``,
# ``default_timeout_secs``); a Python interpreter starting on a loaded host can take longer.
DEFAULT_SECRET_TIMEOUT = 15

_HEADER = (
    "# Written by logpulse-agent: Vector's global options. Do not edit; the agent rewrites it.\n"
    "# The control plane's config (vector.yaml) carries only components.\n"
)


def render_global_options(
    data_dir: Path,
    secret_command: Sequence[str],
    secret_timeout: int = DEFAULT_SECRET_TIMEOUT,
) -> str:
    """The YAML of the agent-owned global options file.

    ``data_dir`` is where Vector keeps checkpoints and disk buffers; it must exist before Vector
    starts. ``secret_command`` is the argv Vector runs to resolve ``SECRET[logpulse.…]``.
    """
    document: dict[str, Any] = {
        "data_dir": str(data_dir),
        "secret": {
            SECRET_BACKEND: {
                "type": "exec",
                "command": [str(arg) for arg in secret_command],
                "timeout": secret_timeout,
            }
        },
    }
    return _HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


# libyaml's loader when PyYAML has it: the pure-Python one takes most of a minute on a config of
# a few MiB (the body cap is 16 MiB).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def global_options(yaml_text: str) -> dict[str, Any]:
    """The top-level entries of a Vector YAML config that are not component tables.

    Raises :class:`ValueError` when ``yaml_text`` is not YAML or not a mapping.
    """
    try:
        document = yaml.load(yaml_text, Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ValueError("a Vector config must be a mapping at the top level")
    return {key: value for key, value in document.items() if key not in COMPONENT_KEYS}


def requires_restart(old_text: str | None, new_text: str) -> bool:
    """Whether going from ``old_text`` to ``new_text`` needs a restart rather than a SIGHUP.

    True when the global options differ, when there is no old config to compare with, or when
    either side cannot be parsed (a restart is always correct, a reload only sometimes).
    """
    if old_text is None:
        return True
    try:
        return global_options(old_text) != global_options(new_text)
    except ValueError:
        return True
