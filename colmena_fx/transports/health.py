"""How well a site is doing, as its transport sees it, and who hears of changes.

Lifecycle (`TransportState`) says whether the link exists; health says whether it
is worth sending work to. Routing reads health on every submission, so reading it
is a lock-free attribute read; a change is reported once, to one listener (the
federation), off the transport's locks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)


class Health(StrEnum):
    UP = "up"  # taking work
    DEGRADED = "degraded"  # taking work, but late heartbeats or a flaky service
    LOST = "lost"  # not taking work: its tasks in flight were failed as lost
    RECOVERING = "recovering"  # being restarted or waited for; not taking work yet


#: Sites in these states get new work; routing prefers `UP` to `DEGRADED`.
USABLE = frozenset({Health.UP, Health.DEGRADED})


@dataclass(frozen=True)
class HealthChange:
    """One site's health from `since` (seconds since the epoch) on, and why."""

    site: str
    health: Health
    reason: str
    since: float
    previous: Health | None = None

    def __str__(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"site {self.site!r} is {self.health.value}{why}"


HealthListener = Callable[[HealthChange], None]


class HealthTracker:
    """The current health of one site; tells `listener` about every change."""

    def __init__(self, site: str, listener: HealthListener | None = None) -> None:
        self.site = site
        #: Set by the federation before the transport starts.
        self.listener = listener
        self._lock = threading.Lock()
        self._current = HealthChange(
            site, Health.RECOVERING, "not started", time.time()
        )

    @property
    def current(self) -> HealthChange:
        return self._current

    @property
    def health(self) -> Health:
        return self._current.health

    @property
    def usable(self) -> bool:
        return self._current.health in USABLE

    def set(self, health: Health, reason: str = "") -> bool:
        """Move to `health`; returns whether that was a change (of state or reason)."""
        with self._lock:
            old = self._current
            if old.health is health and old.reason == reason:
                return False
            since = old.since if old.health is health else time.time()
            self._current = HealthChange(self.site, health, reason, since, old.health)
            change = self._current
        if old.health is not health:
            level = logging.INFO if health is Health.UP else logging.WARNING
            log.log(level, "%s", change)
        listener = self.listener
        if listener is not None:
            try:
                listener(change)
            except Exception:  # a listener's bug must not take the transport down
                log.exception("health listener failed on %s", change)
        return True
