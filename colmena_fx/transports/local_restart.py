"""Bringing back an embedded endpoint that died: attempts with doubling backoff.

Only for endpoints the transport started itself; an attached endpoint (one that
`colmena-fx endpoint start` runs) is never started, restarted or killed by a client.
The restart runs on the `cfx-restart-<site>` thread: `recovering`, then `up`, or
`lost` for good after `local.restart.attempts`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from colmena_fx.endpoint import wire
from colmena_fx.endpoint.process import EndpointProcess
from colmena_fx.timers import backoff_s
from colmena_fx.transports.health import Health
from colmena_fx.transports.local_watch import LinkWatch

log = logging.getLogger(__name__)


class Stopping(Exception):
    """The transport is stopping: a start or restart in progress gives up quietly."""


def backoff_delays(attempts: int, initial_s: float, max_s: float) -> list[float]:
    """The wait before each restart: doubling from `initial_s`, capped at `max_s`."""
    return [backoff_s(n, initial_s, max_s) for n in range(1, attempts + 1)]


class Restarter:
    """Answers the exit of an embedded endpoint: reap, then restart with backoff.

    `bring_up` connects to a freshly started endpoint (raising if it does not
    answer); `end_receiver(retire)` joins the receiver, and with `retire` first
    ends it (a failed attempt's receiver never watched, so never ends alone).
    """

    def __init__(
        self,
        process: EndpointProcess,
        watch: LinkWatch,
        closing: threading.Event,
        threads_lock: threading.Lock,
        bring_up: Callable[[wire.ConnectionInfo], None],
        end_receiver: Callable[[bool], None],
    ) -> None:
        self.process = process
        self.watch = watch
        self.closing = closing
        self.threads_lock = threads_lock
        self.bring_up = bring_up
        self.end_receiver = end_receiver
        self.thread: threading.Thread | None = None

    def on_exit(self, code: int) -> None:
        """The endpoint died: fail its tasks, reap what it left, restart it."""
        site = self.watch.site
        reason = (
            f"the endpoint of site {site!r} exited (status {code}); "
            f"see {self.process.log_path}"
        )
        restarting = self.watch.local.restart.attempts > 0
        if not restarting:
            reason += "; not restarted, as local.restart.attempts is 0"
        self.watch.lose(reason, rejoins=False)
        self.process.reap()
        if not restarting:
            return
        with self.threads_lock:
            if self.closing.is_set():
                return
            self.thread = threading.Thread(
                target=self._restart, name=f"cfx-restart-{site}", daemon=True
            )
            self.thread.start()

    def _restart(self) -> None:
        """Start the endpoint again, with backoff; `lost` for good if it never comes."""
        self.end_receiver(False)  # the one that saw the exit: let it close its rx
        restart = self.watch.local.restart
        health = self.watch.health
        delays = backoff_delays(
            restart.attempts, restart.backoff_initial_s, restart.backoff_max_s
        )
        error = ""
        for number, delay in enumerate(delays, start=1):
            of = f"restart {number} of {restart.attempts}"
            health.set(Health.RECOVERING, f"{of} in {delay:g} s")
            if self.closing.wait(delay):
                return
            health.set(Health.RECOVERING, f"{of}: starting the endpoint")
            try:
                self.bring_up(self.process.start(cancel=self.closing))
                log.info("site %s restarted (attempt %d)", self.watch.site, number)
                return
            except Stopping:
                return
            except Exception as exc:
                if self.closing.is_set():
                    return
                error = (str(exc).splitlines() or [type(exc).__name__])[0]
                log.warning("site %s: %s failed: %s", self.watch.site, of, exc)
                self._abandon()
        reason = (
            f"the endpoint of site {self.watch.site!r} did not restart in "
            f"{restart.attempts} attempts (last: {error}); see "
            f"{self.process.log_path}, fix the site and start the campaign again"
        )
        with self.watch.pending.lock:
            self.watch.lost_reason = reason
        health.set(Health.LOST, reason)

    def _abandon(self) -> None:
        """Undo a failed restart: its receiver, its process and what it started."""
        self.process.kill()
        self.end_receiver(True)
        self.process.reap()
