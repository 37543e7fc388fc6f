"""The input types the control plane renders, and the Vector options each one may carry.

Each type accepts a deliberate subset of its Vector source's options: the ones an operator needs
to point the source at its data, with Vector's own names and types. Left out on purpose:
options that belong to the agent (``data_dir``: it owns Vector's state directory), options that
carry credentials (``auth``, ``sasl``, ``tls.key_pass``: the rendered YAML is stored and shown in
previews, and only the agent token travels as a secret), options that delete data
(``file.remove_after_secs``) or run commands (``journald.extra_args``, ``journalctl_path``), and
the long tail of tuning knobs. Adding one is a line here plus a golden-file update.

Options are checked against Vector's configuration reference, vectordotdev/vector
``website/cue/reference/components/sources/generated/<type>.cue`` (newest stored revision,
covering Vector 0.57-0.59), and for the mode-dependent sources the Rust config structs
(``src/sources/syslog.rs``: ``#[serde(tag = "mode")]``, so an option of another mode is an
unknown field, which is why ``when=`` rejects it here). See ``render.py`` for the full list.
Listen addresses, CIDR lists and broker lists follow ``addresses.py``, with the Vector source
of each rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from logpulse_agent.server.addresses import (
    broker_list_problem,
    cidr_problem,
    listen_address_problem,
    socket_address_problem,
)
from logpulse_agent.server.render_schema import (
    Opt,
    boolean,
    check_options,
    choice,
    number,
    obj,
    path,
    string,
    string_map,
    strings,
    uint,
)


def _url_path(value: str) -> str | None:
    return None if value.startswith("/") and " " not in value else "must start with '/'"


def _listener_tls(value: Mapping[str, Any]) -> str | None:
    # A TLS listener needs its identity: "When enabled and used for incoming connections, an
    # identity certificate is also required" (tls.enabled in socket.cue / http_server.cue).
    if value.get("enabled") and not ("crt_file" in value and "key_file" in value):
        return "needs crt_file and key_file when enabled"
    return None


_LISTENER_TLS = obj(
    {
        "enabled": boolean(),
        "crt_file": path(),
        "key_file": path(),
        "ca_file": path(),
        "verify_certificate": boolean(),
    },
    check=_listener_tls,
)
_CLIENT_TLS = obj(
    {
        "enabled": boolean(),
        "crt_file": path(),
        "key_file": path(),
        "ca_file": path(),
        "verify_certificate": boolean(),
        "verify_hostname": boolean(),
    }
)
# Codecs that decode to log events; `decoding.codec` in socket/kafka/http_server/demo_logs.cue.
_DECODING = obj({"codec": choice("bytes", "json", "syslog", "gelf", required=True)})
# `framing.method` of the same files, restricted to the methods that need no further options.
_FRAMING = obj({"method": choice("bytes", "newline_delimited", "octet_counting", required=True)})
_TCP_KEEPALIVE = obj({"time_secs": uint()})


def _when(key: str, *values: str) -> tuple[str, tuple[str, ...]]:
    return (key, values)


_TCP, _UDP = _when("mode", "tcp"), _when("mode", "udp")
_IP_MODES = _when("mode", "tcp", "udp")

SYSLOG: dict[str, Opt] = {  # generated/syslog.cue, src/sources/syslog.rs
    "mode": choice("tcp", "udp", "unix", required=True),
    "address": string(required=True, when=_IP_MODES, check=listen_address_problem),
    "path": path(required=True, when=_when("mode", "unix")),
    "max_length": uint(minimum=1),
    "connection_limit": uint(minimum=1, maximum=2**32 - 1, when=_TCP),
    "permit_origin": strings(when=_TCP, item_check=cidr_problem),
    "receive_buffer_bytes": uint(minimum=1, when=_when("mode", "tcp", "udp")),
    "socket_file_mode": uint(maximum=0o7777, when=_when("mode", "unix")),
    "keepalive": obj(_TCP_KEEPALIVE.fields, when=_TCP),
    "tls": obj(_LISTENER_TLS.fields, check=_listener_tls, when=_TCP),
}

_UNIX_SOCKET = _when("mode", "unix_datagram", "unix_stream")
SOCKET: dict[str, Opt] = {  # generated/socket.cue
    "mode": choice("tcp", "udp", "unix_datagram", "unix_stream", required=True),
    "address": string(required=True, when=_IP_MODES, check=listen_address_problem),
    "path": path(required=True, when=_UNIX_SOCKET),
    "max_length": uint(minimum=1, when=_UDP),
    "connection_limit": uint(minimum=1, maximum=2**32 - 1, when=_TCP),
    "permit_origin": strings(when=_TCP, item_check=cidr_problem),
    "receive_buffer_bytes": uint(minimum=1, when=_when("mode", "tcp", "udp")),
    "shutdown_timeout_secs": uint(when=_TCP),
    "socket_file_mode": uint(maximum=0o7777, when=_UNIX_SOCKET),
    "keepalive": obj(_TCP_KEEPALIVE.fields, when=_TCP),
    "tls": obj(_LISTENER_TLS.fields, check=_listener_tls, when=_TCP),
    "decoding": _DECODING,
    "framing": _FRAMING,
}

FILE: dict[str, Opt] = {  # generated/file.cue
    "include": strings(required=True, nonempty=True, absolute_path=True),
    "exclude": strings(absolute_path=True),
    "read_from": choice("beginning", "end"),
    "ignore_older_secs": uint(),
    "max_line_bytes": uint(minimum=1),
    "glob_minimum_cooldown_ms": uint(),
    "line_delimiter": string(allow_control=True),
    "oldest_first": boolean(),
}

JOURNALD: dict[str, Opt] = {  # generated/journald.cue
    "include_units": strings(),
    "exclude_units": strings(),
    "include_matches": string_map(),
    "exclude_matches": string_map(),
    "current_boot_only": boolean(),
    "since_now": boolean(),
    "batch_size": uint(minimum=1),
    "journal_directory": path(),
    "journal_namespace": string(),
}

KAFKA: dict[str, Opt] = {  # generated/kafka.cue
    "bootstrap_servers": string(required=True, check=broker_list_problem),
    "group_id": string(required=True),
    "topics": strings(required=True, nonempty=True),
    "auto_offset_reset": choice(
        "smallest", "earliest", "beginning", "largest", "latest", "end", "error"
    ),
    "commit_interval_ms": uint(minimum=1),
    "session_timeout_ms": uint(minimum=1),
    "socket_timeout_ms": uint(minimum=1),
    "fetch_wait_max_ms": uint(),
    "decoding": _DECODING,
    "framing": _FRAMING,
    "tls": _CLIENT_TLS,
}

KUBERNETES_LOGS: dict[str, Opt] = {  # generated/kubernetes_logs.cue
    "extra_label_selector": string(),
    "extra_field_selector": string(),
    "extra_namespace_label_selector": string(),
    "include_paths_glob_patterns": strings(),
    "exclude_paths_glob_patterns": strings(),
    "auto_partial_merge": boolean(),
    "insert_namespace_fields": boolean(),
    "max_line_bytes": uint(minimum=1),
    "glob_minimum_cooldown_ms": uint(),
    "ignore_older_secs": uint(),
    "delay_deletion_ms": uint(),
}

HTTP_SERVER: dict[str, Opt] = {  # generated/http_server.cue
    "address": string(required=True, check=socket_address_problem),
    "path": string(check=_url_path),
    "strict_path": boolean(),
    "method": choice("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"),
    "headers": strings(),
    "query_parameters": strings(),
    "response_code": uint(minimum=200, maximum=299),
    "decoding": _DECODING,
    "framing": _FRAMING,
    "tls": _LISTENER_TLS,
}

_SHUFFLE = _when("format", "shuffle")
DEMO_LOGS: dict[str, Opt] = {  # generated/demo_logs.cue
    "format": choice(
        "apache_common", "apache_error", "bsd_syslog", "json", "shuffle", "syslog", required=True
    ),
    "interval": number(maximum=86400),
    "count": uint(minimum=1),
    "lines": strings(required=True, nonempty=True, when=_SHUFFLE),
    "sequence": boolean(when=_SHUFFLE),
    "decoding": _DECODING,
}

SCHEMAS: dict[str, dict[str, Opt]] = {
    "syslog": SYSLOG,
    "file": FILE,
    "journald": JOURNALD,
    "kafka": KAFKA,
    "kubernetes_logs": KUBERNETES_LOGS,
    "socket": SOCKET,
    "http_server": HTTP_SERVER,
    "demo_logs": DEMO_LOGS,
}

INPUT_TYPES: frozenset[str] = frozenset(SCHEMAS)


def validate_input(type: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check an input's options for its type and return them normalised.

    Raises ``ValueError`` with a one-line message for an unknown type, an unknown option, a
    value of the wrong type or out of range, a missing required option, an option that does not
    apply to the chosen mode/format, or text that must never reach a config (secret or
    environment references, tokens, control characters).
    """
    if type not in SCHEMAS:
        known = ", ".join(sorted(SCHEMAS))
        raise ValueError(f"unknown input type {type!r} (known: {known})")
    checked = check_options(options, SCHEMAS[type], f"{type} input")
    if type == "http_server" and "decoding" not in checked:
        # Vector 0.58 removed http_server's legacy `encoding` option, which used to pick the
        # decoder when `decoding` was absent (releases/0.58.0.cue, "HTTP server `encoding`
        # option removed"). Saying what we mean keeps the output the same on every version.
        checked["decoding"] = {"codec": "bytes"}
    return checked
