"""The stand-in's data plane against the real reference server on 127.0.0.1: demo_logs events sent
the way Vector's splunk_hec_logs sink sends them, and /metrics in Vector's exporter format."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from logpulse_agent.vector.secret_backend import secret_command
from tests.live_server import LiveServer, create_group_with_input, start_live_server
from tests.standin import (
    STANDIN,
    Lines,
    events_named,
    free_port,
    install_standin,
    metric,
    parse_metrics,
    scrape,
    wait_until,
)

SINK = "out_demo"
sys.path.insert(0, str(STANDIN.parent))  # the stand-in's modules import each other by name
import standin_hec  # noqa: E402
import standin_metrics  # noqa: E402
import standin_sink  # noqa: E402


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with start_live_server(tmp_path / "server") as live:
        yield live


class Host:
    """An enrolled agent identity (its token file) and a stand-in run on configs for it."""

    def __init__(self, tmp_path: Path, server: LiveServer) -> None:
        self.tmp, self.server = tmp_path, server
        group = create_group_with_input(server, "web")
        token = server.data("POST", "/enrolment-tokens", {"group": group["id"]})["token"]
        body = {"bootstrapToken": token, "hostname": "vm", "platform": "linux",
                "agentVersion": "0.1.0"}  # fmt: skip
        enrolled = httpx.post(f"{server.url}/api/v1/agents/enrol", json=body).json()["data"]
        self.agent_id, self.token = enrolled["agentId"], enrolled["agentToken"]
        self.token_file = tmp_path / "agent-token"
        self.token_file.write_text(self.token)
        self.vector = install_standin(tmp_path / "bin")
        self.events = tmp_path / "events.jsonl"
        self.metrics = f"127.0.0.1:{free_port()}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def config(
        self,
        *,
        source: dict[str, Any] | None = None,
        sink: dict[str, Any] | None = None,
        metrics: bool = True,
    ) -> Path:
        """demo_logs → splunk_hec_logs (token via the agent's exec backend), + metrics."""
        doc: dict[str, Any] = {
            "secret": {"logpulse": {"type": "exec", "command": secret_command(self.token_file)}},
            "sources": {
                "in_demo": {
                    "type": "demo_logs",
                    "format": "json",
                    "interval": 0.01,
                    "count": 40,
                    **(source or {}),
                }
            },
            "sinks": {
                SINK: {
                    "type": "splunk_hec_logs",
                    "inputs": ["in_demo"],
                    "endpoint": self.server.url,
                    "default_token": "SECRET[logpulse.agent_token]",
                    "encoding": {"codec": "json"},
                    "index": "main",
                    "sourcetype": "agent_demo_logs",
                    "source": "logpulse-agent",
                    "batch": {"timeout_secs": 0.2},
                    **(sink or {}),
                }
            },
        }
        if metrics:
            doc["sources"]["logpulse_internal_metrics"] = {"type": "internal_metrics"}
            doc["sinks"]["logpulse_metrics"] = {
                "type": "prometheus_exporter",
                "inputs": ["logpulse_internal_metrics"],
                "address": self.metrics,
            }
        path = self.tmp / f"vector-{len(self.procs)}.yaml"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        return path

    def start(self, config: Path) -> tuple[subprocess.Popen[bytes], Lines]:
        proc = subprocess.Popen(
            [str(self.vector), "--config-yaml", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "STANDIN_EVENTS": str(self.events)},
        )
        self.procs.append(proc)
        lines = Lines(proc)
        lines.until("Vector has started.")
        return proc, lines

    def series(self) -> dict[Any, float]:
        return parse_metrics(scrape(self.metrics))

    def sent(self) -> float:
        return metric(self.series(), "vector_component_sent_events_total", component_id=SINK)

    def ingested(self) -> int:
        return int(self.server.data("GET", f"/agents/{self.agent_id}")["ingest"]["events"])

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            assert proc.stdout is not None
            proc.stdout.close()


@pytest.fixture
def host(tmp_path: Path, server: LiveServer) -> Iterator[Host]:
    h = Host(tmp_path, server)
    yield h
    h.close()


class TestSending:
    def test_demo_events_reach_the_ingest_as_vector_sends_them(self, host: Host) -> None:
        """40 events, gzip, token from the exec backend: all counted by the server, the
        sink's sent counter says 40, the health check passed."""
        proc, _ = host.start(host.config(sink={"compression": "gzip"}))
        wait_until(lambda: host.ingested() == 40, 20, "the server to count 40 events")
        wait_until(lambda: host.sent() == 40, 10, "the sink's counter to reach 40")
        (check,) = events_named(host.events, "hec_healthcheck")
        assert check["status"] == 200 and check["passed"] is True
        assert all(b["delivered"] for b in events_named(host.events, "hec_batch"))
        recent = host.server.data("GET", "/groups/web/events", limit=1)[0]
        assert recent["sourcetype"] == "agent_demo_logs" and recent["source"] == "logpulse-agent"
        assert recent["event"]["source_type"] == "demo_logs"
        assert json.loads(recent["event"]["message"])["method"] == "GET"
        series = host.series()
        source = metric(series, "vector_component_sent_events_total", component_id="in_demo")
        assert source == 40
        assert metric(series, "vector_http_client_responses_total", status="200") >= 2
        assert host.token not in host.events.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0

    def test_a_refused_token_counts_errors_and_discards(self, host: Host) -> None:
        """A revoked agent: the health check fails ("Invalid HEC token"), every batch gets 403,
        is not retried, and counts one error and its events discarded."""
        host.server.data("POST", f"/agents/{host.agent_id}/revoke")
        _, lines = host.start(host.config(source={"count": 10}))
        lines.until('Healthcheck failed. error="Invalid HEC token"')
        lines.until("Not retriable; dropping the request.")

        def discarded() -> float:
            return metric(host.series(), "vector_component_discarded_events_total",
                          component_id=SINK, intentional="false")  # fmt: skip

        wait_until(lambda: discarded() == 10, 15, "10 discarded events")
        series = host.series()
        errors = metric(series, "vector_component_errors_total", component_id=SINK,
                        error_type="request_failed", stage="sending")  # fmt: skip
        assert errors == len(events_named(host.events, "hec_batch")) >= 1
        assert metric(series, "vector_http_client_responses_total", status="403") == errors
        assert metric(series, "vector_component_sent_events_total", component_id=SINK) == 0
        assert host.ingested() == 0

    def test_a_503_burst_is_retried_without_loss(self, host: Host) -> None:
        """While the ingest answers 503 the sink retries (no component error); after the
        pause every event arrives exactly once."""
        host.server.data("POST", "/ingest/pause", {"seconds": 3})
        host.start(host.config(source={"count": 20}))

        def busy_answers() -> float:
            return metric(host.series(), "vector_http_client_responses_total", status="503")

        wait_until(lambda: busy_answers() >= 2, 15, "two 503 answers")
        assert metric(host.series(), "vector_component_errors_total", component_id=SINK) == 0
        host.server.data("POST", "/ingest/resume")
        wait_until(lambda: host.sent() == 20, 40, "all 20 events sent after the pause")
        assert host.ingested() == 20
        assert metric(host.series(), "vector_component_errors_total", component_id=SINK) == 0

    def test_an_unreachable_ingest_is_retried_and_counted_as_http_errors(self, host: Host) -> None:
        """Connection refused: retried, http_client_errors_total grows, nothing is dropped."""
        dead = f"http://127.0.0.1:{free_port()}"
        host.start(host.config(sink={"endpoint": dead}, source={"count": 5}))
        wait_until(
            lambda: (
                metric(host.series(), "vector_http_client_errors_total", component_id=SINK) >= 2
            ),
            15,
            "two connection errors",
        )
        series = host.series()
        assert metric(series, "vector_component_errors_total", component_id=SINK) == 0
        assert metric(series, "vector_component_received_events_total", component_id=SINK) == 5


class TestMetrics:
    def test_vectors_exporter_format(self, host: Host) -> None:
        """HELP/TYPE per name, vector_ prefix, sorted labels with host, ms timestamps."""
        host.start(host.config())
        wait_until(lambda: host.sent() == 40, 20, "the events to be sent")
        response = httpx.get(f"http://{host.metrics}/metrics", trust_env=False)
        assert response.headers["content-type"] == "text/plain; version=0.0.4"
        text = response.text
        name = "vector_component_sent_events_total"
        assert f"# HELP {name} component_sent_events_total\n# TYPE {name} counter\n" in text
        line = next(x for x in text.splitlines() if x.startswith(name + "{") and SINK in x)
        labels, value, stamp = line[len(name) + 1 :].rsplit(" ", 2)
        assert labels == (
            f'component_id="{SINK}",component_kind="sink",component_type="splunk_hec_logs",'
            f'host="{socket.gethostname()}"}}'
        )
        assert value == "40" and stamp.isdigit() and len(stamp) == 13
        names = [x.split()[2] for x in text.splitlines() if x.startswith("# HELP")]
        assert names == sorted(names)
        series = parse_metrics(text)
        own = metric(series, "vector_component_received_events_total",
                     component_id="logpulse_internal_metrics")  # fmt: skip
        assert own > 0  # the reserved components report too; the agent leaves them out
        assert httpx.get(f"http://{host.metrics}/other", trust_env=False).status_code == 404

    def test_counters_start_from_zero_after_a_restart(self, host: Host) -> None:
        """A restarted Vector's counters start again from zero."""
        proc, _ = host.start(host.config())
        wait_until(lambda: host.sent() == 40, 20, "the first run to send 40")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        host.start(host.config(source={"interval": 30}))
        wait_until(lambda: _answers(host.metrics), 10, "the exporter after the restart")
        assert host.sent() < 40

    def test_a_taken_port_stops_vector_as_real_vector_does(self, host: Host) -> None:
        """Bind failure: logged after start-up, the topology aborts, graceful exit 0."""
        address, port = host.metrics.split(":")
        with socket.socket() as taken:
            taken.bind((address, int(port)))
            taken.listen(1)
            proc, lines = host.start(host.config())
            rest = "\n".join(lines.rest())
            assert proc.wait(10) == 0
        assert (
            "Failed to start Prometheus exporter: TCP bind failed: Address already in use" in rest
        )
        assert "An error occurred that Vector couldn't handle" in rest
        assert rest.index("Vector is stopping.") < rest.index("Vector has stopped.")
        (crash,) = events_named(host.events, "crashed")
        assert crash["reason"] == "prometheus_exporter_bind"

    def test_reload_keeps_the_exporter_and_its_counters(self, host: Host) -> None:
        """SIGHUP to a changed config: same /metrics socket, counters carry on."""
        config = host.config()
        proc, lines = host.start(config)
        wait_until(lambda: host.sent() == 40, 20, "the first config to send 40")
        changed = json.loads(config.read_text())
        changed["sources"]["in_demo"]["count"] = 10
        config.write_text(json.dumps(changed))
        proc.send_signal(signal.SIGHUP)
        lines.until("Vector has reloaded.")
        wait_until(lambda: host.sent() == 50, 20, "40 + 10 events after the reload")
        assert host.ingested() == 50


class TestInert:
    def test_other_components_are_inert_and_say_so(self, host: Host) -> None:
        """A file source and a blackhole sink move nothing, and the log says so."""
        config = host.config(metrics=False)
        doc = json.loads(config.read_text())
        doc["sources"]["in_file"] = {"type": "file", "include": ["/var/log/*.log"]}
        doc["sinks"]["out_null"] = {"type": "blackhole", "inputs": ["in_file"]}
        doc["data_dir"] = str(host.tmp)
        config.write_text(json.dumps(doc))
        _, lines = host.start(config)
        lines.until('Source "in_file" (file) is inert in the Vector stand-in')
        lines.until('Sink "out_null" (blackhole) is inert in the Vector stand-in')
        wait_until(lambda: host.ingested() == 40, 20, "the demo source to still send")


def _answers(address: str) -> bool:
    try:
        scrape(address, timeout=1)
    except httpx.HTTPError:
        return False
    return True


class TestUnits:
    """The stand-in's pure parts, checked against Vector's rules and the server's parser."""

    def test_encoded_events_parse_as_the_server_reads_them(self) -> None:
        """encode() writes what HecLogsEncoder writes: timestamp moved to "time"."""
        from logpulse_agent.server.ingest_hec import parse_events

        record = {"message": "m", "service": "vector", "source_type": "demo_logs",
                  "timestamp": 1750000000.12345}  # fmt: skip
        routing = {"sourcetype": "s", "index": "main", "source": "src"}
        raw = standin_sink.encode(record, routing)
        assert list(json.loads(raw)) == ["event", "fields", "time", "index", "source",
                                         "sourcetype"]  # fmt: skip
        assert json.loads(raw)["time"] == 1750000000.123
        batch = parse_events((raw * 3).decode())
        assert batch.counts == {("main", "s", "src"): [3, 3 * len(raw)]}

    def test_retry_rule_and_backoff(self) -> None:
        """408, 429, 5xx but 501 retried; Fibonacci back-off with full jitter, capped."""
        retried = [c for c in (200, 400, 403, 408, 429, 500, 501, 503) if standin_sink.retriable(c)]
        assert retried == [408, 429, 500, 503]
        backoff = standin_hec.Backoff(1, 5)
        caps = []
        for _ in range(6):
            delay = backoff.next()
            caps.append(backoff.current)
            assert 0 < delay <= backoff.current
        assert caps == [1, 2, 3, 5, 5, 5]

    def test_sink_defaults_are_vectors(self) -> None:
        """1 MB / 1 s batches, no compression, 60 s timeout, endless retries from 1 s to 30 s."""
        s = standin_hec.SinkSettings.of({"endpoint": "http://x/", "default_token": "t"})
        assert (s.max_bytes, s.max_events, s.batch_timeout) == (1_000_000, None, 1.0)
        assert (s.compression, s.request_timeout, s.retry_initial, s.retry_max) == (
            "none", 60.0, 1.0, 30.0)  # fmt: skip
        assert s.retry_attempts > 10**18 and s.healthcheck and s.endpoint == "http://x"
        gz = standin_hec.SinkSettings.of(
            {"endpoint": "http://x", "compression": {"algorithm": "gzip", "level": "best"},
             "healthcheck": {"enabled": False}}
        )  # fmt: skip
        assert gz.compression == "gzip" and not gz.healthcheck

    def test_render_is_the_string_collectors_format(self) -> None:
        """Sorted names, HELP/TYPE once per name, sorted escaped labels, Rust floats."""
        registry = standin_metrics.Registry()
        registry.add("component_errors_total", {"component_id": 'a"b', "stage": "sending"}, 2)
        registry.set("uptime_seconds", {}, 1.5)
        text = standin_metrics.render(registry, "vector", now=1.0)
        host = socket.gethostname()
        assert text == (
            "# HELP vector_component_errors_total component_errors_total\n"
            "# TYPE vector_component_errors_total counter\n"
            f'vector_component_errors_total{{component_id="a\\"b",host="{host}",'
            'stage="sending"} 2 1000\n'
            "# HELP vector_uptime_seconds uptime_seconds\n"
            "# TYPE vector_uptime_seconds gauge\n"
            f'vector_uptime_seconds{{host="{host}"}} 1.5 1000\n'
        )
        assert standin_metrics.rust_f64(42.0) == "42" and standin_metrics.rust_f64(0.25) == "0.25"
