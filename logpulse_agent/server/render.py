"""Rendering a group's inputs into the Vector YAML an agent runs (SPEC §7, "Rendering").

Target: Vector 0.57.x, the first release with the two breaking changes this output is shaped by,
and every option used is still present in the newest reference stored (0.59.0). Facts checked,
all in vectordotdev/vector:

- ``website/cue/reference/releases/0.57.0.cue``: sinks reject ``{{ field }}`` templates without a
  literal prefix, and ``${VAR}`` is no longer interpolated. Hence literal routing values, one sink
  per distinct (index, sourcetype, source), and the token passed as a secret.
- ``src/template.rs``: a string is a template when it contains ``{{ … }}`` *or* any strftime item
  (``%Y``), and an invalid ``%`` item is a parse error. Hence routing values with ``{``, ``}`` or
  ``%`` are rejected (:func:`validate_routing_override`).
- ``website/cue/reference/components/sinks/generated/splunk_hec_logs.cue``: type
  ``splunk_hec_logs``; required ``endpoint`` (base URL, scheme required, no path),
  ``default_token`` and ``encoding.codec``; ``index``, ``sourcetype``, ``source`` are optional
  template strings. ``src/sinks/splunk_hec/logs/encoder.rs``: with the default
  ``endpoint_target: event`` a codec that supports JSON sends the whole event as a JSON object, so
  ``encoding.codec: json`` keeps structured fields (journald, Kubernetes metadata); ``text`` would
  send only ``message``.
- ``releases/0.58.0.cue``: sink ``endpoint`` must be an absolute http(s) URL with a host; the
  ``http_server`` source lost its legacy ``encoding`` option (``render_inputs`` sets ``decoding``).
- Secret placeholders: ``src/config/loading/secret.rs`` matches
  ``SECRET\\[([[:word:]]+)\\.([[:word:].-]+)\\]``, so ``SECRET[logpulse.agent_token]`` is
  resolved by the agent's exec backend named ``logpulse`` (SPEC §6) and the token never appears
  in YAML.
- Sources, from ``website/cue/reference/components/sources/generated/<type>.cue``: ``syslog``
  (``mode`` tcp/udp/unix, ``address`` for tcp/udp, ``path`` for unix), ``file`` (``include``
  required), ``journald`` (``include_units``, ``exclude_units``, ``current_boot_only``…), ``kafka``
  (``bootstrap_servers``, ``group_id``, ``topics`` required), ``kubernetes_logs`` (selectors; its
  ``self_node_name`` defaults to the literal ``${VECTOR_SELF_NODE_NAME}``, which the source itself
  reads from the environment, see ``src/sources/kubernetes_logs/mod.rs``, so it needs no
  interpolation and is not emitted), ``socket`` (``mode`` tcp/udp/unix_datagram/unix_stream),
  ``http_server`` (``address`` required, ``decoding.codec``), ``demo_logs`` (``format``
  required, ``lines`` required for ``shuffle``). The accepted subset is in ``render_inputs.py``.

Component ids. A source is named ``in_<the 32 hex digits of its input UUID>`` (an id that is not
a UUID is replaced by 32 hex digits of its sha256). All 32 digits, not a prefix: the leading
digits of a time-ordered UUID (v7) are a millisecond timestamp, so two inputs created together
would share a short prefix. Vector keys file and journald checkpoints, and buffers, by component
id, so renaming an input must not rename its component: the name is not used at all. A sink is
named ``out_<first 12 hex digits of sha256(index NUL sourcetype NUL source)>``. So no id starts
with ``logpulse_``, which SPEC 11.1 reserves for the agent's own components; rendering checks it.

What Vector reads must be what was stored, and load and build must succeed: option values are
checked by ``render_inputs`` (rules in ``addresses``, ``patterns``, ``limits``), inputs claiming
one listener by ``listeners``, ``config_text`` refuses text Vector would not read back, and
``render_yaml`` writes YAML serde_yaml reads back exactly.

No global options are emitted (``data_dir``, ``api``, ``secret``…): the agent owns them. A group
with no applicable enabled input renders exactly ``b"{}"`` (no newline), which the agent treats as
"stop Vector". Output is deterministic: same inputs, in any order, give the same bytes.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from logpulse_agent.server.addresses import url_host_problem
from logpulse_agent.server.config_text import check_text, text_problem
from logpulse_agent.server.listeners import Listener, first_clash, listeners
from logpulse_agent.server.render_inputs import INPUT_TYPES, validate_input
from logpulse_agent.server.render_yaml import dump_config

__all__ = [
    "EMPTY_CONFIG",
    "INPUT_TYPES",
    "PLATFORMS",
    "RESERVED_PREFIX",
    "IngestSettings",
    "InputSpec",
    "applies_to",
    "config_etag",
    "render_config",
    "routing_for",
    "sink_id",
    "source_id",
    "validate_input",
    "validate_routing_override",
]

PLATFORMS = frozenset({"linux", "kubernetes"})
# Types tied to one platform; every other type applies to both.
_ONLY_ON: dict[str, str] = {"journald": "linux", "kubernetes_logs": "kubernetes"}

EMPTY_CONFIG = b"{}"
# A reference resolved by the agent's exec secret backend, not a credential.
TOKEN_REFERENCE = "SECRET[logpulse.agent_token]"  # noqa: S105
DEFAULT_INDEX = "main"
DEFAULT_SOURCE = "logpulse-agent"
HEADER = (
    b"# Vector configuration rendered by the LogPulse control plane for its agents.\n"
    b"# Do not edit: the agent replaces this file whenever the group's inputs change.\n"
)

ROUTING_FIELDS = ("index", "sourcetype", "source")
_MAX_ROUTING = 256
# Splunk's index naming rule: lower-case letters, digits, '_' and '-', not starting with either.
_INDEX_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,79}")
# SPEC 11.1: component ids starting with this belong to the agent's own globals file.
RESERVED_PREFIX = "logpulse_"


@dataclass(frozen=True)
class InputSpec:
    """One input of a group, as stored by the control plane.

    ``id`` is the stable input id (a UUID string); component ids derive from it, never from
    ``name``. ``options`` are the type-specific Vector options (see ``validate_input``). An
    override of ``None`` or ``""`` means "use the default".
    """

    id: str
    type: str
    name: str
    options: Mapping[str, Any]
    enabled: bool = True
    index_override: str | None = None
    sourcetype_override: str | None = None
    source_override: str | None = None


@dataclass(frozen=True)
class IngestSettings:
    """Where agents send events: the LogPulse HEC-style ingest base URL (no path)."""

    endpoint: str


def applies_to(type: str, platform: str) -> bool:
    """Whether an input of ``type`` runs on an agent of ``platform``."""
    return _ONLY_ON.get(type, platform) == platform


def validate_routing_override(field: str, value: object) -> str | None:
    """Check one routing override (``index``, ``sourcetype`` or ``source``).

    Returns the value, or ``None`` for ``None``/``""`` (no override). Raises ``ValueError`` when
    Vector would not send it literally: ``{``, ``}`` or ``%`` (template syntax, see the module
    docstring), control characters, surrounding spaces, secret/environment references, tokens,
    more than 256 characters, or for ``index`` anything outside Splunk's index naming rule.
    The admin API calls this when an input is saved; rendering calls it again.
    """
    if field not in ROUTING_FIELDS:
        raise ValueError(f"unknown routing field {field!r} (known: {', '.join(ROUTING_FIELDS)})")
    if value is None or value == "":
        return None
    what = f"{field} override"
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string (got {type(value).__name__})")
    if len(value) > _MAX_ROUTING:
        raise ValueError(f"{what} is longer than {_MAX_ROUTING} characters")
    problem = text_problem(value)
    if problem:
        raise ValueError(f"{what} {problem}")
    if value != value.strip():
        raise ValueError(f"{what} must not start or end with spaces")
    check_text(value, "routing", what)
    if any(c in value for c in "{}%"):
        raise ValueError(
            f"{what} must be a literal value: '{{', '}}' and '%' would make Vector treat it "
            "as a template"
        )
    if field == "index" and not _INDEX_RE.fullmatch(value):
        raise ValueError(
            f"{what} must be 1-80 lower-case letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def routing_for(spec: InputSpec) -> tuple[str, str, str]:
    """The (index, sourcetype, source) an input's events are sent with, defaults applied."""
    index = validate_routing_override("index", spec.index_override)
    sourcetype = validate_routing_override("sourcetype", spec.sourcetype_override)
    source = validate_routing_override("source", spec.source_override)
    return (
        index or DEFAULT_INDEX,
        sourcetype or f"agent_{spec.type}",
        source or DEFAULT_SOURCE,
    )


