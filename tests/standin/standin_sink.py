"""One ``splunk_hec_logs`` sink of the stand-in: health check, batching, sending, retries.

The rules it follows are listed in ``standin_hec.py``; log lines use Vector's messages, and
each sent or dropped batch is also recorded in ``$STANDIN_EVENTS`` (``hec_batch``, with the
HTTP status; ``hec_healthcheck`` once at start) — never the token.
"""

from __future__ import annotations

import gzip
import http.client
import json
import queue
import threading
import time
import uuid
import zlib
from typing import Any
from urllib.parse import urlsplit

from standin_config import event, log
from standin_hec import BUFFER_EVENTS, VERSION, Backoff, SinkSettings, json_size
from standin_metrics import REGISTRY, component

TARGET = "vector::sinks::util::retries"
DROPPED = "Service call failed. No retries or retries exhausted."
RETRIABLE = {408, 429}


def retriable(status: int) -> bool:
    """``RetryStrategy::Default``: 408, 429 and every 5xx but 501."""
    return status in RETRIABLE or (500 <= status < 600 and status != 501)


def encode(record: dict[str, Any], routing: dict[str, str]) -> bytes:
    """One event the way ``HecLogsEncoder`` writes it for the ``event`` endpoint."""
    body = {k: v for k, v in record.items() if k != "timestamp"}
    envelope: dict[str, Any] = {"event": body, "fields": {}}
    if "timestamp" in record:
        envelope["time"] = round(float(record["timestamp"]), 3)
    if isinstance(record.get("host"), str):
        envelope["host"] = record["host"]
    envelope.update(sorted(routing.items()))  # index, source, sourcetype: serde's order
    return json.dumps(envelope, separators=(",", ":")).encode()


