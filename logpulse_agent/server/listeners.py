"""What each input listens on, and which two inputs of a group would claim one listener.

Vector refuses a config where two components claim one resource: ``check_resources`` in
``src/config/validation.rs`` ("Resource `…` is claimed by multiple components"), with resources
from each source's ``resources()`` — ``Port(SocketAddr, Protocol)`` for tcp/udp addresses,
``SystemFdOffset`` for ``systemd``/``systemd#N`` whatever the protocol (``src/config/mod.rs``;
``systemd`` and ``systemd#1`` are both offset 0). Vector compares ports for exact equality
only; the kernel refuses the rest when the second socket binds (``0.0.0.0:514`` and
``10.0.0.5:514`` on one protocol, or ``[::]:514``, dual-stack by default on Linux, and any IPv4
address). Unix socket paths are no Vector resource, but binding a path another source holds
fails and the unix socket sources panic (``src/sources/util/unix_stream.rs``), so they clash
too. A group renders one config for its agents, so a clash fails every agent of it.
"""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from logpulse_agent.server.addresses import (
    IPAddress,
    SocketAddr,
    SystemdSocket,
    parse_listen_addr,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Listener:
    """One thing an input binds: ``protocol`` is tcp, udp, unix or systemd."""

    protocol: str
    address: SocketAddr | SystemdSocket | str

    def __str__(self) -> str:
        if isinstance(self.address, SystemdSocket):
            return str(self.address)
        if self.protocol == "unix":
            return f"unix socket {self.address}"
        return f"{self.protocol} {self.address}"

    def clashes(self, other: Listener) -> bool:
        """Whether binding both would fail (see the module docstring)."""
        a, b = self.address, other.address
        if isinstance(a, SocketAddr) and isinstance(b, SocketAddr):
            return self.protocol == other.protocol and _ports_clash(a, b)
        return a == b


def _bind_ip(addr: SocketAddr) -> tuple[IPAddress, int]:
    """The address the kernel binds: an IPv4-mapped IPv6 address is its IPv4 address."""
    if isinstance(addr.ip, ipaddress.IPv6Address) and addr.ip.ipv4_mapped is not None:
        return addr.ip.ipv4_mapped, 0
    return addr.ip, addr.scope_id


def _covers(wild: IPAddress, other: IPAddress) -> bool:
    """An unspecified address binds its whole family; ``::`` also IPv4 (dual-stack)."""
    return wild.is_unspecified and (wild.version == 6 or wild.version == other.version)


def _ports_clash(a: SocketAddr, b: SocketAddr) -> bool:
    if a.port != b.port:
        return False
    (ip_a, scope_a), (ip_b, scope_b) = _bind_ip(a), _bind_ip(b)
    return (ip_a, scope_a) == (ip_b, scope_b) or _covers(ip_a, ip_b) or _covers(ip_b, ip_a)


def listeners(input_type: str, options: Mapping[str, Any]) -> list[Listener]:
    """The listeners of an input whose options passed ``validate_input``."""
    mode = options.get("mode", "tcp" if input_type == "http_server" else None)
    if input_type not in ("syslog", "socket", "http_server") or mode is None:
        return []
    if mode in ("unix", "unix_datagram", "unix_stream"):
        return [Listener("unix", posixpath.normpath(options["path"]))]
    address = parse_listen_addr(options["address"])
    return [Listener("systemd" if isinstance(address, SystemdSocket) else mode, address)]


def first_clash(
    candidate: list[Listener], others: Iterable[tuple[T, list[Listener]]]
) -> tuple[T, Listener] | None:
    """The first of ``others`` (in order) holding a listener ``candidate`` clashes with."""
    for owner, held in others:
        for mine in candidate:
            for theirs in held:
                if mine.clashes(theirs):
                    return owner, theirs
    return None
