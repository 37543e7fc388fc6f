"""A stand-in for the ``vector`` binary: the CLI surface the agent uses, nothing more.

Python stdlib + PyYAML. Facts it imitates (vectordotdev/vector source):

- ``vector --version`` → ``vector 0.57.0 (x86_64-unknown-linux-gnu …)``.
- ``vector validate [--no-environment] [--config-yaml P]… [P…]``: the report goes to stdout
  (``√``/``x`` lines, ``src/validate.rs``), exit 0 or 78 (``exitcode::CONFIG``). ``{}`` fails
  with "No sources defined in the config." (``src/config/validation.rs``, ``check_shape``).
- ``vector -c/--config/--config-yaml P…``: logs go to stderr (PR #9166) as
  ``<ts> <LEVEL> <target>: <message> <fields>``; "Vector has started." once running
  (``src/internal_events/process.rs``). Start-up failures exit 78; after a successful start
  every exit is 0, crashes included (``src/app.rs``).
- SIGHUP re-reads every file: "Vector has reloaded." on success; "Failed to load config files,
  reload aborted." when the files do not load; "Reload was not successful." when the topology
  refuses them, e.g. a changed global option ("Global options can't be changed while reloading
  config file; reload aborted.", ``src/topology/running.rs``). The old config keeps running. A
  config path that vanished exits 78 ("Config file not found in path.", ``process_paths``).
- SIGTERM/SIGINT: "Vector is stopping.", "Vector has stopped.", exit 0. SIGQUIT: exit 0.
- ``SECRET[backend.key]`` resolved through ``exec`` backends: JSON ``{"version": "1.0",
  "secrets": [...]}`` on the command's stdin, ``{"key": {"value": …, "error": …}}`` from its
  stdout (``src/secrets/exec.rs``, ``src/config/loading/secret.rs``).

Test switches, read from YAML comments so the file stays valid Vector config:
``# standin: crash-on-start`` (starts — "Vector has started." — then a component dies and
Vector exits 0, as real Vector does after a crash), ``# standin: fail-start`` (start-up failure,
exit 78), ``# standin: exit-after=SECONDS`` (all sources finish: exit 0 after the delay),
``# standin: hang-on-sigterm`` (logs "Vector is stopping." and never exits),
``# standin: fail-validate`` (the content is rejected everywhere), ``# standin: fail-reload``
(loads and validates, but a reload to it fails). Timers re-arm when a config becomes active.

``STANDIN_SWITCHES=path`` attaches switches to configs by content (see
standin_config.switches_by_content).

``STANDIN_EVENTS=path`` appends one JSON object per event (started, start_failed, reloaded,
reload_failed, validated, validate_failed, stopping, stopped, crashed, secret_resolved) — key
names and whether a value was obtained, never a secret value. Each event is written before the
log line that announces it, so a test that saw the line finds the event. ``STANDIN_VERSION``
overrides the version; ``--log-format json`` switches to JSON log lines; log lines go through
a copy of Vector's internal-log rate limiter (``--internal-log-rate-limit``, default 10 s).
Loading, secrets and the shape checks live in ``standin_config.py``.

Data plane (``standin_pipeline.py``): once started, ``demo_logs`` sources wired to
``splunk_hec_logs`` sinks really generate events and send them as Vector's sink does
(``standin_hec.py``, ``standin_sink.py``: batches, gzip, ``Authorization: Splunk <token>`` with
the token the exec secret backend resolved, the health check at start, retries), and
``internal_metrics`` → ``prometheus_exporter`` serves ``/metrics`` in Vector's text format
(``standin_metrics.py``); counters start at zero in every process, as after a Vector restart.
Every other component is inert and the log says so. Events ``hec_healthcheck`` and
``hec_batch`` (status, events, delivered) join the event log.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from standin_config import OUTPUT, ConfigError, Loaded, Raw, build_errors, event, load, log
from standin_pipeline import BindError, Pipeline

VERSION = os.environ.get("STANDIN_VERSION", "0.57.0")
EXIT_USAGE, EXIT_CONFIG = 64, 78  # exitcode::USAGE, exitcode::CONFIG
SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
RUNNING, PROCESS = "vector::topology::running", "vector::internal_events::process"
GLOBALS_CHANGED = (
    "Global options can't be changed while reloading config file; reload aborted. "
    "Please restart Vector to reload the configuration file."
)


def rust_list(paths: list[Path]) -> str:
    """A list of paths the way Rust's ``{:?}`` prints it."""
    return "[" + ", ".join(json.dumps(str(p)) for p in paths) + "]"


