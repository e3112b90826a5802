"""Where each result off the link goes, and taking back, after a client restart,
the tasks an attached endpoint still has.

The endpoint's WELCOME lists the tasks it holds for the run (running, or finished
and not acknowledged), and the finished ones follow at once, before the federation
has told the transport which tasks it is waiting for (`reattach`). Until then a
result of a listed task is held here, unacknowledged, so that it is not dropped as
unknown; `reattach` claims what it knows and closes the handover, after which a
result of an unknown task is dropped (and acknowledged) as always.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from colmena_fx.endpoint import wire
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.local_link import fill_result
from colmena_fx.transports.local_watch import LinkWatch
from colmena_fx.transports.pending import complete_failed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArrivedResult:
    """One entry of a RESULT message, kept as it arrived."""

    entry: wire.ResultEntry
    payload: bytes
    header: wire.ResultHeader
    received_ns: int


class Handover:
    """The tasks the first WELCOME listed, and their results held until claimed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listed: set[str] = set()
        self._held: dict[str, ArrivedResult] = {}
        self._opened = False
        self._closed = False

    def open(self, welcome: wire.WelcomeHeader) -> None:
        """Take the listing of the first WELCOME of the transport; later ones (a
        link that came back) are of tasks the transport already failed."""
        with self._lock:
            if self._opened:
                return
            self._opened = True
            self._listed = {*welcome.running, *welcome.finished}

    def hold(self, held: ArrivedResult) -> bool:
        """Keep a result of a listed task until `close`; False once closed or for a
        task the WELCOME did not list."""
        with self._lock:
            if self._closed or held.entry.task_id not in self._listed:
                return False
            self._held[held.entry.task_id] = held
            return True

    def close(self) -> tuple[set[str], list[ArrivedResult]]:
        """The listed task ids and the held results, once: later calls get none."""
        with self._lock:
            if self._closed:
                return set(), []
            self._closed = True
            listed, held = self._listed, list(self._held.values())
            self._listed, self._held = set(), {}
        return listed, held


class Arrivals:
    """Completes the task of each result that arrives, holds it for `reattach`, or
    drops it (a task failed here already); `reattach` files the tasks taken back."""

    def __init__(self, watch: LinkWatch, takes_back: bool) -> None:
        self.site = watch.site
        self.watch = watch
        self.pending = watch.pending
        #: Attached endpoints only: an embedded one never has tasks from before.
        self.takes_back = takes_back
        self.handover = Handover()

    def welcome(self, header: wire.WelcomeHeader) -> None:
        if self.takes_back:
            self.handover.open(header)

    def complete(self, item: ArrivedResult) -> bool:
        """Complete the task of one result; False when it is held for `reattach`
        (so not to be acknowledged yet)."""
        task_id = item.entry.task_id
        with self.pending.lock:  # atomic with reattach's filing of its tasks
            pending = self.pending.pop(task_id)
            if pending is None and self.handover.hold(item):
                return False
        if pending is None:  # at-least-once: the federation may have resubmitted it
            log.warning(
                "site %s returned task %s, which is no longer in flight here "
                "(failed as lost, cancelled or stopped): result dropped",
                self.site,
                task_id,
            )
            return True
        result, future = pending
        fill_result(result, item.entry, item.payload, item.header, item.received_ns)
        future.set_result(result)
        return True

    def reattach(
        self, results: list[Result]
    ) -> tuple[dict[str, Future[Result]], list[str]]:
        """A future for each of `results` the WELCOME listed, and the task ids of
        the held results, now completed (or dropped): to be acknowledged."""
        futures: dict[str, Future[Result]] = {}
        with self.pending.lock:
            listed, held = self.handover.close()
            running = self.watch.state is TransportState.RUNNING
            for result in results:
                if result.task_id in listed:
                    future: Future[Result] = Future()
                    futures[result.task_id] = future
                    if running:
                        self.pending.add(result.task_id, result, future)
        if not running:  # as `submit` does on a lost site: the federation resends
            for result in results:
                if result.task_id in futures:
                    complete_failed(
                        result,
                        futures[result.task_id],
                        FailureKind.ENDPOINT_LOST,
                        self.watch.why_down(),
                        self.site,
                    )
        for item in held:  # claimed, they complete now; the others are dropped
            self.complete(item)
        log.info(
            "site %s: took back %d of %d tasks (%d had finished)",
            self.site,
            len(futures),
            len(results),
            len(held),
        )
        return futures, [item.entry.task_id for item in held]
