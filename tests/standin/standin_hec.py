"""``demo_logs`` sources feeding ``splunk_hec_logs`` sinks, sending the way Vector's sink does.

A test double, not Vector: one thread per source and per sink, stdlib HTTP, only the behaviour
the agent and the reference server can observe. Facts imitated (vectordotdev/vector 0.58
source, the same as 0.57 here):

- ``src/sources/demo_logs.rs``: one line per ``interval`` (default 1 s; 0 = as fast as the sink
  takes them), ``count`` lines at most; events ``{message, service: "vector", source_type:
  "demo_logs", timestamp}``. A finished finite source goes quiet here (real Vector would end
  once all its sources finished; use the ``exit-after`` switch for that).
- ``src/sinks/splunk_hec/…`` (see ``logpulse_agent/server/ingest_hec.py`` for the full list):
  batches of at most ``batch.max_bytes`` (1,000,000) or ``batch.max_events``, closed after
  ``batch.timeout_secs`` (1 s); one ``{"event", "fields", "time", "host", "index", "source",
  "sourcetype"}`` object per event, concatenated; ``POST <endpoint>/services/collector/event``
  with ``Authorization: Splunk <token>``, ``X-Splunk-Request-Channel: <uuid4>`` (one per sink)
  and ``Content-Encoding: gzip`` for ``compression: gzip``; the health check ``GET …/health/1.0``
  at start, whose failure is logged and changes nothing (``src/topology/builder.rs``).
- Retries (``src/sinks/util/retries.rs``, ``http.rs``): 408, 429 and 5xx except 501, and
  connection errors, are retried with Fibonacci back-off from ``request.retry_initial_backoff_secs``
  (1) to ``retry_max_duration_secs`` (30) with full jitter, ``retry_attempts`` times (endless by
  default) — no component error is counted for them. Any other status drops the batch: one
  ``component_errors_total`` and the events in ``component_discarded_events_total``.
- The buffer in front of a sink holds 500 events; a full one blocks the source.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from standin_metrics import REGISTRY, component

BUFFER_EVENTS = 500
VERSION = os.environ.get("STANDIN_VERSION", "0.57.0")


def demo_line(fmt: str, n: int, options: dict[str, Any]) -> str:
    """One generated line in the source's ``format`` (the shapes of ``lib/fakedata``)."""
    now = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    if fmt == "shuffle":
        line = random.choice(options.get("lines") or ["line"])
        return f"{n} {line}" if options.get("sequence") else str(line)
    if fmt == "json":
        return json.dumps(
            {"host": f"10.0.{n % 256}.{n % 200}", "user-identifier": "yaml_yoda",
             "datetime": now, "method": "GET", "request": "/apps/deploy",
             "protocol": "HTTP/1.1", "status": "200", "bytes": 1000 + n % 9000,
             "referer": "https://example.com/"}, separators=(",", ":"),
        )  # fmt: skip
    if fmt == "apache_common":
        return f'10.0.0.{n % 256} - yaml_yoda [{now}] "GET /apps/deploy HTTP/1.1" 200 {n % 9000}'
    if fmt == "apache_error":
        return f"[{now}] [error] [pid {n}] There's a breach in the warp core, captain"
    return f"<13>1 {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} example.com demo {n} ID{n} - line {n}"  # noqa: E501


def json_size(value: Any) -> int:
    """The event's size as Vector estimates it: its JSON encoding."""
    return len(json.dumps(value, separators=(",", ":")))


class DemoLogs(threading.Thread):
    """A ``demo_logs`` source putting its events into the buffers of the sinks it feeds."""

    def __init__(self, cid: str, options: dict[str, Any], outputs: list[queue.Queue[Any]]) -> None:
        super().__init__(name=f"source {cid}", daemon=True)
        self.cid, self.options, self.outputs = cid, options, outputs
        self.halt = threading.Event()
        self.labels = component(cid, "source", "demo_logs")

    def run(self) -> None:
        interval = float(self.options.get("interval", 1.0))
        count = int(self.options.get("count", 2**63))
        fmt = str(self.options.get("format", "json"))
        for n in range(count):
            if self.halt.is_set():
                return
            line = demo_line(fmt, n, self.options)
            record = {"message": line, "service": "vector", "source_type": "demo_logs"}
            size = json_size(record)
            REGISTRY.add("component_received_events_total", self.labels)
            REGISTRY.add("component_received_event_bytes_total", self.labels, size)
            record["timestamp"] = time.time()
            for out in self.outputs:
                while not self.halt.is_set():
                    try:
                        out.put(record, timeout=0.1)
                        break
                    except queue.Full:
                        continue
            sent = {**self.labels, "output": "_default"}
            REGISTRY.add("component_sent_events_total", sent)
            REGISTRY.add("component_sent_event_bytes_total", sent, size)
            if interval > 0 and self.halt.wait(interval):
                return


@dataclass(frozen=True)
class SinkSettings:
    """The options of a ``splunk_hec_logs`` sink that shape what goes on the wire."""

    endpoint: str
    token: str
    routing: dict[str, str]
    compression: str  # none, gzip or zlib
    max_bytes: int
    max_events: int | None
    batch_timeout: float
    request_timeout: float
    retry_attempts: int
    retry_initial: float
    retry_max: float
    healthcheck: bool

    @classmethod
    def of(cls, options: dict[str, Any], healthchecks: bool = True) -> SinkSettings:
        batch = options.get("batch") or {}
        request = options.get("request") or {}
        compression = options.get("compression") or "none"
        if isinstance(compression, dict):
            compression = compression.get("algorithm", "none")
        routing = {k: str(options[k]) for k in ("index", "sourcetype", "source") if k in options}
        check = options.get("healthcheck") or {}
        return cls(
            endpoint=str(options["endpoint"]).rstrip("/"),
            token=str(options.get("default_token") or options.get("token") or ""),
            routing=routing,
            compression=str(compression),
            max_bytes=int(batch.get("max_bytes", 1_000_000)),
            max_events=batch.get("max_events"),
            batch_timeout=float(batch.get("timeout_secs", 1.0)),
            request_timeout=float(request.get("timeout_secs", 60)),
            retry_attempts=int(request.get("retry_attempts", 2**63 - 1)),
            retry_initial=float(request.get("retry_initial_backoff_secs", 1)),
            retry_max=float(request.get("retry_max_duration_secs", 30)),
            healthcheck=healthchecks and check.get("enabled", True) is not False,
        )


class Backoff:
    """``FibonacciRetryPolicy`` with full jitter: 1, 1, 2, 3, 5… s (capped), each randomised."""

    def __init__(self, initial: float, cap: float) -> None:
        self.previous, self.current, self.cap = 0.0, initial, cap

    def next(self) -> float:
        self.previous, self.current = self.current, min(self.previous + self.current, self.cap)
        return random.uniform(0.001, self.current)
