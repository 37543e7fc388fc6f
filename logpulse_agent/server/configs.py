"""The rendered Vector config of a group for a platform, cached per (group, version, platform).

Agents' config polls and the admin preview both come through :meth:`ConfigCache.get`, so the
preview is byte-identical to what an agent of that group and platform is served. A group's
inputs only change together with a version bump (same transaction), so the key never serves
stale bytes; old versions simply fall out of the bounded LRU. Behind the LRU, a body is read
from (or, at its first render, written to) :mod:`~logpulse_agent.server.config_versions`, so an
older version held back by a staged rollout is served with the bytes it first had.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass

from logpulse_agent.server import config_versions, inputs
from logpulse_agent.server.render import IngestSettings, config_etag, render_config

DEFAULT_CACHE_SIZE = 4096


@dataclass(frozen=True)
class RenderedConfig:
    version: int
    body: bytes
    etag: str  # "sha256:<hex of body>"


class ConfigCache:
    """Renders through :func:`render_config` and remembers the last ``size`` results."""

    def __init__(self, ingest: IngestSettings, size: int = DEFAULT_CACHE_SIZE) -> None:
        self.ingest = ingest
        self.size = size
        self._entries: OrderedDict[tuple[str, int, str], RenderedConfig] = OrderedDict()
        self._lock = threading.Lock()
        self.renders = 0  # how many times the renderer actually ran (for tests and metrics)

    def get(
        self,
        conn: sqlite3.Connection,
        group_id: str,
        platform: str,
        version: int | None = None,
    ) -> RenderedConfig:
        """The group's config for ``platform`` at ``version`` (default: the current one).

        ``conn`` must be inside a transaction, so the version and the inputs come from one
        snapshot; ``version``, when the caller already read it in that transaction, saves a
        query on a cache hit.
        """
        if version is None:
            row = conn.execute(
                "SELECT config_version FROM agent_groups WHERE id = ?", (group_id,)
            ).fetchone()
            version = int(row[0])
        key = (group_id, version, platform)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
        stored = config_versions.stored_body(conn, group_id, version, platform)
        if stored is not None:
            rendered = RenderedConfig(version, *stored)
        else:
            specs = config_versions.specs(conn, group_id, version)
            if specs is None:  # not recorded: only ever the current version
                specs = [inputs.spec(r) for r in inputs.list_for_group(conn, group_id)]
            body = render_config(specs, platform, self.ingest)
            rendered = RenderedConfig(version, body, config_etag(body))
            config_versions.store_body(conn, group_id, version, platform, body, rendered.etag)
            self.renders += 1
        with self._lock:
            self._entries[key] = rendered
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return rendered
