"""Network addresses in input options and the ingest URL, checked the way their readers parse them.

Each ``*_problem`` function returns ``None`` for a value that is fine, or the end of a one-line
error sentence ("must be …") for the schema checker of ``render_schema`` to prefix with the option.

Sources of the rules (Vector 0.57.0 unless said otherwise):

- Listen addresses, ``src/sources/util/net/mod.rs`` ``SocketListenAddr::try_from``: Rust's
  ``SocketAddr::from_str`` first, else ``systemd`` (socket offset 0) or ``systemd#N`` where
  ``N.parse::<usize>()`` minus one must not underflow (``Systemd indices start from 1``). Rust's
  grammar (``core/src/net/parser.rs``) reads ASCII only: ``a.b.c.d:port`` with decimal octets of
  at most three digits and no leading zero, or ``[v6]:port`` / ``[v6%scope]:port`` with a decimal
  ``u32`` scope; the port is decimal ``u16`` (leading zeros allowed). No host names: ``localhost``
  is refused at load. Python's :mod:`ipaddress` applies the same octet and hextet rules, so it
  reads the IP part; port and scope are checked here. The ``http_server`` source takes a plain
  ``SocketAddr`` (``src/sources/http_server.rs``), so ``systemd`` is refused there.
- Port 0 parses, but binds a random port nobody can send to, so it is refused. ``systemd#N`` is
  capped at 2**31 - 3: socket activation passes descriptors from 3 on and a descriptor is a C
  ``int``, so a larger index can never name one.
- CIDR networks (``permit_origin``), ``lib/vector-core/src/ipallowlist.rs``: ``ipnet::IpNet``
  (ipnet 2.12), whose parser wants ``address/prefix`` with a prefix of at most 32 (IPv4) or 128
  (IPv6) and no scope; a bare address or ``anywhere`` fails to load.
- Kafka brokers, librdkafka 2.12.1 ``rd_kafka_broker_name_parse``: a comma-separated list of
  ``host`` or ``host:port`` (port 9092 when left out).
- The ingest URL's host is used by every agent's HTTP sink: Vector's ``http::Uri`` refuses
  non-ASCII characters (an internationalised name must be given in its ``xn--`` form), and a
  port of 0 or a malformed host name makes every send fail.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_SYSTEMD_INDEX = 2**31 - 3
_U32_MAX = 2**32 - 1
_DIGITS = re.compile(r"[0-9]+")  # ASCII digits only: Python's \d also matches other scripts
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_DOTTED_NUMBERS = re.compile(r"[0-9.]+")
_BROKER = re.compile(r"(\[[^\]]*\]|[A-Za-z0-9._-]+)(?::([^:]*))?")

SOCKET_ADDR_HINT = "an IP address and port such as 0.0.0.0:514 or [::]:514"


@dataclass(frozen=True)
class SocketAddr:
    """A parsed Rust ``SocketAddr``: an IP literal, a port and (IPv6 only) a scope id."""

    ip: IPAddress
    port: int
    scope_id: int = 0

    def __str__(self) -> str:
        if self.ip.version == 4:
            return f"{self.ip}:{self.port}"
        scope = f"%{self.scope_id}" if self.scope_id else ""
        return f"[{self.ip}{scope}]:{self.port}"


@dataclass(frozen=True)
class SystemdSocket:
    """``systemd`` / ``systemd#N``: Vector's ``SystemFdOffset`` (plain and N=1 are offset 0)."""

    offset: int

    def __str__(self) -> str:
        return f"systemd socket #{self.offset + 1}"


def parse_ip(text: str) -> IPAddress | None:
    """An IPv4 or IPv6 literal as Rust's ``IpAddr::from_str`` reads it (no scope), else None."""
    if not text.isascii() or "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _port(text: str) -> int | None:
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= 65535 else None


