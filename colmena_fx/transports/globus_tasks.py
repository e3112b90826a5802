"""What a globus site's transport knows of its tasks in flight and of its endpoint.

The service holds a task until an endpoint process takes it from the endpoint's
queue, and that process acknowledges the message as soon as it has handed the task
to its engine (`interchange.process_pending_tasks`; acknowledgements go out every
0.5 s), long before the task ends. So a task the service still reports pending is
in one of two places: in the queue, where whichever process consumes it next will
get it (the broker requeues a dead process's unacknowledged deliveries), or inside
one endpoint process, and gone if that process is. The service cannot tell the two
apart: it hears of a task again only with its result.

Hence `held_by`: the endpoint process (its start time and pid, from the status
report the service relays) that has been consuming the queue for `ACK_WINDOW_S`
since the task was accepted, so it has surely taken and acknowledged it. Once
another process reports, a task the old one held is lost if the service does not
have its result. A task accepted too close to the change to say is `suspect`: it
gets `reconcile_after_s` to be heard of before it counts as lost. Without a
process identity in the status, any return after an offline spell is such a change.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from globus_compute_sdk.sdk.asynchronous.compute_future import ComputeFuture

from colmena_fx.models import Result

#: How long an endpoint process consuming its queue may take to acknowledge a task
#: it was given: two of its acknowledgement periods, plus the engine hand-off.
ACK_WINDOW_S = 2.0

#: Which endpoint process reported: its start time and pid (None when not relayed).
Identity = tuple[Any, ...]


def identity_of(details: dict[str, Any]) -> Identity | None:
    """The reporting process, from the fields the endpoint adds to every status
    report at start (`Endpoint.start_endpoint`'s `ep_info`)."""
    values = (details.get("start_unix"), details.get("posix_pid"))
    return values if any(value is not None for value in values) else None


def capacity_of(details: dict[str, Any]) -> int | None:
    """The endpoint's workers, as its engine's status report counts them."""
    workers = details.get("total_workers")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        return None
    return workers


@dataclass(eq=False)
class Sent:
    """One task of the site between `submit` and the completion of its future."""

    result: Result
    future: Future[Result]
    function_id: str
    resources: dict[str, Any] | None
    endpoint_config: dict[str, Any] | None
    #: The SDK's future for the task as last handed to an executor.
    compute: ComputeFuture | None = None
    #: The executor it was handed to (whose watcher waits for its result).
    executor: Any = None
    #: When the service accepted it, and when it was last heard of (monotonic).
    accepted_at: float | None = None
    heard_at: float = 0.0
    held_by: Identity | None = None
    suspect_since: float | None = None
    #: Set when a restart took it: failed as lost unless the service has a result.
    lost_reason: str | None = None
    #: Handed back by an executor that stopped before sending it: send it again.
    unsent: bool = False
    #: Sent by an earlier client of the run and taken back (`reattach`): looked
    #: up at every poll, as its result may have come while nobody watched.
    adopted: bool = False

    @property
    def task_id(self) -> str:
        return self.result.task_id

    @property
    def remote_id(self) -> str | None:
        return self.result.remote_id

    def look_up_soon(self) -> None:
        """Make it due for a status request at the next pass."""
        self.heard_at = -math.inf


class SentTasks:
    """The site's tasks in flight, by task id, behind one reentrant lock.

    As in `pending.PendingTasks`, whoever pops a task completes its future, so a
    result and a failure can never both reach it.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._by_id: dict[str, Sent] = {}
        self._by_compute: dict[ComputeFuture, str] = {}

    def __len__(self) -> int:
        with self.lock:
            return len(self._by_id)

    def add(self, sent: Sent) -> None:
        with self.lock:
            self._by_id[sent.task_id] = sent

    def track(self, sent: Sent, compute: ComputeFuture) -> None:
        """`compute` is now the SDK's future for `sent`."""
        with self.lock:
            if sent.compute is not None:
                self._by_compute.pop(sent.compute, None)
            sent.compute = compute
            self._by_compute[compute] = sent.task_id

    def get(self, task_id: str) -> Sent | None:
        with self.lock:
            return self._by_id.get(task_id)

    def of(self, compute: ComputeFuture) -> Sent | None:
        with self.lock:
            task_id = self._by_compute.get(compute)
            return None if task_id is None else self._by_id.get(task_id)

    def pop(self, task_id: str) -> Sent | None:
        with self.lock:
            sent = self._by_id.pop(task_id, None)
            if sent is not None and sent.compute is not None:
                self._by_compute.pop(sent.compute, None)
            return sent

    def pop_all(self) -> list[Sent]:
        with self.lock:
            sents = list(self._by_id.values())
            self._by_id.clear()
            self._by_compute.clear()
            return sents

    def select(self, keep: Callable[[Sent], bool]) -> list[Sent]:
        with self.lock:
            return [sent for sent in self._by_id.values() if keep(sent)]


@dataclass
class EndpointView:
    """The endpoint as the status polls have shown it, with the times they did."""

    identity: Identity | None = None
    online_since: float | None = None
    #: First offline report of the current spell (reset once online again).
    offline_since: float | None = None
    last_online: float | None = None
    capacity: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Return:
    """What an online report after something else means for the tasks in flight."""

    #: Another endpoint process reports (True), the same one (False), or the
    #: status cannot tell after an offline spell (None).
    restarted: bool | None
    previous: Identity | None
    #: When the spell before it began (None: it went unseen between two polls).
    gap_began: float | None


def see_online(
    view: EndpointView, identity: Identity | None, details: dict[str, Any], now: float
) -> Return | None:
    """Record an online report; returns what changed, if anything did."""
    change: Return | None = None
    previous, gap = view.identity, view.offline_since
    if identity is not None and previous is not None and identity != previous:
        change = Return(restarted=True, previous=previous, gap_began=gap)
    elif gap is not None:
        same = identity is not None and identity == previous
        change = Return(restarted=False if same else None, previous=previous,
                        gap_began=gap)  # fmt: skip
    if change is not None or view.online_since is None:
        view.online_since = now
    view.identity = identity if identity is not None else view.identity
    view.offline_since = None
    view.last_online = now
    view.capacity = capacity_of(details)
    view.details = details
    return change


def mark_held(sents: list[Sent], view: EndpointView, now: float) -> None:
    """Tasks the reporting process has been able to take for `ACK_WINDOW_S`."""
    if view.identity is None or view.online_since is None:
        return
    for sent in sents:
        if sent.held_by is not None or sent.suspect_since is not None:
            continue
        if sent.accepted_at is None:
            continue
        if now - max(sent.accepted_at, view.online_since) >= ACK_WINDOW_S:
            sent.held_by = view.identity


def taken_by_the_old(sents: list[Sent], change: Return, now: float) -> list[Sent]:
    """After a return: the tasks the old process surely held (lost unless the
    service has their results); marks as suspect those it may have taken."""
    lost: list[Sent] = []
    if change.restarted is False:
        return lost
    for sent in sents:
        if sent.accepted_at is None:
            continue  # not accepted yet: it goes to whichever process consumes next
        if change.restarted and sent.held_by == change.previous:
            lost.append(sent)
        elif change.gap_began is None or sent.accepted_at < change.gap_began:
            sent.held_by, sent.suspect_since = None, sent.suspect_since or now
    return lost


def due_for_lookup(sent: Sent, now: float, reconcile_after_s: float) -> bool:
    """Accepted, and not heard of for `reconcile_after_s`."""
    return sent.accepted_at is not None and now - sent.heard_at >= reconcile_after_s


def given_up(sent: Sent, now: float, reconcile_after_s: float) -> bool:
    """A suspect still pending `reconcile_after_s` after the change that made it one."""
    since = sent.suspect_since
    return since is not None and now - since >= reconcile_after_s
