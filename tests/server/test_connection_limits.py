"""Clients that are not agents cannot starve the server (issue 10 §2): a real ``serve`` process
on 127.0.0.1, raw sockets for the hostile clients, httpx for the agent. Every wait is a bounded
loop on a condition; nothing asserts a duration."""

from __future__ import annotations

import contextlib
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from logpulse_agent.server.serving import RESERVED_FDS, default_max_connections
from tests.live_server import LiveServer, create_group_with_input, mint_token, start_live_server

MIB = 1024 * 1024
BOUND = 30.0  # seconds any wait below may take at most (a loaded machine), never asserted


@contextlib.contextmanager
def server(tmp_path: Path, *args: str) -> Iterator[LiveServer]:
    live = start_live_server(tmp_path, extra_args=list(args))
    try:
        yield live
    finally:
        live.stop()


def _address(live: LiveServer) -> tuple[str, int]:
    url = urlsplit(live.url)
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port


def _connect(live: LiveServer) -> socket.socket:
    sock = socket.create_connection(_address(live), timeout=BOUND)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    chunks = []
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _rss(live: LiveServer) -> int:
    return int(psutil.Process(live.process.pid).memory_info().rss)


class TestHeadSize:
    def test_a_48_mib_header_gets_431_and_the_server_does_not_grow(self, tmp_path: Path) -> None:
        with server(tmp_path) as live:
            with httpx.Client(base_url=live.url) as agent:
                assert agent.get("/healthz").status_code == 200
            before = _rss(live)
            sock = _connect(live)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")

            def stream() -> None:
                chunk = b"a" * MIB
                with contextlib.suppress(OSError):
                    for _ in range(48):
                        sock.sendall(chunk)

            sender = threading.Thread(target=stream, daemon=True)
            sender.start()
            answer = _read_all(sock)
            sender.join(BOUND)
            sock.close()
            assert _status(answer) == 431, answer[:200]
            assert b"header_fields_too_large" in answer
            assert _rss(live) - before < 8 * MIB  # it buffered 32 KiB, not 48 MiB
            with httpx.Client(base_url=live.url) as agent:
                assert agent.get("/healthz").status_code == 200

    def test_many_small_headers_count_too(self, tmp_path: Path) -> None:
        with server(tmp_path) as live, _connect(live) as sock:
            head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 10_000 + b"\r\n"
            with contextlib.suppress(OSError):
                sock.sendall(head)
            assert _status(_read_all(sock)) == 431

    def test_an_over_long_request_line_gets_414(self, tmp_path: Path) -> None:
        with server(tmp_path) as live, _connect(live) as sock:
            sock.sendall(b"GET /healthz?" + b"q" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = _read_all(sock)
            assert _status(answer) == 414, answer[:200]

    def test_a_head_just_under_the_limit_is_served(self, tmp_path: Path) -> None:
        with server(tmp_path) as live, _connect(live) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 30_000)
            sock.sendall(b"\r\nConnection: close\r\n\r\n")
            assert _status(_read_all(sock)) == 200


class TestHeadDeadline:
    def test_a_trickling_client_is_cut_at_the_header_deadline(self, tmp_path: Path) -> None:
        with server(tmp_path, "--header-timeout", "1") as live, _connect(live) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            sock.settimeout(0.2)
            answer = b""
            deadline = time.monotonic() + BOUND
            while time.monotonic() < deadline:
                try:
                    sock.sendall(b"X")  # one byte of a header that never ends
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                answer += chunk
                if not chunk:
                    break
            else:
                pytest.fail("the trickling connection was never closed")
            assert _status(answer) in (0, 408), answer[:200]  # 408 unless the reset won

    def test_a_connection_that_sends_nothing_is_closed(self, tmp_path: Path) -> None:
        with server(tmp_path, "--header-timeout", "1") as live, _connect(live) as sock:
            try:
                closed = sock.recv(1) == b""
            except ConnectionResetError:
                closed = True
            except TimeoutError:  # still open after BOUND seconds
                closed = False
            assert closed

    def test_a_slow_but_complete_head_and_keep_alive_still_work(self, tmp_path: Path) -> None:
        """The deadline is per request head: a kept-alive connection serves request after
        request, and an agent's head split over several packets is fine."""
        with server(tmp_path, "--header-timeout", "5") as live, _connect(live) as sock:
            reader = sock.makefile("rb")
            for _ in range(3):
                sock.sendall(b"GET /healthz HTTP/1.1\r\n")
                sock.sendall(b"Host: x\r\n\r\n")
                assert _status(reader.readline()) == 200
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                reader.read(length)


class TestConnectionCap:
    def test_beyond_the_cap_new_connections_get_503_and_live_agents_keep_working(
        self, tmp_path: Path
    ) -> None:
        with server(tmp_path, "--max-connections", "4", "--keep-alive", "60") as live:
            create_group_with_input(live, "web")
            token = mint_token(live, "web")
            with httpx.Client(base_url=live.url, timeout=BOUND) as agent:
                enrolled = agent.post(
                    "/api/v1/agents/enrol",
                    json={
                        "bootstrapToken": token,
                        "hostname": "web-1",
                        "platform": "linux",
                        "agentVersion": "0.4.1",
                    },
                )
                assert enrolled.status_code == 201
                data = enrolled.json()["data"]
                auth = {"Authorization": f"Bearer {data['agentToken']}"}
                beat = {"agentVersion": "0.4.1", "appliedConfigVersion": 0, "vectorRunning": True}
                heartbeat = f"/api/v1/agents/{data['agentId']}/heartbeat"
                idle = [_connect(live) for _ in range(3)]  # with the agent's: 4, the cap
                refused = _first_refusal(live)
                assert _status(refused) == 503, refused[:200]
                assert b"retry-after: 5" in refused.lower()
                assert b"over_capacity" in refused
                # the agent's connection was admitted before the cap was reached
                assert agent.post(heartbeat, json=beat, headers=auth).status_code == 200
                for sock in idle:
                    sock.close()
                assert _served_again(live)
                assert agent.post(heartbeat, json=beat, headers=auth).status_code == 200


def _first_refusal(live: LiveServer) -> bytes:
    """The answer of the first new connection the server refuses (bounded retries: the idle
    connections opened just before may not all be accepted yet)."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        with _connect(live) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = _read_all(sock)
        if _status(answer) == 503:
            return answer
        time.sleep(0.05)
    return b""


def _served_again(live: LiveServer) -> bool:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        with httpx.Client(base_url=live.url) as fresh:
            if fresh.get("/healthz").status_code == 200:
                return True
        time.sleep(0.05)
    return False


class TestOpenFileLimit:
    def test_the_soft_limit_is_raised_to_the_hard_one(self) -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        lowered = min(256, hard)
        code = (
            "import resource\n"
            "from logpulse_agent.server.serving import raise_open_file_limit\n"
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({lowered}, {hard}))\n"
            "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout.split()
        expected = hard if hard != resource.RLIM_INFINITY else max(lowered, 1 << 20)
        assert [int(x) for x in out] in ([expected, expected], [lowered, lowered])
        if hard != resource.RLIM_INFINITY:
            assert int(out[0]) == hard

    def test_the_default_cap_leaves_room_below_the_open_file_limit(self) -> None:
        assert default_max_connections(1024) == 1024 - RESERVED_FDS
        assert default_max_connections(1_048_576) == 16_384
        assert default_max_connections(10) == 1
