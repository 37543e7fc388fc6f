"""The stand-in's running components for one active config: which ones do something, and how
they start, stop and carry over a reload.

Live: ``demo_logs`` sources that feed a ``splunk_hec_logs`` sink (they generate and send, see
``standin_hec.py``), ``internal_metrics`` sources and the ``prometheus_exporter`` sinks they
feed (``standin_metrics.py``). Every other component is inert — it loads and validates, but
moves no event — and the stand-in says so in its log, once per component and start or reload.

A ``prometheus_exporter`` that cannot bind behaves as in real Vector: the sink task fails
after start-up ("Failed to start Prometheus exporter: TCP bind failed: …",
``src/sinks/prometheus/exporter.rs``), the topology aborts ("An error occurred that Vector
couldn't handle", ``src/topology/mod.rs``) and Vector shuts down gracefully with exit 0
(``src/app.rs``): :class:`BindError` tells the main loop to do that. On a reload an exporter
whose address did not change keeps its socket (Vector keeps an unchanged sink running).
"""

from __future__ import annotations

import threading
from typing import Any

from standin_config import log
from standin_hec import DemoLogs, SinkSettings
from standin_metrics import REGISTRY, Exporter, component, render
from standin_sink import HecSink

DEFAULT_EXPORTER = "0.0.0.0:9598"  # PrometheusExporterConfig::default_address


class BindError(Exception):
    """Raised when a ``prometheus_exporter`` cannot listen on its address."""

    def __init__(self, sink: str, address: str, error: OSError) -> None:
        detail = f"{error.strerror} (os error {error.errno})" if error.errno else str(error)
        super().__init__(f"TCP bind failed: {detail}")
        self.sink, self.address = sink, address


def _inputs(spec: Any) -> list[str]:
    inputs = spec.get("inputs") if isinstance(spec, dict) else None
    return [str(i) for i in inputs] if isinstance(inputs, list) else []


class Pipeline:
    """What one config runs; :meth:`start` once, :meth:`stop` once."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.sources: dict[str, Any] = dict(doc.get("sources") or {})
        self.sinks: dict[str, Any] = dict(doc.get("sinks") or {})
        enabled = (doc.get("healthchecks") or {}).get("enabled", True) is not False
        self.hec = {
            cid: HecSink(cid, SinkSettings.of(spec, healthchecks=enabled))
            for cid, spec in self.sinks.items()
            if spec.get("type") == "splunk_hec_logs" and spec.get("endpoint")
        }
        self.demo = []
        for cid, spec in self.sources.items():
            if spec.get("type") != "demo_logs":
                continue
            outputs = [s.inbox for sid, s in self.hec.items() if cid in _inputs(self.sinks[sid])]
            if outputs:
                self.demo.append(DemoLogs(cid, spec, outputs))
        self.exporters: dict[str, Exporter] = {}
        self._halt = threading.Event()
        self._ticker: threading.Thread | None = None

    def _metrics_sources(self, sink: Any) -> list[str]:
        kinds = {cid: (spec or {}).get("type") for cid, spec in self.sources.items()}
        return [i for i in _inputs(sink) if kinds.get(i) == "internal_metrics"]

    def _say_inert(self) -> None:
        live = {s.cid for s in self.demo} | set(self.hec)
        for table, kind in ((self.sources, "Source"), (self.sinks, "Sink")):
            for cid, spec in table.items():
                ctype = spec.get("type")
                if cid in live or ctype in ("internal_metrics", "prometheus_exporter"):
                    continue
                log("INFO", "standin", f'{kind} "{cid}" ({ctype}) is inert in the Vector stand-in:'
                    " it moves no events (only demo_logs into splunk_hec_logs does).")  # fmt: skip

    def start(self, previous: Pipeline | None = None) -> None:
        """Bind the exporters (reusing ``previous``'s on the same address), start the threads.

        Raises :class:`BindError` when an exporter cannot listen.
        """
        self._say_inert()
        kept = previous.exporters if previous else {}
        for cid, spec in self.sinks.items():
            if spec.get("type") != "prometheus_exporter":
                continue
            address = str(spec.get("address") or DEFAULT_EXPORTER)
            exporter = kept.pop(address, None)
            if exporter is None:
                try:
                    exporter = Exporter(address)
                except OSError as exc:
                    raise BindError(cid, address, exc) from None
                log("INFO", "vector::sinks::prometheus::exporter", "Building HTTP server.",
                    address=address)  # fmt: skip
            exporter.body = self._body(cid, spec)
            self.exporters[address] = exporter
        for leftover in kept.values():
            leftover.close()
        for thread in [*self.hec.values(), *self.demo]:
            thread.start()
        if any(self._metrics_sources(s) for s in self.sinks.values()):
            self._ticker = threading.Thread(target=self._tick, name="internal_metrics", daemon=True)
            self._ticker.start()

    def _body(self, cid: str, spec: Any) -> Any:
        feeds = self._metrics_sources(spec)
        if not feeds:
            return str  # an exporter fed by no internal_metrics source has nothing to show
        namespace = str(self.sources[feeds[0]].get("namespace", "vector"))
        labels = component(cid, "sink", "prometheus_exporter")

        def body() -> str:
            text = render(REGISTRY, namespace)
            series = sum(1 for line in text.splitlines() if not line.startswith("#"))
            REGISTRY.add("component_sent_events_total", labels, series)
            return text

        return body

    def _tick(self) -> None:
        """``internal_metrics`` scraping: each interval its metrics flow to the exporters."""
        while True:
            for cid, spec in self.sources.items():
                if spec.get("type") != "internal_metrics":
                    continue
                count = len(REGISTRY.series())
                labels = component(cid, "source", "internal_metrics")
                REGISTRY.add("component_received_events_total", labels, count)
                REGISTRY.add("component_sent_events_total", {**labels, "output": "_default"}, count)
                for sid, sink in self.sinks.items():
                    if cid in _inputs(sink) and sink.get("type") == "prometheus_exporter":
                        sink_labels = component(sid, "sink", "prometheus_exporter")
                        REGISTRY.add("component_received_events_total", sink_labels, count)
            interval = min(
                float(s.get("scrape_interval_secs", 1.0))
                for s in self.sources.values()
                if s.get("type") == "internal_metrics"
            )
            if self._halt.wait(max(interval, 0.05)):
                return

    def stop(self, keep_exporters: bool = False) -> None:
        """Stop sources, let sinks send what they hold once, stop the metrics (bounded)."""
        self._halt.set()
        for source in self.demo:
            source.halt.set()
        for source in self.demo:
            if source.is_alive():
                source.join(2)
        for sink in self.hec.values():
            sink.halt.set()
        for sink in self.hec.values():
            if sink.is_alive():
                sink.join(5)
        if not keep_exporters:
            for exporter in self.exporters.values():
                exporter.close()
            self.exporters.clear()
