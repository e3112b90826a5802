"""The watch of a globus site: its endpoint's health, and tasks looked up by id.

One thread per site polls the endpoint's status every `globus.status_poll_s`,
tasks in flight or not (routing reads the health it keeps): `up` while the service
reports the endpoint online, `degraded` while it reports it offline or cannot say,
`lost` once it has been offline for `globus.lost_after_s` (its tasks in flight then
fail as `endpoint_lost`). It looks tasks up at the service by id: every task in
flight when the endpoint comes back or another endpoint process reports, and any
not heard of for `globus.reconcile_after_s`. The service's answer completes a task
that finished; one a dead endpoint process had taken (`globus_tasks`) fails as
`endpoint_lost`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import globus_sdk
from globus_compute_sdk import Client

from colmena_fx.config import GlobusLinkConfig
from colmena_fx.exceptions import ServiceError
from colmena_fx.transports.globus_lookup import TaskOutcome
from colmena_fx.transports.globus_lookup import task_outcomes
from colmena_fx.transports.globus_service import endpoint_status
from colmena_fx.transports.globus_service import translate
from colmena_fx.transports.globus_tasks import EndpointView
from colmena_fx.transports.globus_tasks import Return
from colmena_fx.transports.globus_tasks import Sent
from colmena_fx.transports.globus_tasks import SentTasks
from colmena_fx.transports.globus_tasks import due_for_lookup
from colmena_fx.transports.globus_tasks import given_up
from colmena_fx.transports.globus_tasks import identity_of
from colmena_fx.transports.globus_tasks import mark_held
from colmena_fx.transports.globus_tasks import see_online
from colmena_fx.transports.globus_tasks import taken_by_the_old
from colmena_fx.transports.health import Health
from colmena_fx.transports.health import HealthTracker

log = logging.getLogger(__name__)

_RETURNS = {True: "restarted", False: "is back online",
            None: "is back online (restarted or not)"}  # fmt: skip


@dataclass(frozen=True)
class WatchHooks:
    """What the watch asks of its transport, each on the watch's thread."""

    #: Complete a task from the service's record; False if completed already.
    deliver: Callable[[Sent, TaskOutcome], bool]
    #: Fail a task as `endpoint_lost` with the reason; False if completed already.
    lose: Callable[[Sent, str], bool]
    #: Send again what a stopped executor gave back unsent.
    resend: Callable[[], None]
    #: Housekeeping after each poll (closing executors nothing waits on).
    tidy: Callable[[], None]