def source_id(input_id: str) -> str:
    """The Vector component id of an input's source; stable across renames of the input."""
    if not input_id:
        raise ValueError("input id must not be empty")
    try:
        digits = uuid.UUID(input_id).hex
    except ValueError:
        digits = hashlib.sha256(input_id.encode()).hexdigest()
    return f"in_{digits[:32]}"


def sink_id(routing: tuple[str, str, str]) -> str:
    """The Vector component id of the ingest sink for one routing triple."""
    digest = hashlib.sha256("\0".join(routing).encode()).hexdigest()
    return f"out_{digest[:12]}"


def config_etag(body: bytes) -> str:
    """The etag of a rendered body: ``sha256:<hex>``, as sent in ``x-config-etag``."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def render_config(inputs: Sequence[InputSpec], platform: str, ingest: IngestSettings) -> bytes:
    """Render the Vector YAML for an agent of ``platform`` in a group with ``inputs``.

    Disabled inputs and inputs of another platform are left out; when nothing is left the result
    is exactly ``b"{}"``. Raises ``ValueError`` for an unknown platform, a bad ingest endpoint,
    duplicate input ids, an included input whose type, options or overrides are invalid, or
    two included inputs claiming one listener (the message names the input id). No component
    id starts with :data:`RESERVED_PREFIX`: sources are ``in_…`` and sinks ``out_…``.
    """
    if platform not in PLATFORMS:
        raise ValueError(f"unknown platform {platform!r} (known: {', '.join(sorted(PLATFORMS))})")
    endpoint = _check_endpoint(ingest.endpoint)
    seen: set[str] = set()
    sources: dict[str, dict[str, Any]] = {}
    routes: dict[tuple[str, str, str], list[str]] = {}
    claimed: list[tuple[str, list[Listener]]] = []
    for spec in inputs:
        if spec.id in seen:
            raise ValueError(f"duplicate input id {spec.id!r}")
        seen.add(spec.id)
        if not spec.enabled:
            continue
        try:
            if spec.type not in INPUT_TYPES:
                validate_input(spec.type, spec.options)  # raises "unknown input type …"
            if not applies_to(spec.type, platform):
                continue
            options = validate_input(spec.type, spec.options)
            routing = routing_for(spec)
            component = _component_id(source_id(spec.id))
        except ValueError as exc:
            raise ValueError(f"input {spec.id}: {exc}") from None
        if component in sources:
            raise ValueError(f"input {spec.id}: component id {component} is already taken")
        mine = listeners(spec.type, options)
        clash = first_clash(mine, claimed)
        if clash is not None:
            owner, held = clash
            raise ValueError(f"input {spec.id}: {held} is already claimed by input {owner}")
        claimed.append((spec.id, mine))
        sources[component] = {**options, "type": spec.type}
        routes.setdefault(routing, []).append(component)
    if not sources:
        return EMPTY_CONFIG
    sinks: dict[str, dict[str, Any]] = {}
    for routing, components in routes.items():
        name = _component_id(sink_id(routing))
        if name in sinks:  # two triples sharing 48 bits of sha256; never seen, never silent
            raise ValueError(f"sink id {name} collides for routing {routing}")
        index, sourcetype, source = routing
        sinks[name] = {
            "type": "splunk_hec_logs",
            "inputs": sorted(components),
            "endpoint": endpoint,
            "default_token": TOKEN_REFERENCE,
            "encoding": {"codec": "json"},
            "index": index,
            "sourcetype": sourcetype,
            "source": source,
        }
    return HEADER + dump_config({"sources": sources, "sinks": sinks})


def _component_id(name: str) -> str:
    """``name``, checked against SPEC 11.1's reserved prefix (generated ids never have it)."""
    if name.startswith(RESERVED_PREFIX):
        raise ValueError(f"component id {name} would use the agent's reserved prefix")
    return name


def _check_endpoint(url: str) -> str:
    """An absolute http(s) base URL with a host and no path, query or credentials, whose host
    and port every agent can send to (``addresses.url_host_problem``)."""
    problem = "must be an http(s) base URL with a host and no path, e.g. https://ingest.example"
    if not isinstance(url, str) or text_problem(url) or " " in url:
        raise ValueError(f"ingest endpoint {problem}")
    check_text(url, "ingest", "endpoint")
    if not url.isascii():  # Vector's http::Uri refuses it at load
        raise ValueError(
            "ingest endpoint must be ASCII: write an internationalised host name in its "
            "xn-- (punycode) form"
        )
    try:
        parts = urlsplit(url)  # raises ValueError for a malformed [IPv6] host
        port = parts.port  # and for a malformed port
    except ValueError:
        raise ValueError(f"ingest endpoint {problem}") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.netloc.endswith(":")
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or any(c in url for c in "{}%")
    ):
        raise ValueError(f"ingest endpoint {problem}")
    host_problem = url_host_problem(parts.hostname, port)
    if host_problem:
        raise ValueError(f"ingest endpoint {host_problem}")
    return f"{parts.scheme}://{parts.netloc}"
