"""The input types the control plane renders, and the Vector options each one may carry.

Each type accepts a deliberate subset of its Vector source's options: the ones an operator needs
to point the source at its data, with Vector's own names and types. Left out on purpose:
options that belong to the agent (``data_dir``: it owns Vector's state directory), options that
carry credentials (``auth``, ``sasl``, ``tls.key_pass``: the rendered YAML is stored and shown in
previews, and only the agent token travels as a secret), options that delete data
(``file.remove_after_secs``) or run commands (``journald.extra_args``, ``journalctl_path``), and
the long tail of tuning knobs. Adding one is a line here plus a golden-file update. Refused with
the reason in the error: ``demo_logs.count`` and ``journald.current_boot_only: false``.

Every value accepted must be one Vector 0.57 accepts when it loads the config *and* when it
builds the component: the address, glob, CIDR and topic rules live in ``addresses.py`` and
``patterns.py``, the numeric bounds in ``limits.py``, each with the Vector source it comes from.

Options are checked against Vector's configuration reference, vectordotdev/vector
``website/cue/reference/components/sources/generated/<type>.cue`` (newest stored revision,
covering Vector 0.57-0.59), and for the mode-dependent sources the Rust config structs
(``src/sources/syslog.rs``: ``#[serde(tag = "mode")]``, so an option of another mode is an
unknown field, which is why ``when=`` rejects it here). See ``render.py`` for the full list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from logpulse_agent.server.addresses import (
    broker_list_problem,
    cidr_problem,
    listen_address_problem,
    socket_address_problem,
)
from logpulse_agent.server.limits import (
    KAFKA_COMMIT_INTERVAL_MS,
    KAFKA_FETCH_WAIT_MAX_MS,
    KAFKA_SESSION_TIMEOUT_MS,
    KAFKA_SOCKET_TIMEOUT_MS,
    MAX_AGE_SECS,
    MAX_DELAY_DELETION_MS,
    MAX_KEEPALIVE_SECS,
    MAX_LINE_BYTES,
    MAX_SOCKET_BUFFER,
    MAX_UDP_LENGTH,
    MAX_UNIX_PATH_BYTES,
)
from logpulse_agent.server.patterns import (
    duplicates_problem,
    file_exclude_problem,
    file_include_problem,
    glob_problem,
    http_name_pattern_problem,
    kafka_topic_problem,
)
from logpulse_agent.server.render_schema import (
    Opt,
    boolean,
    check_options,
    choice,
    number,
    obj,
    path,
    refused,
    string,
    string_map,
    strings,
    uint,
)


def _unix_socket_path(value: str) -> str | None:
    if len(value.encode()) > MAX_UNIX_PATH_BYTES:
        return f"is longer than {MAX_UNIX_PATH_BYTES} bytes, the most a unix socket path holds"
    return None


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
_TCP_KEEPALIVE = obj({"time_secs": uint(minimum=1, maximum=MAX_KEEPALIVE_SECS)})


def _when(key: str, *values: str) -> tuple[str, tuple[str, ...]]:
    return (key, values)


_TCP, _UDP = _when("mode", "tcp"), _when("mode", "udp")
_IP_MODES = _when("mode", "tcp", "udp")
_CIDRS = strings(when=_TCP, item_check=cidr_problem)

SYSLOG: dict[str, Opt] = {  # generated/syslog.cue, src/sources/syslog.rs
    "mode": choice("tcp", "udp", "unix", required=True),
    "address": string(required=True, when=_IP_MODES, check=listen_address_problem),
    "path": path(required=True, when=_when("mode", "unix"), check=_unix_socket_path),
    "max_length": uint(minimum=1),
    "connection_limit": uint(minimum=1, maximum=2**32 - 1, when=_TCP),
    "permit_origin": _CIDRS,
    "receive_buffer_bytes": uint(minimum=1, maximum=MAX_SOCKET_BUFFER, when=_IP_MODES),
    "socket_file_mode": uint(maximum=0o7777, when=_when("mode", "unix")),
    "keepalive": obj(_TCP_KEEPALIVE.fields, when=_TCP),
    "tls": obj(_LISTENER_TLS.fields, check=_listener_tls, when=_TCP),
}

_UNIX_SOCKET = _when("mode", "unix_datagram", "unix_stream")
SOCKET: dict[str, Opt] = {  # generated/socket.cue, src/sources/socket/{tcp,udp,unix}.rs
    "mode": choice("tcp", "udp", "unix_datagram", "unix_stream", required=True),
    "address": string(required=True, when=_IP_MODES, check=listen_address_problem),
    "path": path(required=True, when=_UNIX_SOCKET, check=_unix_socket_path),
    "max_length": uint(minimum=1, maximum=MAX_UDP_LENGTH, when=_UDP),
    "connection_limit": uint(minimum=1, maximum=2**32 - 1, when=_TCP),
    "permit_origin": _CIDRS,
    "receive_buffer_bytes": uint(minimum=1, maximum=MAX_SOCKET_BUFFER, when=_IP_MODES),
    "shutdown_timeout_secs": uint(when=_TCP),  # tokio's sleep saturates: any u64 is safe
    "socket_file_mode": uint(maximum=0o7777, when=_UNIX_SOCKET),
    "keepalive": obj(_TCP_KEEPALIVE.fields, when=_TCP),
    "tls": obj(_LISTENER_TLS.fields, check=_listener_tls, when=_TCP),
    "decoding": _DECODING,
    "framing": _FRAMING,
}

FILE: dict[str, Opt] = {  # generated/file.cue, src/sources/file.rs
    "include": strings(
        required=True, nonempty=True, absolute_path=True, item_check=file_include_problem
    ),
    "exclude": strings(absolute_path=True, item_check=file_exclude_problem),
    "read_from": choice("beginning", "end"),
    "ignore_older_secs": uint(maximum=MAX_AGE_SECS),
    "max_line_bytes": uint(minimum=1, maximum=MAX_LINE_BYTES),
    # The file server adds it to an Instant with checked_add().unwrap(); u64 milliseconds
    # (at most ~5.8e8 years) cannot overflow a 64-bit second count.
    "glob_minimum_cooldown_ms": uint(),
    "line_delimiter": string(allow_control=True),
    "oldest_first": boolean(),
}


def _current_boot_only(value: bool) -> str | None:
    if value:
        return None
    # src/sources/journald.rs build(): AllBootsNotSupported for systemd 250-257, which is what
    # Debian 12, Ubuntu 24.04 and RHEL 10 ship; the server cannot know each host's version.
    return (
        "cannot be false: Vector's journald source refuses it on systemd 250 to 257 "
        "(Debian 12, Ubuntu 24.04 …), so agents of the group would fail to start Vector"
    )


JOURNALD: dict[str, Opt] = {  # generated/journald.cue, src/sources/journald.rs
    "include_units": strings(),
    "exclude_units": strings(),
    "include_matches": string_map(),
    "exclude_matches": string_map(),
    "current_boot_only": boolean(check=_current_boot_only),
    "since_now": boolean(),
    "batch_size": uint(minimum=1),
    "journal_directory": path(),
    "journal_namespace": string(),
}


def _journald_conflicts(options: Mapping[str, Any]) -> str | None:
    """Vector's journald build refuses a field=value pair both included and excluded.

    ``merged_include_matches``/``merged_exclude_matches`` add each unit as ``_SYSTEMD_UNIT``,
    with ``.service`` appended when it has no dot (``fixup_unit``), then
    ``find_duplicate_match`` fails the build on any pair in both.
    """

    def merged(matches: str, units: str) -> set[tuple[str, str]]:
        pairs = {(k, v) for k, vs in options.get(matches, {}).items() for v in vs}
        for unit in options.get(units, []):
            pairs.add(("_SYSTEMD_UNIT", unit if "." in unit else f"{unit}.service"))
        return pairs

    both = merged("include_matches", "include_units") & merged("exclude_matches", "exclude_units")
    if both:
        field, value = min(both)
        return (
            f"includes and excludes {field}={value} (through *_units or *_matches); "
            "Vector refuses such a journald source"
        )
    return None


KAFKA: dict[str, Opt] = {  # generated/kafka.cue, src/sources/kafka.rs
    "bootstrap_servers": string(required=True, check=broker_list_problem),
    "group_id": string(required=True),
    "topics": strings(
        required=True, nonempty=True, item_check=kafka_topic_problem, check=duplicates_problem
    ),
    "auto_offset_reset": choice(
        "smallest", "earliest", "beginning", "largest", "latest", "end", "error"
    ),
    "commit_interval_ms": uint(
        minimum=KAFKA_COMMIT_INTERVAL_MS[0], maximum=KAFKA_COMMIT_INTERVAL_MS[1]
    ),
    "session_timeout_ms": uint(
        minimum=KAFKA_SESSION_TIMEOUT_MS[0], maximum=KAFKA_SESSION_TIMEOUT_MS[1]
    ),
    "socket_timeout_ms": uint(
        minimum=KAFKA_SOCKET_TIMEOUT_MS[0], maximum=KAFKA_SOCKET_TIMEOUT_MS[1]
    ),
    "fetch_wait_max_ms": uint(
        minimum=KAFKA_FETCH_WAIT_MAX_MS[0], maximum=KAFKA_FETCH_WAIT_MAX_MS[1]
    ),
    "decoding": _DECODING,
    "framing": _FRAMING,
    "tls": _CLIENT_TLS,
}

KUBERNETES_LOGS: dict[str, Opt] = {  # generated/kubernetes_logs.cue
    "extra_label_selector": string(),
    "extra_field_selector": string(),
    "extra_namespace_label_selector": string(),
    "include_paths_glob_patterns": strings(item_check=glob_problem),
    "exclude_paths_glob_patterns": strings(item_check=glob_problem),
    "auto_partial_merge": boolean(),
    "insert_namespace_fields": boolean(),
    "max_line_bytes": uint(minimum=1, maximum=MAX_LINE_BYTES),
    "glob_minimum_cooldown_ms": uint(),
    "ignore_older_secs": uint(maximum=MAX_AGE_SECS),
    "delay_deletion_ms": uint(maximum=MAX_DELAY_DELETION_MS),
}

HTTP_SERVER: dict[str, Opt] = {  # generated/http_server.cue, src/sources/http_server.rs
    "address": string(required=True, check=socket_address_problem),
    "path": string(check=_url_path),
    "strict_path": boolean(),
    "method": choice("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"),
    "headers": strings(item_check=http_name_pattern_problem),
    "query_parameters": strings(item_check=http_name_pattern_problem),
    "response_code": uint(minimum=200, maximum=299),
    "decoding": _DECODING,
    "framing": _FRAMING,
    "tls": _LISTENER_TLS,
}

_SHUFFLE = _when("format", "shuffle")
DEMO_LOGS: dict[str, Opt] = {  # generated/demo_logs.cue, src/sources/demo_logs.rs
    "format": choice(
        "apache_common", "apache_error", "bsd_syslog", "json", "shuffle", "syslog", required=True
    ),
    "interval": number(maximum=86400),
    "count": refused(
        "uint",
        "a source with a count finishes, and Vector exits once every source has finished, "
        "which the agent must treat as a crash; leave it out to generate events continuously",
    ),
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

# Rules across options of one input, checked after each option on its own.
_CROSS_CHECKS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "journald": _journald_conflicts,
}

INPUT_TYPES: frozenset[str] = frozenset(SCHEMAS)


def validate_input(type: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check an input's options for its type and return them normalised.

    Raises ``ValueError`` with a one-line message for an unknown type, an unknown or refused
    option, a value of the wrong type or out of the range Vector accepts, a missing required
    option, an option that does not apply to the chosen mode/format, options Vector refuses in
    combination, or text that must never reach a config (secret or environment references,
    tokens, control characters).
    """
    if type not in SCHEMAS:
        known = ", ".join(sorted(SCHEMAS))
        raise ValueError(f"unknown input type {type!r} (known: {known})")
    where = f"{type} input"
    checked = check_options(options, SCHEMAS[type], where)
    cross = _CROSS_CHECKS.get(type)
    problem = cross(checked) if cross else None
    if problem:
        raise ValueError(f"{where}: {problem}")
    if type == "http_server" and "decoding" not in checked:
        # Vector 0.58 removed http_server's legacy `encoding` option, which used to pick the
        # decoder when `decoding` was absent (releases/0.58.0.cue, "HTTP server `encoding`
        # option removed"). Saying what we mean keeps the output the same on every version.
        checked["decoding"] = {"codec": "bytes"}
    return checked
