"""Config loading for the Vector stand-in: files, ``exec`` secrets, merge, checks; log output.

Mirrors what real Vector does when it loads config files (vectordotdev/vector):

- ``SECRET[backend.key]`` placeholders are collected from the raw text (``COLLECTOR`` regex in
  ``src/config/loading/secret.rs``), each backend is asked once for all its keys, and the values
  are substituted into the text before it is parsed. An ``exec`` backend gets
  ``{"version": "1.0", "secrets": [...]}`` on stdin and answers
  ``{"key": {"value": ..., "error": ...}}`` on stdout; a missing key, an error or an empty value
  fails the load ("secret for key 'k' was not retrieved: ...", ``src/secrets/exec.rs``); every
  stderr line of the backend is logged as a warning; the default timeout is 5 s.
- Files merge like ``ConfigBuilder::append`` (``src/config/builder.rs``): a component id defined
  twice is an error, two different values for one global option conflict.
- The shape checks and their messages are those of ``check_shape`` (``src/config/
  validation.rs``) and ``Graph`` input resolution (``src/config/graph.rs``): no sources, no sinks,
  a transform or sink without inputs, an input that matches nothing.
"""

from __future__ import annotations

import datetime
import fnmatch
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

TABLES = {"sources": "source", "transforms": "transform", "sinks": "sink"}
# Top-level keys a reload may change; everything else is a global option (running.rs refuses
# a reload that changes one).
RELOADABLE = {*TABLES, "enrichment_tables", "tests", "secret"}
GLOBALS = {
    "data_dir", "api", "schema", "log_schema", "healthchecks", "timezone", "acknowledgements",
    "proxy", "telemetry", "expire_metrics", "expire_metrics_secs", "wildcard_matching",
    "expire_metrics_per_metric_set", "latency_ewma_alpha", "metrics_storage_refresh_period",
    "buffer_utilization_ewma_half_life_seconds", "provider", "enterprise",
}  # fmt: skip
SECRET_RE = re.compile(r"SECRET\[(\w+)\.([\w.]+)\]")
SWITCH_RE = re.compile(r"^\s*#\s*standin:\s*([a-z-]+)(?:\s*=\s*(\S+))?\s*$", re.MULTILINE)
# Sources that keep checkpoints in data_dir: building them fails when it is unusable.
DATA_DIR_SOURCES = {"file", "journald", "kubernetes_logs", "docker_logs"}
OUTPUT = {
    "log_format": os.environ.get("VECTOR_LOG_FORMAT", "text"),
    "rate_limit": os.environ.get("VECTOR_INTERNAL_LOG_RATE_LIMIT", "10"),
}
RATE_STATE: dict[tuple[str, str], tuple[float, int]] = {}  # call site -> (window start, count)
UNLIMITED = {"Configuration error."}  # tagged internal_log_rate_limit = false (src/cli.rs)
_LOCK = threading.RLock()  # sources, sinks and the exporter log from their own threads


class Raw(str):
    """A log field printed as is (``%display``); plain strings print quoted (``?debug``)."""


class ConfigError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def log(level: str, target: str, message: str, /, **fields: Any) -> None:
    """One Vector-style log line on stderr, through Vector's internal-log rate limiter.

    Vector throttles every internal log per call site unless it is tagged
    ``internal_log_rate_limit = false`` (lib/tracing-limit): within ``--internal-log-rate-limit``
    seconds (default 10) the first event is logged, the second becomes "Internal log [<msg>] is
    being suppressed to avoid flooding.", later ones vanish; after the window the count is
    reported ("has been suppressed N times.") and the event logged again.
    """
    with _LOCK:
        _limited(level, target, message, fields)


def _limited(level: str, target: str, message: str, fields: dict[str, Any]) -> None:
    if message in UNLIMITED:
        return _write(level, target, message, fields)
    now, window = time.monotonic(), float(OUTPUT["rate_limit"])
    start, count = RATE_STATE.get((target, message), (now, 0))
    if int(now - start) < window:  # Vector compares whole elapsed seconds
        RATE_STATE[(target, message)] = (start, count + 1)
        if count == 0:
            _write(level, target, message, fields)
        elif count == 1:
            _write(
                level, target, f"Internal log [{message}] is being suppressed to avoid flooding."
            )
        return None
    if count > 1:
        _write(level, target, f"Internal log [{message}] has been suppressed {count - 1} times.")
    RATE_STATE[(target, message)] = (now, 1)
    return _write(level, target, message, fields)


def _write(level: str, target: str, message: str, fields: dict[str, Any] | None = None) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = fields or {}
    if OUTPUT["log_format"] == "json":
        line = json.dumps(
            {"timestamp": now, "level": level, "message": message, "target": target, **fields}
        )
    else:
        rest = "".join(
            f" {k}={v if isinstance(v, Raw) or not isinstance(v, str) else json.dumps(v)}"
            for k, v in fields.items()
        )
        line = f"{now} {level:>5} {target}: {message}{rest}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def event(name: str, /, **fields: Any) -> None:
    """Append one JSON event to ``$STANDIN_EVENTS`` (if set) for the tests to read."""
    path = os.environ.get("STANDIN_EVENTS")
    if path:
        with _LOCK, open(path, "a", encoding="utf-8") as handle:
            handle.write(
                json.dumps({"event": name, "pid": os.getpid(), "at": time.time(), **fields}) + "\n"
            )


