"""A local site's state and health as its link shows them.

Heard: `up`. Heartbeats late by more than `LATE_PERIODS` periods: `degraded`.
Silent for `heartbeat_timeout_s`, or refused (the endpoint took another client):
`lost`, and every task in flight fails as `endpoint_lost`; such a site rejoins
(`up`) as soon as it is heard again. An endpoint process that exited is lost too,
but does not rejoin: it is restarted (`local_restart`), or stays lost.
"""

from __future__ import annotations

import logging
import time

from colmena_fx.config import LocalLinkConfig
from colmena_fx.models import FailureKind
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.health import Health
from colmena_fx.transports.health import HealthTracker
from colmena_fx.transports.pending import PendingTasks

log = logging.getLogger(__name__)

#: Heartbeats missed in a row before a site is `degraded` (it is `lost` only after
#: `heartbeat_timeout_s`).
LATE_PERIODS = 3


def heartbeat_health(silence_s: float, period_s: float, timeout_s: float) -> Health:
    """The health that `silence_s` seconds without a word from the endpoint means."""
    if silence_s > timeout_s:
        return Health.LOST
    if silence_s > LATE_PERIODS * period_s:
        return Health.DEGRADED
    return Health.UP


class LinkWatch:
    """The transport's state, the site's health, and the silence between them.

    `state` changes under `pending.lock`, so that a submission files its task and
    reads the state atomically.
    """

    def __init__(
        self, local: LocalLinkConfig, health: HealthTracker, pending: PendingTasks
    ) -> None:
        self.site = health.site
        self.local = local
        self.health = health
        self.pending = pending
        self.state = TransportState.NEW
        self.lost_reason = ""
        self.last_heard: float | None = None
        #: Lost through silence or refusal, not an exit: hearing it again rejoins.
        self.silent = False
        #: What the endpoint said of itself last.
        self.remote_host: str | None = None
        self.workers: int | None = None

    @property
    def watching(self) -> bool:
        """Whether the receiver watches: a start or restart watches for itself."""
        return self.state is TransportState.RUNNING or self.silent

    def silence_s(self) -> float | None:
        return None if self.last_heard is None else time.monotonic() - self.last_heard

    def new_link(self) -> None:
        self.last_heard = None
        self.silent = False

    def set_state(self, state: TransportState, reason: str = "") -> None:
        with self.pending.lock:
            self.state = state
            self.lost_reason = reason

    def up(self, reason: str) -> None:
        self.set_state(TransportState.RUNNING)
        self.health.set(Health.UP, reason)

    def why_down(self) -> str:
        if self.state is TransportState.LOST:
            return self.lost_reason
        return f"site {self.site!r} is {self.state.value}, not running"

    def heard(self) -> None:
        """The endpoint spoke: a silent site rejoins, a late one is up again."""
        silence = self.silence_s()
        self.last_heard = time.monotonic()
        if self.silent:
            self.silent = False
            self.up(f"heard again after {silence or 0:.1f} s")
        elif self.health.health is Health.DEGRADED:
            self.health.set(Health.UP, "heartbeats on time again")

    def check_silence(self) -> None:
        """Degrade a late site; lose a silent one (it rejoins when heard)."""
        silence = self.silence_s()
        if silence is None:
            return
        local = self.local
        health = heartbeat_health(silence, local.heartbeat_s, local.heartbeat_timeout_s)
        if health is Health.LOST and not self.silent:
            self.lose(
                f"site {self.site!r} has not been heard from for "
                f"{local.heartbeat_timeout_s:g} s (local.heartbeat_timeout_s); "
                f"it rejoins when heard again",
                rejoins=True,
            )
        elif health is Health.DEGRADED and self.health.health is Health.UP:
            self.health.set(
                Health.DEGRADED,
                f"heartbeats late: last heard {silence:.1f} s ago "
                f"(expected every {local.heartbeat_s:g} s)",
            )

    def lose(self, reason: str, rejoins: bool) -> None:
        """Lost: fail every task in flight; `rejoins` when heard again."""
        log.error("%s; failing its tasks in flight", reason)
        self.silent = rejoins
        self.set_state(TransportState.LOST, reason)
        self.health.set(Health.LOST, reason)
        self.pending.fail_all(FailureKind.ENDPOINT_LOST, reason, self.site)

    def still_lost(self, reason: str) -> None:
        """Lost already, for a reason now known better."""
        log.warning("%s", reason)
        self.set_state(TransportState.LOST, reason)
        self.health.set(Health.LOST, reason)
