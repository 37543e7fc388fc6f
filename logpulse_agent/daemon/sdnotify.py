"""systemd readiness and watchdog notifications (``Type=notify``, ``WatchdogSec=``).

The protocol is one datagram to the socket named by ``$NOTIFY_SOCKET`` (see sd_notify(3));
outside systemd the variable is unset and every call is a no-op.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)


class Notifier:
    """Sends ``READY=1``, ``STOPPING=1``, ``STATUS=…`` and ``WATCHDOG=1`` to systemd."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # abstract namespace socket
            address = "\0" + address[1:]
        self.address = address or None
        usec = environ.get("WATCHDOG_USEC", "")
        self.watchdog_interval: float | None = int(usec) / 2e6 if usec.isdigit() else None

    def notify(self, message: str) -> None:
        if self.address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.warning("systemd.notify_failed", error=str(exc))

    def ready(self) -> None:
        self.notify("READY=1\nSTATUS=starting")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    async def watchdog(self) -> None:
        """Ping the watchdog from the event loop: a wedged loop stops the pings."""
        if self.address is None or self.watchdog_interval is None:
            return
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_interval)
