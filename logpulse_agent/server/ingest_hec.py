"""The Splunk HEC wire format, as Vector's ``splunk_hec_logs`` sink speaks it (SPEC §11.2).

Pure functions over bytes and headers; the routes are in ``ingest_routes.py``. What the sink
sends and expects, from vectordotdev/vector (0.58 source; 0.57 is the same here):

- ``src/sinks/splunk_hec/common/util.rs``: data goes to ``POST <endpoint>/services/collector/event``
  (``endpoint_target: event``, the default, ``logs/config.rs``) or ``…/raw``; the health check is
  ``GET <endpoint>/services/collector/health/1.0`` with ``Authorization: Splunk <token>``, and
  200 means healthy, 400 "Invalid HEC token", 503 "Queues are full", anything else unexpected.
  Default batch: at most 1,000,000 bytes or 1 s (``SplunkHecDefaultBatchSettings``).
- ``common/service.rs`` (``HttpRequestBuilder::build_request``): headers ``Content-Type:
  application/json``, ``Authorization: Splunk <token>``, ``X-Splunk-Request-Channel: <uuid4>``
  (one per sink) and ``Content-Encoding: gzip`` when ``compression: gzip``. On a 2xx answer
  the body is read as ``{"ackId": n}``: with indexer acknowledgements enabled (the default,
  ``common/acknowledgements.rs``) an ``ackId`` makes the sink poll ``/services/collector/ack``
  before it counts the events delivered; without one (or with acknowledgements off) they are
  delivered at once. This server never answers an ``ackId``, so the sink never waits, and
  ``/services/collector/ack`` answers "ACK is disabled" as Splunk does for such a token.
- ``logs/encoder.rs``: with the ``event`` target each event is one JSON object ``{"event": …,
  "fields": {…}, "time": …, "host", "index", "source", "sourcetype"}`` and a batch is these
  objects concatenated with nothing between them.
- ``src/sinks/util/http.rs`` (``RetryStrategy::Default``): 408, 429 and 5xx except 501 are
  retried (forever by default, Fibonacci back-off up to 30 s); any other non-2xx drops the
  batch and counts ``component_errors_total``.

Answers and codes are Splunk's (its "Troubleshoot HTTP Event Collector" table, as Vector's own
``splunk_hec`` source reproduces them in ``src/sources/splunk_hec/mod.rs``).
"""

from __future__ import annotations

import json
import re
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

EVENT_PATHS = ("/services/collector/event", "/services/collector/event/1.0", "/services/collector")
HEALTH_PATHS = ("/services/collector/health", "/services/collector/health/1.0")
ACK_PATH = "/services/collector/ack"

# Defaults a HEC event without routing fields gets here (Splunk takes them from the token).
DEFAULT_INDEX = "main"
DEFAULT_SOURCETYPE = "httpevent"
DEFAULT_SOURCE = "http:logpulse"
MAX_ROUTING = 256
_INDEX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")  # Splunk's index naming rule
_CHANNEL_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SPACE = " \t\n\r"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class HecReply:
    """One HEC answer: HTTP status and the ``{"text", "code"}`` body Splunk sends with it."""

    status: int
    code: int
    text: str
    event_number: int | None = None

    def body(self) -> bytes:
        doc: dict[str, Any] = {"text": self.text, "code": self.code}
        if self.event_number is not None:
            doc["invalid-event-number"] = self.event_number
        return json.dumps(doc, separators=(",", ":")).encode()

    def at(self, event_number: int) -> HecReply:
        """The same answer naming the (0-based) event it is about."""
        return HecReply(self.status, self.code, self.text, event_number)


SUCCESS = HecReply(200, 0, "Success")
TOKEN_DISABLED = HecReply(403, 1, "Token disabled")
TOKEN_REQUIRED = HecReply(401, 2, "Token is required")
INVALID_AUTHORIZATION = HecReply(401, 3, "Invalid authorization")
INVALID_TOKEN = HecReply(403, 4, "Invalid token")
NO_DATA = HecReply(400, 5, "No data")
INVALID_DATA_FORMAT = HecReply(400, 6, "Invalid data format")
INCORRECT_INDEX = HecReply(400, 7, "Incorrect index")
SERVER_BUSY = HecReply(503, 9, "Server is busy")
INVALID_CHANNEL = HecReply(400, 11, "Invalid data channel")
EVENT_REQUIRED = HecReply(400, 12, "Event field is required")
EVENT_BLANK = HecReply(400, 13, "Event field cannot be blank")
ACK_DISABLED = HecReply(400, 14, "ACK is disabled")
HEALTHY = HecReply(200, 17, "HEC is healthy")
UNHEALTHY = HecReply(503, 18, "HEC is unhealthy, queues are full")
# The health check with a token this server does not accept (what Vector reads as "Invalid HEC
# token"); Splunk documents 400 for it.
HEALTH_INVALID_TOKEN = HecReply(400, 4, "Invalid token")
TOO_LARGE = HecReply(413, 6, "Content too large")
UNSUPPORTED_ENCODING = HecReply(415, 6, "Unsupported Content-Encoding")


class HecError(Exception):
    """Raised with the :class:`HecReply` a refused request gets."""

    def __init__(self, reply: HecReply) -> None:
        super().__init__(reply.text)
        self.reply = reply