def missing(paths: list[tuple[Path, str]] | list[tuple[Path, str, bool]]) -> Path | None:
    return next((entry[0] for entry in paths if not entry[0].is_file()), None)


def validate(paths: list[tuple[Path, str]], environment: bool) -> int:
    paths = sorted(set(paths))
    if not paths:
        print("x No config file paths")
        return EXIT_CONFIG
    if (gone := missing(paths)) is not None:
        log("ERROR", "vector::config::loading", "Config file not found in path.", path=str(gone))
        return EXIT_CONFIG
    listed = rust_list([p for p, _ in paths])
    lines: list[str] = []
    try:
        loaded = load(paths, "validate")
        errors = build_errors(loaded.doc) if environment else []
        lines.append(f"√ Loaded {listed}")
        if environment and errors:
            lines += ["", "Component errors", "-" * 16, *[f"x {e}" for e in errors], ""]
        elif environment:
            lines.append("√ Component configuration")
            lines += [f'√ Health check "{sink}"' for sink in loaded.doc.get("sinks", {})]
    except ConfigError as exc:
        errors = exc.errors
        title = f"Failed to load {listed}"
        lines += [title, "-" * len(title), *[f"x {e}" for e in errors], ""]
    if errors:
        print("\n".join(lines))
        event("validate_failed", paths=[str(p) for p, _ in paths], errors=errors)
        return EXIT_CONFIG
    width = max(len(line) for line in lines)
    print("\n".join([*lines, "-" * width, "Validated".rjust(width)]))
    event("validated", **loaded.describe())
    return 0


Paths = list[tuple[Path, str, bool]]  # (path, format, format given explicitly)


def reload(active: Loaded, paths: Paths) -> Loaded | None:
    """The new active config, or None when the reload failed and ``active`` stays."""
    if (gone := missing(paths)) is not None:
        log("ERROR", "vector::config::loading", "Config file not found in path.", path=str(gone))
        event("reload_failed", reason="missing_file", path=str(gone))
        raise SystemExit(EXIT_CONFIG)
    try:
        new = load([(p, f) for p, f, _ in paths], "run")
    except ConfigError as exc:
        for error in exc.errors:
            log("ERROR", "vector::cli", "Configuration error.", error=Raw(error))
        event("reload_failed", reason="load", errors=exc.errors)
        log("ERROR", PROCESS, "Failed to load config files, reload aborted.")
        return None
    log("INFO", RUNNING, "Reloading running topology with new configuration.")
    if new.globals != active.globals:
        log("ERROR", RUNNING, GLOBALS_CHANGED)
        keys = set(new.globals) | set(active.globals)
        changed = sorted(k for k in keys if new.globals.get(k) != active.globals.get(k))
        reason, errors = "global_options", [f"global option changed: {k}" for k in changed]
    else:
        reason, errors = "build", build_errors(new.doc)
        if "fail-reload" in new.switches:
            first = next(iter(new.doc.get("sinks", {})), "out")
            errors.append(f'Sink "{first}": failed to build the component (fail-reload)')
        for error in errors:
            log("ERROR", "vector::topology::builder", "Configuration error.", error=Raw(error))
        if errors:
            log("WARN", RUNNING, "Failed to completely load new configuration. Restoring old "
                "configuration.")  # fmt: skip
            log("INFO", RUNNING, "Old configuration restored successfully.")
    if errors:
        event("reload_failed", reason=reason, errors=errors, config_sha256=new.sha256)
        log("ERROR", PROCESS, "Reload was not successful.")
        return None
    log("INFO", RUNNING, "New configuration loaded successfully.")
    hints = ", ".join(
        f'File("{p}", {f"Some({f.capitalize()})" if h else "None"})' for p, f, h in paths
    )
    event("reloaded", **new.describe())
    log("INFO", "vector", "Vector has reloaded.", path=Raw(f"[{hints}]"))
    return new