class EndpointWatch:
    """Polls one endpoint's status and reconciles the site's tasks with the service."""

    def __init__(
        self,
        site: str,
        endpoint_id: str,
        link: GlobusLinkConfig,
        client: Client,
        health: HealthTracker,
        tasks: SentTasks,
        hooks: WatchHooks,
    ) -> None:
        self.site = site
        self.endpoint_id = endpoint_id
        self.link = link
        self.health = health
        self.view = EndpointView()
        #: What the last poll or lookup had to say, for `TransportStatus.detail`.
        self.detail = ""
        self._client = client
        self._tasks = tasks
        self._hooks = hooks
        self._closing = threading.Event()
        self._wake = threading.Event()
        self._look_up = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"cfx-globus-{site}", daemon=True
        )

    def start(self, details: dict[str, Any]) -> None:
        """Begin from the first online report (the transport waited for it)."""
        self.online(details, time.monotonic())
        self._thread.start()

    def stop(self) -> None:
        self._closing.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def wake(self) -> None:
        """Resend what was handed back now, not at the next poll."""
        self._wake.set()

    def look_up_adopted(self) -> None:
        """Look up the tasks taken back after a client restart now."""
        self._look_up.set()
        self._wake.set()

    def _run(self) -> None:
        next_poll = time.monotonic() + self.link.status_poll_s
        while not self._closing.is_set():
            self._wake.wait(max(0.0, next_poll - time.monotonic()))
            self._wake.clear()
            if self._closing.is_set():
                return
            self._guarded(self._hooks.resend)
            if self._look_up.is_set():
                self._look_up.clear()
                self._guarded(self._reconcile_adopted)
            if time.monotonic() >= next_poll:
                self._guarded(self._poll)
                next_poll = time.monotonic() + self.link.status_poll_s

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:  # never let the watch die unseen
            log.exception("site %s: the endpoint watch failed", self.site)
            self.detail = f"watch error: {type(exc).__name__}: {exc}"

    # -- status ------------------------------------------------------------------------

    def _poll(self) -> None:
        try:
            status = endpoint_status(self._client, self.endpoint_id)
        except ServiceError as exc:  # the service, not the endpoint: keep going
            self._status_unknown(_briefly(exc), str(exc))
            return
        except Exception as exc:
            log.exception("site %s: cannot ask for the endpoint's status", self.site)
            self._status_unknown(type(exc).__name__, f"{type(exc).__name__}: {exc}")
            return
        now = time.monotonic()
        if status.get("status") == "online":
            self.online(dict(status.get("details") or {}), now)
        else:
            self._offline(now)
        self._hooks.tidy()

    def _status_unknown(self, brief: str, message: str) -> None:
        """Degraded (not lost: the endpoint may be fine), with a reason that stays
        the same while the failure does, so the listener hears of it once."""
        self.detail = f"status unknown: {message}"
        if self.health.health is not Health.LOST:
            self.health.set(Health.DEGRADED, f"status unknown: {brief}")

    def online(self, details: dict[str, Any], now: float) -> None:
        change = see_online(self.view, identity_of(details), details, now)
        self.detail = ""
        self.health.set(
            Health.UP, f"Globus Compute reports endpoint {self.endpoint_id} online"
        )
        in_flight = self._tasks.select(lambda s: True)
        if change is not None:
            self._after_return(change, in_flight, now)
        mark_held(in_flight, self.view, now)
        after = self.link.reconcile_after_s
        # A task taken back after a client restart may have finished while no
        # watcher listened: look it up at every poll.
        due = [
            s for s in in_flight
            if s.adopted or due_for_lookup(s, now, after)
        ]  # fmt: skip
        self._reconcile(due, now)

    def _after_return(self, change: Return, in_flight: list[Sent], now: float) -> None:
        """Back online, or another endpoint process: look every task up now."""
        log.warning("site %s: the endpoint %s; looking up its %d task(s) in flight",
                    self.site, _RETURNS[change.restarted], len(in_flight))  # fmt: skip
        for sent in taken_by_the_old(in_flight, change, now):
            sent.lost_reason = (
                f"the endpoint of site {self.site!r} ({self.endpoint_id}) restarted "
                f"after it had taken this task from its queue, and Globus Compute "
                f"has no result for it: the restarted endpoint cannot run it"
            )
        for sent in in_flight:
            sent.look_up_soon()

    def _offline(self, now: float) -> None:
        view = self.view
        view.offline_since = view.offline_since or now
        offline_s = now - view.offline_since
        self.detail = f"endpoint offline for {offline_s:.0f} s"
        lost = self.health.health is Health.LOST
        if lost or offline_s >= self.link.lost_after_s:
            # Again at every poll while lost: a task filed as it became lost.
            self._lose_all(offline_s, announce=not lost)
            return
        self.health.set(
            Health.DEGRADED,
            f"Globus Compute reports endpoint {self.endpoint_id} offline; its "
            f"tasks are failed as lost after {self.link.lost_after_s:g} s offline",
        )

    def _lose_all(self, offline_s: float, announce: bool) -> None:
        reason = (
            f"the endpoint of site {self.site!r} ({self.endpoint_id}) has been "
            f"offline for {offline_s:.0f} s (globus.lost_after_s), as Globus "
            f"Compute reports it; its tasks in flight are lost"
        )
        if announce:
            log.error("%s", reason)
            self.health.set(Health.LOST, reason)
        for sent in self._tasks.select(lambda s: True):
            self._hooks.lose(sent, reason)

    # -- tasks -------------------------------------------------------------------------

    def _reconcile_adopted(self) -> None:
        self._reconcile(self._tasks.select(lambda s: s.adopted), time.monotonic())

    def _reconcile(self, sents: list[Sent], now: float) -> None:
        """Look tasks up at the service: deliver the finished, fail the lost."""
        by_remote = {s.remote_id: s for s in sents if s.remote_id}
        if not by_remote:
            return
        try:
            outcomes = task_outcomes(self._client, list(by_remote))
        except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as exc:
            doing = f"looking up the tasks of site {self.site!r}"
            self.detail = str(translate(exc, doing, self._client))
            log.warning("%s", self.detail)
            return
        delivered = lost = 0
        for remote_id, sent in by_remote.items():
            outcome = outcomes.get(remote_id)
            if outcome is not None and outcome.done:
                delivered += self._hooks.deliver(sent, outcome)
                continue
            reason = sent.lost_reason or self._given_up(sent, outcome, now)
            if reason is not None:
                lost += self._hooks.lose(sent, reason)
            else:
                sent.heard_at = now
        if delivered or lost:
            log.warning("site %s: of %d task(s) looked up, %d completed from the "
                        "service's record, %d failed as lost", self.site,
                        len(by_remote), delivered, lost)  # fmt: skip

    def _given_up(
        self, sent: Sent, outcome: TaskOutcome | None, now: float
    ) -> str | None:
        """Why a suspect task counts as lost now, if it does."""
        after = self.link.reconcile_after_s
        if not given_up(sent, now, after):
            return None
        status = outcome.status if outcome else "unknown to it"
        return (
            f"the endpoint of site {self.site!r} ({self.endpoint_id}) came back "
            f"around when it was sent, and nothing was heard of the task for "
            f"{after:g} s since (globus.reconcile_after_s; Globus Compute reports "
            f"it {status}): counted as lost"
        )


def _briefly(error: ServiceError) -> str:
    """What went wrong, without the parts that differ from one try to the next."""
    if error.http_status is None:
        return f"no answer from the Globus Compute service at {error.url}"
    return f"the Globus Compute service answered {error.http_status} ({error.code})"
