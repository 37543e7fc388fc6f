"""systemd notifications: READY and watchdog pings reach $NOTIFY_SOCKET; no socket, no-op."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from logpulse_agent.daemon.sdnotify import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_ready_reaches_the_socket(notify_socket) -> None:  # type: ignore[no-untyped-def]
    """READY=1 is one datagram to NOTIFY_SOCKET."""
    path, sock = notify_socket
    Notifier({"NOTIFY_SOCKET": str(path)}).ready()
    assert sock.recv(1024).startswith(b"READY=1")


@pytest.mark.anyio
async def test_watchdog_pings_at_half_the_interval(notify_socket) -> None:  # type: ignore[no-untyped-def]
    """WATCHDOG_USEC=100000 → a WATCHDOG=1 ping every 50 ms from the event loop."""
    path, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "100000"})
    assert notifier.watchdog_interval == 0.05
    task = asyncio.create_task(notifier.watchdog())
    await asyncio.sleep(0.2)
    task.cancel()
    sock.setblocking(False)
    pings = []
    while True:
        try:
            pings.append(sock.recv(1024))
        except BlockingIOError:
            break
    assert len(pings) >= 3 and set(pings) == {b"WATCHDOG=1"}


def test_without_systemd_nothing_happens() -> None:
    """Outside systemd every call is a no-op."""
    notifier = Notifier({})
    notifier.ready()
    notifier.stopping()
    assert notifier.address is None