def rust_list(paths: list[Path]) -> str:
    return "[" + ", ".join(json.dumps(str(p)) for p in paths) + "]"


def switches_by_content(text: str) -> dict[str, str]:
    """Switches for configs the tests cannot annotate (the control plane renders them).

    ``$STANDIN_SWITCHES`` names a JSON file such as
    ``{"<substring>": ["fail-validate", "exit-after=0.2"]}``: a config containing the substring
    behaves as if it carried those ``# standin:`` comments.
    The file is read at every load, so a test can change the rules while Vector runs.
    """
    path = os.environ.get("STANDIN_SWITCHES")
    if not path:
        return {}
    try:
        rules = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    found: dict[str, str] = {}
    for needle, names in rules.items():
        if needle in text:
            for name in names:
                key, _, value = name.partition("=")
                found[key] = value
    return found


class Loaded:
    """One successfully loaded and checked set of config files."""

    def __init__(self, paths: list[Path], raw: dict[Path, bytes], doc: dict[str, Any]) -> None:
        self.paths, self.raw, self.doc = paths, raw, doc
        text = b"".join(raw[p] for p in paths).decode("utf-8", "replace")
        self.switches = {m[1]: m[2] or "" for m in SWITCH_RE.finditer(text)}
        self.switches.update(switches_by_content(text))
        self.sha256 = hashlib.sha256(b"".join(raw[p] for p in paths)).hexdigest()

    @property
    def globals(self) -> dict[str, Any]:
        return {k: v for k, v in self.doc.items() if k not in RELOADABLE}

    def describe(self) -> dict[str, Any]:
        return {
            "paths": [str(p) for p in self.paths],
            "config_sha256": self.sha256,
            "files": {str(p): hashlib.sha256(self.raw[p]).hexdigest() for p in self.paths},
            "sources": sorted(self.doc.get("sources", {})),
            "sinks": sorted(self.doc.get("sinks", {})),
            "switches": self.switches,
        }


def parse_text(path: Path, fmt: str, text: str) -> Any:
    try:
        if fmt == "json":
            return json.loads(text)
        if fmt == "toml":
            import tomllib  # Python >= 3.11; the stand-in runs on the test venv's interpreter

            return tomllib.loads(text)
        document = yaml.safe_load(text)
    except Exception as exc:
        raise ConfigError([f"{path}: " + " ".join(str(exc).split())]) from None
    if document is None:  # serde_yaml refuses an empty document (src/config/format.rs tests)
        raise ConfigError([f"{path}: EOF while parsing a value"])
    return document


def resolve_secrets(files: list[tuple[Path, str, str]], mode: str) -> dict[str, str]:
    wanted: dict[str, list[str]] = {}
    for _, _, text in files:
        for backend, key in SECRET_RE.findall(text):
            wanted.setdefault(backend, [])
            if key not in wanted[backend]:
                wanted[backend].append(key)
    if not wanted:
        return {}
    backends: dict[str, Any] = {}
    for path, fmt, text in files:
        doc = parse_text(path, fmt, text)
        if isinstance(doc, dict) and isinstance(doc.get("secret"), dict):
            backends.update(doc["secret"])
    values: dict[str, str] = {}
    for backend, keys in wanted.items():
        spec = backends.get(backend)
        if not isinstance(spec, dict):
            raise ConfigError(
                [
                    f'Backend "{backend}" is required for secret retrieval but was '
                    "not found in config."
                ]
            )
        try:
            got = exec_backend(spec, keys)
        except ConfigError as exc:
            event("secret_resolved", backend=backend, keys=keys, obtained=False, mode=mode)
            raise ConfigError(
                [f'Error while retrieving secret from backend "{backend}": {exc}.']
            ) from None
        event("secret_resolved", backend=backend, keys=keys, obtained=True, mode=mode)
        values.update({f"{backend}.{k}": v for k, v in got.items()})
    return values


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, [])  # children must not inherit our blocked mask