def start(paths: Paths) -> Loaded | int:
    """Load and build the initial config: the active config, or the exit code (78)."""
    log("INFO", "vector::app", "Log level is enabled.", level="info")
    log("INFO", "vector::app", "Loading configs.", paths=Raw(rust_list([p for p, _, _ in paths])))
    if (gone := missing(paths)) is not None:
        log("ERROR", "vector::config::loading", "Config file not found in path.", path=str(gone))
        return EXIT_CONFIG
    try:
        active = load([(p, f) for p, f, _ in paths], "run")
    except ConfigError as exc:
        for error in exc.errors:
            log("ERROR", "vector::cli", "Configuration error.", error=Raw(error))
        event("start_failed", errors=exc.errors)
        return EXIT_CONFIG
    errors = build_errors(active.doc)
    if "fail-start" in active.switches:
        errors.append('Source "in": failed to bind the listening socket (fail-start)')
    if errors:
        for error in errors:
            log("ERROR", "vector::topology::builder", "Configuration error.", error=Raw(error))
        event("start_failed", errors=errors)
        return EXIT_CONFIG
    log("INFO", RUNNING, "Running healthchecks.")
    event("started", **active.describe())  # before the line, so a test seeing it finds it
    log("INFO", "vector", "Vector has started.", debug="false", version=VERSION, arch="x86_64",
        revision="standin")  # fmt: skip
    log("INFO", "vector::app", "API is disabled, enable by setting `api.enabled` to `true` and "
        "use commands like `vector top`.")  # fmt: skip
    return active


def stop(reason: str, signame: str | None = None, pipeline: Pipeline | None = None) -> int:
    """Graceful shutdown: always exit 0 once started (app.rs ``FinishedApplication::stop``)."""
    log("INFO", "vector", "Vector is stopping.")
    if pipeline is not None:
        pipeline.stop()  # sources stop, sinks send what they hold once
    event("stopped", exit_code=0, reason=reason, signal=signame)
    log("INFO", "vector", "Vector has stopped.")
    return 0


def arm(active: Loaded) -> float | None:
    """When the active config's timer switch fires (monotonic time), if it has one."""
    if "crash-on-start" in active.switches:
        return time.monotonic()
    if "exit-after" in active.switches:
        return time.monotonic() + float(active.switches["exit-after"] or 0)
    return None


def launch(doc: dict[str, object], previous: Pipeline | None = None) -> Pipeline:
    """The components of ``doc`` running (``previous`` stopped first, its exporters reused).

    Raises :class:`BindError` when a prometheus_exporter cannot listen.
    """
    if previous is not None:
        previous.stop(keep_exporters=True)
    pipeline = Pipeline(doc)
    try:
        pipeline.start(previous)
    except BindError as exc:
        pipeline.stop()
        log("ERROR", "vector::sinks::prometheus::exporter",
            f"Failed to start Prometheus exporter: {exc}.")  # fmt: skip
        crash = "An error occurred that Vector couldn't handle: the task completed with an error."
        log("ERROR", "vector::topology", crash)
        event("crashed", reason="prometheus_exporter_bind", sink=exc.sink, address=exc.address)
        raise
    return pipeline


