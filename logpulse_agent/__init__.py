"""logpulse-agent: enrols with LogPulse, applies its group's Vector config, supervises Vector.

    cli.py          the ``logpulse-agent`` command
    daemon/         ``run``: the composition root (compose.py) and the lifecycle
    controlplane/   the protocol, HTTP with retries, the client, enrolment and identity
    config/         the Vector config from the control plane: sync, decisions, book, files
    vector/         the Vector child: supervisor, states, process, its log, options, commands
    heartbeat/      heartbeats: the loop and the pure body
    actions/        remote actions: executor, handlers and their registry, ledger, journal
    upgrade/        the ``upgrade_agent`` action: handler, upgrader, verdict, launcher
    status/         the status snapshot: sections, tracker, the ``status`` report
    state/          files on disk: layout, atomic writes, typed records
    server/         the reference control-plane server (imports only redact and protocol)

Shared by all: settings, errors, redact, backoff, clock, pids, logsetup.
"""

__version__ = "0.1.0"
