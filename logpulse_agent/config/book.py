"""What config sync keeps between polls: the applied config, its fallbacks, the rejected one.

:class:`ConfigBook` holds the records of :mod:`.store` in memory, writes every change through
(``applied.json``, ``rejected.json``, the fallback files) and publishes the ``config`` status
section (applied version, last config error) after each. Config sync decides *when*, from what
the control plane and Vector do; the book says what each event does to the records:

    record           a version the control plane sent now runs (or is ``{}``): applied; it
                     supersedes a rejected config, and ``{}`` forgets both fallbacks
    reject           a version failed validation, reload or restart: never retried as is
    reject_crashed   the watched config crash-looped: rejected, or, when the config the control
                     plane serves is rejected already, added to that record as crashed
    keep_superseded  a config replaced inside its window without failing: the newer fallback
    promote          a config that ran its whole window: the last-known-good
    fallback, roll_back_to   the newest fallback that has not failed, and going back to it
    withdraw         the control plane stopped offering the rejected version: forgotten
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import structlog

from logpulse_agent.clock import rfc3339, utc_now
from logpulse_agent.config.decisions import Watch, poll_cursor, rejection_withdrawn
from logpulse_agent.config.store import AppliedConfig, ConfigStore, RejectedConfig
from logpulse_agent.controlplane.protocol import ConfigErrorReport, config_etag
from logpulse_agent.status.sections import ConfigStatus
from logpulse_agent.status.tracker import StatusTracker

log = structlog.get_logger("logpulse_agent.config.sync")


@dataclass(frozen=True)
class Fallback:
    """A config to roll back to; ``watch``: it never ran a whole window, so watch it again."""

    version: int
    etag: str
    body: bytes
    watch: bool


class ConfigBook:
    """The applied and rejected records of ``store``, published to ``status`` (see above)."""

    def __init__(self, store: ConfigStore, status: StatusTracker) -> None:
        self.store = store
        self.status = status
        self.applied = store.load_applied()
        self.rejected = store.load_rejected()
        self.publish()

    @property
    def cursor(self) -> tuple[int, str | None]:
        """The version and etag polls send (:func:`~.decisions.poll_cursor`)."""
        return poll_cursor(self.applied, self.rejected)

    def record(self, version: int, etag: str, *, empty: bool) -> None:
        """Record ``version``, which the control plane sent, as applied. It supersedes a
        rejected config and clears the error, even at a lower version (versions count per
        group, so a moved agent starts again from 1). An empty config forgets both fallbacks:
        the operator withdrew every input, so a later crash loop rolls back to "stopped", never
        to a pipeline removed on purpose.
        """
        if self.rejected is not None and etag != self.rejected.etag:
            self.rejected = None
            self.store.save_rejected(None)
        applied = replace(self.applied, version=version, etag=etag, empty=empty)
        self.set_applied(AppliedConfig(version, etag, empty=True) if empty else applied)

    def set_applied(self, applied: AppliedConfig) -> None:
        self.store.save_applied(applied)
        self.applied = applied
        self.publish()

    def reject(self, version: int, etag: str, message: str) -> None:
        log.error("config.rejected", version=version, etag=etag, error=message)
        self._save_rejected(
            RejectedConfig(version=version, etag=etag, message=message, at=rfc3339(utc_now()))
        )

    def reject_crashed(self, watch: Watch, message: str) -> None:
        """Record the crash loop of ``watch``. When another config is already rejected, that
        one is what the control plane serves and ``watch`` was a fallback or still under
        watch: its record stays (polls stay 204, it stays skipped) and ``watch`` joins it as
        crashed, never to be started again."""
        rejected = self.rejected
        if rejected is None or rejected.etag == watch.etag:
            self.reject(watch.version, watch.etag, message)
            return
        log.error("config.fallback_crashed", version=watch.version, error=message)
        self._save_rejected(
            replace(
                rejected,
                message=f"{rejected.message}; then {message[0].lower()}{message[1:]}",
                at=rfc3339(utc_now()),
                crashed_etags=(*rejected.crashed_etags, watch.etag),
            )
        )

    def withdraw(self, served_version: int | None) -> None:
        """The version the control plane serves us (heartbeat answer): forget a rejected
        version it withdrew, so its error stops being reported."""
        if rejection_withdrawn(served_version, self.applied, self.rejected):
            assert self.rejected is not None
            log.info(
                "config.rejection_withdrawn", version=self.rejected.version, served=served_version
            )
            self.rejected = None
            self.store.save_rejected(None)
            self.publish()

    def keep_superseded(self, watch: Watch, body: bytes) -> None:
        """``watch`` (content ``body``) was replaced inside its window without failing."""
        self.store.save_superseded(body)
        self.set_applied(
            replace(self.applied, superseded_version=watch.version, superseded_etag=watch.etag)
        )
        log.info("config.fallback", version=watch.version, reason="replaced without failing")

    def promote(self, watch: Watch, body: bytes) -> None:
        """``watch`` (content ``body``) ran its whole window: the new last-known-good, which
        also makes an older superseded fallback pointless."""
        self.store.save_lkg(body)
        self.set_applied(
            replace(
                self.applied,
                lkg_version=watch.version,
                lkg_etag=watch.etag,
                superseded_version=0,
                superseded_etag=None,
            )
        )
        log.info("config.last_known_good", version=watch.version)

    def fallback(self, crashed: str) -> Fallback | None:
        """The newest fallback that has not failed (superseded, then last-known-good) and
        whose file still holds what the record says; ``crashed`` is the etag that just did."""
        applied, rejected = self.applied, self.rejected
        candidates = (
            (applied.superseded_version, applied.superseded_etag, self.store.read_superseded),
            (applied.lkg_version, applied.lkg_etag, self.store.read_lkg),
        )
        for index, (version, etag, read) in enumerate(candidates):
            if etag is None or etag == crashed or (rejected is not None and rejected.failed(etag)):
                continue
            body = read()
            if body is not None and config_etag(body) == etag:
                return Fallback(version, etag, body, watch=index == 0)
        return None

    def roll_back_to(self, target: Fallback) -> None:
        """Install ``target`` as the live config and record it as applied."""
        self.store.write_live(target.body)
        self.set_applied(
            replace(
                self.applied,
                version=target.version,
                etag=target.etag,
                empty=False,
                superseded_version=0,
                superseded_etag=None,
            )
        )

    def publish(self) -> None:
        """The ``config`` status section, from the records."""
        rejected = self.rejected
        error = None
        if rejected is not None:
            error = ConfigErrorReport(rejected.version, rejected.message, rejected.at)
        self.status.set(
            ConfigStatus(self.applied.version, self.applied.etag, self.applied.empty, error)
        )

    def _save_rejected(self, rejected: RejectedConfig) -> None:
        self.rejected = rejected
        self.store.save_rejected(rejected)
        self.publish()
