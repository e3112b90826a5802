"""Where the federation hears of every site's health change, and who else does.

A change is journaled, passed to each callback the thinker registered, and, when a
site became usable, wakes the dispatcher for the tasks that wait for one. It all
runs on the thread that noticed the change (a transport's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from colmena_fx.journal import Journal
from colmena_fx.transports.health import USABLE
from colmena_fx.transports.health import HealthChange

log = logging.getLogger(__name__)


class HealthHub:
    """Fans each site's health changes out to the journal, callbacks and a waker."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[HealthChange], None]] = []
        self.journal: Journal | None = None
        #: Called when a site becomes usable (the dispatcher's wake, soon).
        self.on_usable: Callable[[], object] | None = None

    def __call__(self, change: HealthChange) -> None:
        if self.journal is not None:
            self.journal.record(
                "health",
                {"site": change.site, "health": change.health.value,
                 "reason": change.reason, "since": change.since},
            )  # fmt: skip
        for callback in list(self.callbacks):
            try:
                callback(change)
            except Exception:
                log.exception("health callback %r failed", callback)
        if change.health in USABLE and self.on_usable is not None:
            self.on_usable()