def run(paths: Paths) -> int:
    # Blocked from the start and taken synchronously with sigtimedwait: like Vector, which
    # installs its handlers before loading the config, no signal is lost or acted on early.
    # Threads started later (metrics, sources, sinks) inherit the mask.
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    active = start(paths)
    if isinstance(active, int):
        return active
    try:
        pipeline = launch(active.doc)
    except BindError:
        return stop("crash")
    deadline, stopping = arm(active), False
    while True:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if timeout is None:
            info = signal.sigwaitinfo(SIGNALS)
        else:
            info = signal.sigtimedwait(SIGNALS, timeout)
        if info is None and "crash-on-start" in active.switches:
            event("crashed")
            log("ERROR", RUNNING, 'The task for source "in" died during execution (crash-on-start)')
            return stop("crash", pipeline=pipeline)
        if info is None:
            log("INFO", "vector::app", "All sources have finished.")
            return stop("sources_finished", pipeline=pipeline)
        name = signal.Signals(info.si_signo).name
        log("INFO", "vector::signal", "Signal received.", signal=name)
        if stopping:  # hang-on-sigterm: a stuck shutdown that only SIGKILL ends
            continue
        if info.si_signo == signal.SIGHUP:
            new = reload(active, paths)
            if new is not None:
                active, deadline = new, arm(new)
                try:
                    pipeline = launch(new.doc, pipeline)
                except BindError:
                    return stop("crash")
        elif info.si_signo == signal.SIGQUIT:
            event("stopped", exit_code=0, reason="quit", signal=name)
            log("INFO", "vector", "Vector has quit.")
            return 0
        elif "hang-on-sigterm" in active.switches:
            event("stopping", signal=name)
            log("INFO", "vector", "Vector is stopping.")
            stopping, deadline = True, None
        else:
            event("stopping", signal=name)
            return stop("signal", name, pipeline)


PATH_OPTS = {"--config-yaml": "yaml", "--config-json": "json", "--config-toml": "toml"}
VALUE_OPTS = {"--log-format", "--color", "--threads", "-t", "--graceful-shutdown-limit-secs",
              "--require-healthy", "--watch-config-method",
              "--internal-log-rate-limit"}  # fmt: skip
FLAGS = {"-q", "-qq", "-v", "-vv", "-w", "--watch-config", "--no-graceful-shutdown-limit"}


def by_extension(path: str) -> tuple[Path, str, bool]:
    """Format from the (case-sensitive) extension, else TOML: ``Format::from_path`` and
    ``Format::default`` in ``src/config/format.rs``."""
    suffix = Path(path).suffix
    return Path(path), {".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(suffix, "toml"), False


def parse_args(argv: list[str], validating: bool) -> tuple[Paths, bool] | str:
    """(config paths, environment checks wanted), or a usage error message."""
    paths: Paths = []
    environment, args = True, list(argv)
    while args:
        arg, value = args.pop(0), None
        if arg.startswith("--") and "=" in arg:
            arg, value = arg.split("=", 1)
        takes_value = arg in PATH_OPTS or arg in VALUE_OPTS
        takes_value |= arg in ("-c", "--config") and not validating  # validate has no -c
        if takes_value and value is None:
            if not args:
                return f"a value is required for '{arg}'"
            value = args.pop(0)
        if arg in PATH_OPTS:
            paths.append((Path(str(value)), PATH_OPTS[arg], True))
        elif takes_value and arg in ("-c", "--config"):
            paths.append(by_extension(str(value)))
        elif arg == "--log-format":
            OUTPUT["log_format"] = str(value)
        elif arg == "--internal-log-rate-limit":
            OUTPUT["rate_limit"] = str(int(str(value)))
        elif arg in VALUE_OPTS or arg in FLAGS:
            pass
        elif validating and arg == "--no-environment":
            environment = False
        elif validating and arg in ("-d", "--deny-warnings"):
            pass
        elif validating and not arg.startswith("-"):
            paths.append(by_extension(arg))
        else:
            return f"unexpected argument '{arg}' found"
    return paths, environment


def main(argv: list[str]) -> int:
    if argv[:1] in (["--version"], ["-V"]):
        print(f"vector {VERSION} (x86_64-unknown-linux-gnu standin 2026-01-01 00:00:00.000000000)")
        return 0
    validating = argv[:1] == ["validate"]
    parsed = parse_args(argv[1:] if validating else argv, validating)
    if isinstance(parsed, str):
        print(f"error: {parsed}", file=sys.stderr)
        return EXIT_USAGE
    paths, environment = parsed
    if validating:
        return validate([(p, f) for p, f, _ in paths], environment)
    return run(paths)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