class HecSink(threading.Thread):
    """Takes events from ``inbox`` (its 500-event buffer) and sends them in batches."""

    def __init__(self, cid: str, settings: SinkSettings) -> None:
        super().__init__(name=f"sink {cid}", daemon=True)
        self.cid, self.settings = cid, settings
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue(BUFFER_EVENTS)
        self.halt = threading.Event()
        self.labels = component(cid, "sink", "splunk_hec_logs")
        self.channel = str(uuid.uuid4())
        self._conn: http.client.HTTPConnection | None = None
        self._requests = 0

    # --- HTTP ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        s = self.settings
        headers = {
            "Authorization": f"Splunk {s.token}",
            "User-Agent": f"Vector/{VERSION} (x86_64-unknown-linux-gnu standin)",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
            headers["X-Splunk-Request-Channel"] = self.channel
            if s.compression in ("gzip", "zlib"):
                headers["Content-Encoding"] = "gzip" if s.compression == "gzip" else "deflate"
                body = gzip.compress(body) if s.compression == "gzip" else zlib.compress(body)
        REGISTRY.add("http_client_requests_sent_total", {**self.labels, "method": method})
        try:
            if self._conn is None:
                parts = urlsplit(s.endpoint)
                https = parts.scheme == "https"
                connect = http.client.HTTPSConnection if https else http.client.HTTPConnection
                self._conn = connect(parts.netloc, timeout=s.request_timeout)
            self._conn.request(method, urlsplit(s.endpoint).path + path, body, headers)
            answer = self._conn.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self._close()
            kind = str(exc) or type(exc).__name__
            REGISTRY.add("http_client_errors_total", {**self.labels, "error_kind": kind})
            raise
        REGISTRY.add("http_client_responses_total", {**self.labels, "status": str(answer.status)})
        return answer.status, data

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- behaviour -------------------------------------------------------------------------
    def healthcheck(self) -> None:
        """``build_healthcheck``: 200 passes; 400 "Invalid HEC token"; 503 "Queues are full"."""
        try:
            status, _ = self._request("GET", "/services/collector/health/1.0")
            problem = {200: None, 400: "Invalid HEC token", 503: "Queues are full"}.get(
                status, f"Unexpected status: {status} {http.client.responses.get(status, '')}"
            )
        except (OSError, http.client.HTTPException) as exc:
            status, problem = 0, str(exc) or type(exc).__name__
        event("hec_healthcheck", sink=self.cid, status=status, passed=problem is None)
        if problem is None:
            log("INFO", "vector::topology::builder", "Healthcheck passed.")
        else:
            log("ERROR", "vector::topology::builder", "Healthcheck failed.", error=problem,
                component_kind="sink", component_type="splunk_hec_logs",
                component_id=self.cid)  # fmt: skip

    def run(self) -> None:
        if self.settings.healthcheck:
            self.healthcheck()
        while not self.halt.is_set():
            batch = self._collect()
            if batch:
                self._deliver(batch, retries=True)
        rest = self._collect(drain=True)  # graceful stop: what is buffered goes out once
        if rest:
            self._deliver(rest, retries=False)
        self._close()

    def _collect(self, drain: bool = False) -> list[tuple[bytes, int]]:
        """The next batch: (encoded event, its size) pairs, closed by size, count or time."""
        s, batch, size, deadline = self.settings, [], 0, None
        while True:
            timeout = 0.05 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                record = self.inbox.get_nowait() if drain else self.inbox.get(timeout=timeout)
            except queue.Empty:
                if drain or deadline is not None or self.halt.is_set():
                    return batch
                continue
            encoded, estimated = encode(record, s.routing), json_size(record)
            REGISTRY.add("component_received_events_total", self.labels)
            REGISTRY.add("component_received_event_bytes_total", self.labels, estimated)
            batch.append((encoded, estimated))
            size += len(encoded)
            deadline = deadline or time.monotonic() + s.batch_timeout
            full = size >= s.max_bytes or (s.max_events and len(batch) >= s.max_events)
            if full or (deadline and time.monotonic() >= deadline):
                return batch

    def _deliver(self, batch: list[tuple[bytes, int]], retries: bool) -> None:
        body = b"".join(encoded for encoded, _ in batch)
        backoff = Backoff(self.settings.retry_initial, self.settings.retry_max)
        attempts, count = 0, len(batch)
        self._requests += 1
        while True:
            try:
                status, _ = self._request("POST", "/services/collector/event", body)
                error = None
            except (OSError, http.client.HTTPException) as exc:
                status, error = 0, str(exc) or type(exc).__name__
            if 200 <= status < 300:
                REGISTRY.add("component_sent_events_total", self.labels, count)
                REGISTRY.add("component_sent_event_bytes_total", self.labels,
                             sum(n for _, n in batch))  # fmt: skip
                event("hec_batch", sink=self.cid, events=count, status=status, delivered=True,
                      attempts=attempts + 1)  # fmt: skip
                return
            again = error is not None or retriable(status)
            if again and retries and attempts < self.settings.retry_attempts:
                attempts += 1
                reason = error or f"{status} {http.client.responses.get(status, '')}".strip()
                message = "Retrying after error." if error else "Retrying after response."
                log("WARN", TARGET, message, reason=reason)
                if self.halt.wait(backoff.next()):
                    retries = False  # stopping: one last try, then give up
                continue
            self._drop(status, error, count, transient=again, attempts=attempts + 1)
            return

    def _drop(
        self, status: int, error: str | None, count: int, transient: bool, attempts: int
    ) -> None:
        """A batch given up: a rejected one (4xx) counts an error and its events discarded;
        a transient failure after the last retry only logs, as ``HecService`` reports it
        ``Errored``, which the driver does not count."""
        event("hec_batch", sink=self.cid, events=count, status=status, delivered=False,
              attempts=attempts)  # fmt: skip
        if error is not None:
            log("ERROR", TARGET, "Retries exhausted; dropping the request.", error=error)
        elif transient:
            log("ERROR", TARGET, "OK/retry response but retries exhausted; dropping the request.")
            return
        else:
            reason = f"{status} {http.client.responses.get(status, '')}".strip()
            log("ERROR", TARGET, "Not retriable; dropping the request.", reason=reason)
        log("ERROR", "vector_common::internal_event::service", DROPPED,
            request_id=self._requests, error_type="request_failed", stage="sending")  # fmt: skip
        errors = {**self.labels, "error_type": "request_failed", "stage": "sending"}
        REGISTRY.add("component_errors_total", errors)
        REGISTRY.add("component_discarded_events_total", {**self.labels, "intentional": "false"},
                     count)  # fmt: skip
        log("ERROR", "vector_common::internal_event::component_events_dropped", "Events dropped",
            intentional="false", count=count, reason=DROPPED)  # fmt: skip