def parse_socket_addr(text: str) -> SocketAddr | None:
    """Rust's ``SocketAddr::from_str``: ``a.b.c.d:port`` or ``[v6(%scope)]:port``, else None."""
    if not text.isascii():
        return None
    if text.startswith("["):
        inner, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return None
        host, percent, scope = inner.partition("%")
        if percent and not (_DIGITS.fullmatch(scope) and int(scope) <= _U32_MAX):
            return None
        try:
            ip: IPAddress = ipaddress.IPv6Address(host)
        except ValueError:
            return None
        port = _port(rest[1:])
        return None if port is None else SocketAddr(ip, port, int(scope) if percent else 0)
    host, colon, port_text = text.rpartition(":")
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError:
        return None
    port = _port(port_text)
    return None if not colon or port is None else SocketAddr(ip, port)


def parse_listen_addr(text: str, *, systemd: bool = True) -> SocketAddr | SystemdSocket:
    """A listen address as Vector reads it; ``ValueError`` says why one is refused."""
    addr = parse_socket_addr(text)
    if addr is not None:
        if addr.port == 0:
            raise ValueError("has port 0, which listens on a random port; use 1 to 65535")
        return addr
    if systemd and text == "systemd":
        return SystemdSocket(0)
    if systemd and text.startswith("systemd#"):
        index = text[len("systemd#") :]
        if not _DIGITS.fullmatch(index) or not 1 <= int(index) <= MAX_SYSTEMD_INDEX:
            raise ValueError(
                f"must be systemd#N with N a whole number from 1 to {MAX_SYSTEMD_INDEX} "
                "(systemd#1 is the first socket systemd passes)"
            )
        return SystemdSocket(int(index) - 1)
    alternatives = ", or systemd / systemd#N" if systemd else ""
    raise ValueError(
        f"must be {SOCKET_ADDR_HINT}{alternatives}; Vector does not resolve host names "
        "such as localhost here"
    )


def listen_address_problem(value: str) -> str | None:
    """Check for sources whose ``address`` is a ``SocketListenAddr`` (syslog, socket)."""
    try:
        parse_listen_addr(value)
    except ValueError as exc:
        return str(exc)
    return None


def socket_address_problem(value: str) -> str | None:
    """Check for sources whose ``address`` is a plain ``SocketAddr`` (http_server)."""
    try:
        parse_listen_addr(value, systemd=False)
    except ValueError as exc:
        return str(exc)
    return None


def cidr_problem(value: str) -> str | None:
    """An ``ipnet::IpNet``: ``address/prefix``, prefix at most 32 (IPv4) or 128 (IPv6)."""
    address, slash, prefix = value.partition("/")
    ip = parse_ip(address)
    if not slash or ip is None or not re.fullmatch(r"0|[1-9][0-9]{0,2}", prefix):
        return "must be an IP network in CIDR notation, such as 10.0.0.0/8 or ::1/128"
    longest = 32 if ip.version == 4 else 128
    if int(prefix) > longest:
        return f"has a prefix length above {longest}"
    return None


def broker_list_problem(value: str) -> str | None:
    """librdkafka's broker list: comma-separated ``host`` or ``host:port`` (ports 1-65535)."""
    for part in value.split(","):
        match = _BROKER.fullmatch(part.strip())
        host = match.group(1) if match else ""
        ok = match is not None
        if ok and host.startswith("["):
            ok = parse_ip(host[1:-1]) is not None and ":" in host
        if ok and match and match.group(2) is not None:
            port = _port(match.group(2))
            ok = port is not None and port > 0
        if not ok:
            return "must be a comma-separated list of host or host:port (ports 1 to 65535)"
    return None


def url_host_problem(host: str, port: int | None) -> str | None:
    """Why every request to ``host:port`` would fail, or None. ``host`` has no brackets."""
    if not host.isascii():
        return "host must be ASCII: write an internationalised name in its xn-- (punycode) form"
    if port == 0:
        return "port must be from 1 to 65535"
    if ":" in host:
        return None if parse_ip(host) is not None else "host is not a valid IPv6 address"
    if _DOTTED_NUMBERS.fullmatch(host):
        return None if parse_ip(host) is not None else "host is not a valid IPv4 address"
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        return "host is not a valid host name"
    return None