def splunk_token(header: str | None) -> str:
    """The token of ``Authorization: Splunk <token>``; :class:`HecError` when absent or garbled."""
    if not header:
        raise HecError(TOKEN_REQUIRED)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "splunk" or not token or " " in token:
        raise HecError(INVALID_AUTHORIZATION)
    return token


def check_channel(header: str | None) -> None:
    """A request channel, when sent, must be a GUID (Splunk's rule; Vector sends a UUID v4)."""
    if header is not None and not _CHANNEL_RE.match(header.strip()):
        raise HecError(INVALID_CHANNEL)


def decode_body(raw: bytes, encoding: str | None, limit: int) -> str:
    """The request body as text: gunzipped when ``encoding`` is gzip, at most ``limit`` bytes.

    A body that inflates past ``limit`` (a gzip bomb) is refused after ``limit`` bytes of
    output, never inflated in full.
    """
    coding = (encoding or "identity").strip().lower()
    if coding == "gzip":
        raw = _gunzip(raw, limit)
    elif coding != "identity":
        raise HecError(UNSUPPORTED_ENCODING)
    if len(raw) > limit:
        raise HecError(TOO_LARGE)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HecError(INVALID_DATA_FORMAT) from None


def _gunzip(data: bytes, limit: int) -> bytes:
    out: list[bytes] = []
    size = 0
    while data:  # a gzip stream may hold several members back to back
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = inflater.decompress(data, limit + 1 - size)
        except zlib.error:
            raise HecError(INVALID_DATA_FORMAT) from None
        size += len(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise HecError(TOO_LARGE)
        if not inflater.eof:
            raise HecError(INVALID_DATA_FORMAT)  # truncated
        out.append(chunk)
        data = inflater.unused_data
    return b"".join(out)


Routing = tuple[str, str, str]  # (index, sourcetype, source)


@dataclass
class Batch:
    """What one request carried: events and bytes per routing triple, and its last events.

    ``bytes`` are the UTF-8 bytes of each event's JSON object as sent (uncompressed).
    ``recent`` holds the last ``keep`` events as ``(routing, envelope, size)``.
    """

    counts: dict[Routing, list[int]] = field(default_factory=dict)  # routing -> [events, bytes]
    recent: deque[tuple[Routing, dict[str, Any], int]] = field(default_factory=deque)

    @property
    def events(self) -> int:
        return sum(c[0] for c in self.counts.values())

    @property
    def bytes(self) -> int:
        return sum(c[1] for c in self.counts.values())


_DECODER = json.JSONDecoder()


def parse_events(text: str, keep: int = 0) -> Batch:
    """The concatenated HEC event objects in ``text``, counted per (index, sourcetype, source).

    Raises :class:`HecError`: no events (code 5), something that is not a JSON object or has
    routing fields of the wrong type (6, with the event's number), a bad index name (7), no
    ``event`` field (12) or a blank one (13). One bad event refuses the whole batch, as Splunk
    does, so a retry never duplicates the good part.
    """
    batch = Batch(recent=deque(maxlen=keep))
    ascii_only = text.isascii()
    decode, end = _DECODER.raw_decode, len(text)
    pos = _skip_space(text, 0, end)
    number = 0
    last_key: tuple[Any, Any, Any] | None = None
    last_count: list[int] = [0, 0]
    while pos < end:
        try:
            envelope, stop = decode(text, pos)
        except (ValueError, RecursionError):
            raise HecError(INVALID_DATA_FORMAT.at(number)) from None
        if type(envelope) is not dict:
            raise HecError(INVALID_DATA_FORMAT.at(number))
        event = envelope.get("event", _MISSING)
        if event is _MISSING:
            raise HecError(EVENT_REQUIRED.at(number))
        if event is None or event == "":
            raise HecError(EVENT_BLANK.at(number))
        key = (envelope.get("index"), envelope.get("sourcetype"), envelope.get("source"))
        if key != last_key:
            last_key = key
            routing = _routing(key, number)
            last_count = batch.counts.setdefault(routing, [0, 0])
        size = stop - pos if ascii_only else len(text[pos:stop].encode("utf-8"))
        last_count[0] += 1
        last_count[1] += size
        if keep:
            batch.recent.append((routing, envelope, size))
        number += 1
        pos = stop
        if pos < end and text[pos] in _SPACE:  # Vector puts nothing between events
            pos = _skip_space(text, pos, end)
    if number == 0:
        raise HecError(NO_DATA)
    return batch


_MISSING = object()


def _skip_space(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos] in _SPACE:
        pos += 1
    return pos


def _routing(key: tuple[Any, Any, Any], number: int) -> Routing:
    index, sourcetype, source = key
    for value in key:
        if value is not None and (
            not isinstance(value, str) or len(value) > MAX_ROUTING or _CONTROL.search(value)
        ):
            raise HecError(INVALID_DATA_FORMAT.at(number))
    if index is not None and index != "" and not _INDEX_RE.match(index):
        raise HecError(INCORRECT_INDEX.at(number))
    return (index or DEFAULT_INDEX, sourcetype or DEFAULT_SOURCETYPE, source or DEFAULT_SOURCE)
