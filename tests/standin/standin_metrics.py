"""The stand-in's internal metrics and its ``prometheus_exporter``, in Vector's exact text format.

Facts imitated (vectordotdev/vector, 0.58 source; unchanged since 0.57 here):

- ``src/sinks/prometheus/collector.rs`` (``StringCollector``): per metric name, sorted by name,
  ``# HELP <full name> <name>`` and ``# TYPE <full name> counter|gauge``, then one line per
  series ``<full name>{<labels sorted, "\\" and '"' escaped>} <value> <timestamp ms>``; the value
  prints like Rust's ``f64`` (``42``, not ``42.0``). Served as ``text/plain; version=0.0.4`` at
  ``GET /metrics``, 404 elsewhere (``exporter.rs``).
- ``src/sources/internal_metrics.rs``: names get the ``namespace`` prefix (default ``vector``,
  so ``vector_component_sent_events_total``), every series a ``host`` label, and a timestamp.
- Component metrics carry ``component_id``, ``component_kind``, ``component_type``
  (``lib/vector-core/src/metrics/label_filter.rs``); a source's sent events add
  ``output="_default"`` (``source_sender``); ``component_errors_total`` of a sink's failed
  request has ``error_type="request_failed"``, ``stage="sending"`` and
  ``component_discarded_events_total`` ``intentional="false"``
  (``lib/vector-common/src/internal_event/service.rs``, ``CallError``). No component metric
  carries an HTTP status: only ``http_client_responses_total{status="503"}`` does
  (``src/internal_events/http_client.rs``), once per response, retries included.
- A counter exists only once it was first touched; a restarted Vector starts from zero.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Labels = tuple[tuple[str, str], ...]
HOST = socket.gethostname()


def component(cid: str, kind: str, ctype: str, **extra: str) -> dict[str, str]:
    """The labels of one component's series (plus ``extra`` ones)."""
    return {"component_id": cid, "component_kind": kind, "component_type": ctype, **extra}


class Registry:
    """Counters and gauges by (name, labels), safe to touch from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, Labels], list[Any]] = {}  # -> [type, value]

    def add(self, name: str, labels: dict[str, str], amount: float = 1) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            entry = self._values.setdefault(key, ["counter", 0.0])
            entry[1] += amount

    def set(self, name: str, labels: dict[str, str], value: float) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = ["gauge", float(value)]

    def value(self, name: str, **labels: str) -> float:
        """The sum of ``name`` over the series matching ``labels`` (0 when there is none)."""
        with self._lock:
            items = list(self._values.items())
        return sum(
            v[1]
            for (n, series), v in items
            if n == name and all((k, w) in series for k, w in labels.items())
        )

    def series(self) -> list[tuple[str, str, Labels, float]]:
        with self._lock:
            return [(n, v[0], labels, v[1]) for (n, labels), v in self._values.items()]


REGISTRY = Registry()


def rust_f64(value: float) -> str:
    """A float the way Rust's ``{}`` prints an ``f64``."""
    if value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _label(key: str, value: str) -> str:
    return f'{key}="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(registry: Registry, namespace: str = "vector", now: float | None = None) -> str:
    """The exporter's body for ``registry`` (``StringCollector``), every series tagged ``host``."""
    stamp = int((time.time() if now is None else now) * 1000)
    by_name: dict[str, list[tuple[str, Labels, float]]] = {}
    for name, kind, labels, value in registry.series():
        by_name.setdefault(name, []).append((kind, labels, value))
    out = []
    for name in sorted(f"{namespace}_{n}" if namespace else n for n in by_name):
        short = name[len(namespace) + 1 :] if namespace else name
        entries = sorted(by_name[short], key=lambda e: e[1])
        out.append(f"# HELP {name} {short}\n# TYPE {name} {entries[0][0]}\n")
        for _, labels, value in entries:
            tags = ",".join(sorted(_label(k, v) for k, v in (*labels, ("host", HOST))))
            out.append(f"{name}{{{tags}}} {rust_f64(value)} {stamp}\n")
    return "".join(out)


class Exporter:
    """A ``prometheus_exporter`` listening on ``address``; ``body()`` makes each answer (it can
    be replaced while serving, so a reload keeps the socket).

    Binding happens in the constructor, so a taken port raises :class:`OSError` at once.
    """

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.address = address
        self.body: Callable[[], str] = str
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = outer.body().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # Vector logs no access lines
                pass

        options = {
            "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET,
            "allow_reuse_address": True,  # as tokio/mio listeners on Unix: TIME_WAIT only
            "daemon_threads": True,
        }
        server_class = type("Server", (ThreadingHTTPServer,), options)
        self._server = server_class((host.strip("[]"), int(port)), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