def exec_backend(spec: dict[str, Any], keys: list[str]) -> dict[str, str]:
    if spec.get("type") != "exec":
        raise ConfigError([f"unsupported secret backend type {spec.get('type')!r}"])
    command = spec.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise ConfigError(["`command` must be a non-empty list of strings"])
    query = {"version": "1.0", "secrets": keys}
    try:
        done = subprocess.run(
            command,
            input=json.dumps(query).encode(),
            capture_output=True,
            timeout=float(spec.get("timeout", 5)),
            preexec_fn=_unblock_signals,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(["Command timed-out"]) from None
    except OSError as exc:
        raise ConfigError([str(exc)]) from None
    for line in done.stderr.decode("utf-8", "replace").splitlines():
        log(
            "WARN", "vector::secrets::exec", f"An exec backend generated message on stderr: {line}."
        )
    try:
        answer = json.loads(done.stdout)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    result: dict[str, str] = {}
    for key in keys:
        entry = answer.get(key) if isinstance(answer, dict) else None
        if not isinstance(entry, dict):
            raise ConfigError([f"secret for key '{key}' was not retrieved"])
        if entry.get("error") is not None:
            raise ConfigError([f"secret for key '{key}' was not retrieved: {entry['error']}"])
        if not entry.get("value"):
            raise ConfigError([f"secret for key '{key}' was empty"])
        result[key] = str(entry["value"])
    return result


def merge(docs: list[tuple[Path, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    errors: list[str] = []
    for path, doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            errors.append(f"{path}: invalid type: expected a map at the top level")
            continue
        for key, value in doc.items():
            if key not in RELOADABLE | GLOBALS:
                errors.append(f"unknown field `{key}`")
            elif key in TABLES or key in ("enrichment_tables", "secret"):
                if not isinstance(value, dict):
                    errors.append(f"invalid type for `{key}`: expected a map")
                    continue
                table = merged.setdefault(key, {})
                for cid, component in value.items():
                    if cid in table and key != "secret":
                        errors.append(
                            f"duplicate {TABLES.get(key, 'enrichment_table')} id found: {cid}"
                        )
                    table[cid] = component
            elif key == "tests":
                merged.setdefault("tests", []).extend(value if isinstance(value, list) else [value])
            elif key in merged and merged[key] != value:
                errors.append(f"conflicting values for '{key}' found")
            else:
                merged[key] = value
    if errors:
        raise ConfigError(errors)
    return merged


def check_shape(doc: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    tables = {kind: doc.get(key, {}) for key, kind in TABLES.items()}
    seen: dict[str, list[str]] = {}
    for kind, table in tables.items():
        for cid, component in table.items():
            seen.setdefault(str(cid), []).append(kind)
            if "." in str(cid):
                errors.append(f'Component name "{cid}" should not contain a "."')
            if not isinstance(component, dict) or not isinstance(component.get("type"), str):
                errors.append(f'{kind.capitalize()} "{cid}": missing field `type`')
    if not tables["source"]:
        errors.append("No sources defined in the config.")
    if not tables["sink"]:
        errors.append("No sinks defined in the config.")
    errors += [
        f'More than one component with name "{c}" ({", ".join(k)}).'
        for c, k in seen.items()
        if len(k) > 1
    ]
    producers = [*tables["source"], *tables["transform"]]
    for kind in ("transform", "sink"):
        for cid, component in tables[kind].items():
            inputs = component.get("inputs") if isinstance(component, dict) else None
            if not isinstance(inputs, list) or not inputs:
                errors.append(f'{kind.capitalize()} "{cid}" has no inputs')
                continue
            for name in inputs:
                found = name in producers or (str(name).split(".")[0] in tables["transform"])
                if not found and "*" in str(name):
                    found = any(fnmatch.fnmatchcase(p, str(name)) for p in producers)
                if not found:
                    errors.append(
                        f'Input "{name}" for {kind} "{cid}" doesn\'t match any components.'
                    )
    for name, spec in doc.get("secret", {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            errors.append(f'secret "{name}": missing field `type`')
    return errors


def build_errors(doc: dict[str, Any]) -> list[str]:
    """What building the components would fail on here: a data_dir that is not usable."""
    data_dir = Path(str(doc.get("data_dir", "/var/lib/vector")))
    needy = [cid for cid, c in doc.get("sources", {}).items() if c.get("type") in DATA_DIR_SOURCES]
    if needy and not (data_dir.is_dir() and os.access(data_dir, os.W_OK)):
        return [
            f'Source "{cid}": data_dir "{data_dir}" does not exist or is not writable'
            for cid in needy
        ]
    return []


def load(paths: list[tuple[Path, str]], mode: str) -> Loaded:
    raw = {path: path.read_bytes() for path, _ in paths}
    files = [(path, fmt, raw[path].decode("utf-8", "replace")) for path, fmt in paths]
    secrets = resolve_secrets(files, mode)
    docs = []
    for path, fmt, text in files:
        text = SECRET_RE.sub(lambda m: secrets.get(f"{m[1]}.{m[2]}", m[0]), text)
        docs.append((path, parse_text(path, fmt, text)))
    loaded = Loaded([p for p, _ in paths], raw, merge(docs))
    errors = check_shape(loaded.doc)
    if "fail-validate" in loaded.switches:
        first = next(iter(loaded.doc.get("sinks", {})), "out")
        errors.append(f'Sink "{first}": the component rejected its options (fail-validate)')
    if errors:
        raise ConfigError(errors)
    return loaded


def missing(paths: list[tuple[Path, str]]) -> Path | None:
    return next((path for path, _ in paths if not path.is_file()), None)
