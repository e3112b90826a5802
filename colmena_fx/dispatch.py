"""Every task between `submit` and its delivery: routed, sent, resent, timed out.

A task is *sent* (its future is at a transport) or *waiting* (for its backoff to
pass, or for one of its sites to become usable). Resubmission is never done on the
thread of the failing callback: it is scheduled on the timer thread, at once when
another of the method's sites can take the task, else after an exponential backoff
with jitter. A task that finds no usable site waits up to `deadline_s`, then fails
naming each site and why it is down; a task past its `timeout_s` fails as
`timeout` whatever its site does. Whoever pops a task from the table delivers it,
so each task is delivered exactly once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from colmena_fx.config import FederationConfig
from colmena_fx.journal import Journal
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Routing
from colmena_fx.routing import Router
from colmena_fx.routing import SiteView
from colmena_fx.timers import Timer
from colmena_fx.timers import Timers
from colmena_fx.timers import backoff_s
from colmena_fx.transports.base import Transport
from colmena_fx.transports.health import USABLE

log = logging.getLogger(__name__)

#: How long a site's reported worker count is reused before asking again.
_CAPACITY_TTL_S = 1.0


@dataclass(eq=False)
class Task:
    """One submitted task and where it stands."""

    result: Result
    function: Callable[..., Any]
    #: Its sites, in the method's order, that can read its inputs.
    candidates: list[str]
    timeout_s: float | None = None
    #: The transport's future while the task is sent.
    future: Future[Result] | None = None
    #: Monotonic time since which no site could take it; None otherwise.
    waiting_since: float | None = None
    deadline: Timer | None = None
    #: Why the last attempt failed, delivered if no other attempt can be made.
    last_failure: Failure | None = None
    #: Resends because the client restarted: retries, but not the task's fault,
    #: so not counted against `max_retries`.
    restarts: int = 0


Deliver = Callable[[Result], None]


class Dispatcher:
    """The federation's table of unfinished tasks and the rules that move them."""

    def __init__(
        self,
        config: FederationConfig,
        transports: dict[str, Transport],
        router: Router,
        journal: Journal,
        deliver: Deliver,
    ) -> None:
        self.config = config
        self.transports = transports
        self.router = router
        self.journal = journal
        self._deliver = deliver
        self.timers = Timers()
        self._tasks: dict[str, Task] = {}
        self._waiting: dict[str, Task] = {}
        self._sent_to: Counter[str] = Counter()
        self._capacity: dict[str, tuple[float, int | None]] = {}
        self._lock = threading.RLock()
        self._running = False

    def start(self) -> None:
        self._running = True
        self.timers.start()

    def close(self) -> None:
        """No more resends or timers; tasks still at a site are failed by its stop."""
        self._running = False
        self.timers.stop()

    def fail_waiting(self) -> None:
        """Deliver every task that is not at a site as failed: the run is over."""
        with self._lock:
            waiting = [t for t in self._tasks.values() if t.future is None]
        for task in waiting:
            failure = task.last_failure or Failure(
                kind=FailureKind.INFRASTRUCTURE,
                exception_type="FederationNotRunningError",
                message="the federation stopped before the task could be sent",
            )
            self._finish(task, failure)

    # -- reading -------------------------------------------------------------------

    def unfinished(self) -> list[Result]:
        with self._lock:
            return [task.result for task in self._tasks.values()]

    def views(self, names: list[str]) -> list[SiteView]:
        """What routing needs to know about each of `names`, now."""
        with self._lock:
            loads = {name: self._sent_to[name] for name in names}
        return [
            SiteView(
                name,
                self.transports[name].health.health,
                loads[name],
                self._capacity_of(name),
            )
            for name in names
        ]

    def _capacity_of(self, name: str) -> int | None:
        now = time.monotonic()
        cached = self._capacity.get(name)
        if cached is not None and now - cached[0] < _CAPACITY_TTL_S:
            return cached[1]
        capacity = self.transports[name].status().capacity
        self._capacity[name] = (now, capacity)
        return capacity

    def choose(
        self, task: Task, avoid: str | None = None
    ) -> tuple[str, Routing] | None:
        route = self.config.methods[task.result.method]
        return self.router.choose(
            task.result.method, route.policy, self.views(task.candidates), avoid
        )

    # -- moving tasks ----------------------------------------------------------------

    def add(self, task: Task) -> None:
        """File a new task (before its first send) and arm its timeout."""
        with self._lock:
            self._tasks[task.result.task_id] = task
        if task.timeout_s is not None:
            task.deadline = self.timers.call_later(
                task.timeout_s, lambda: self._time_out(task)
            )

    def adopt(self, task: Task, site: str, future: Future[Result]) -> None:
        """File a task that `site` took back after a client restart (`reattach`)."""
        self.add(task)
        with self._lock:
            task.future = future
            self._sent_to[site] += 1
        future.add_done_callback(lambda done: self._on_done(task, done))

    def resend(self, task: Task, reason: str, message: str) -> None:
        """File a task whose attempt was lost without a failure of its own (the
        client restarted) and send it again, as a retry with `reason`."""
        self.add(task)
        result = task.result
        self.journal.record(
            "retried", {**brief(result), "failure": message, "reason": reason}
        )
        result.retries += 1
        task.restarts += 1
        self.timers.call_soon(lambda: self._try_send(task))

    def discard(self, task: Task) -> None:
        """Forget a task whose first send raised in the caller's thread."""
        with self._lock:
            self._tasks.pop(task.result.task_id, None)
        if task.deadline is not None:
            task.deadline.cancel()

    def send(self, task: Task, site: str, routing: Routing) -> None:
        """Hand the task to `site`'s transport; raises what the transport raises."""
        result = task.result
        result.site, result.routing = site, routing
        with self._lock:
            if result.task_id not in self._tasks:
                return  # timed out while waiting
            self._waiting.pop(result.task_id, None)
            task.waiting_since = None
            self._sent_to[site] += 1
        self.journal.record("submitted", brief(result))
        try:
            future = self.transports[site].submit(result, task.function)
        except BaseException:
            with self._lock:
                self._sent_to[site] -= 1
            raise
        with self._lock:
            task.future = future
        future.add_done_callback(lambda done: self._on_done(task, done))

    def wait_for_site(self, task: Task) -> None:
        """No site of the task can take it now: wait for one, up to `deadline_s`."""
        route = self.config.methods[task.result.method]
        deadline_s = route.deadline_s or self.config.deadline_s
        with self._lock:
            if task.result.task_id not in self._tasks or task.waiting_since is not None:
                return
            since = task.waiting_since = time.monotonic()
            self._waiting[task.result.task_id] = task
        log.warning(
            "task %s of %r waits for a usable site: %s",
            task.result.task_id, task.result.method, self._why_unusable(task),
        )  # fmt: skip
        self.timers.call_at(since + deadline_s, lambda: self._give_up(task, since))
        # A site that came back while this task was being filed woke nobody.
        if any(view.health in USABLE for view in self.views(task.candidates)):
            self.timers.call_soon(self.wake)

    def wake(self) -> None:
        """A site became usable: send what waits for one (on the timer thread)."""
        with self._lock:
            waiting = sorted(self._waiting.values(), key=lambda t: t.waiting_since or 0)
        for task in waiting:
            self._try_send(task)

    def _try_send(self, task: Task, avoid: str | None = None) -> None:
        if task.result.task_id not in self._tasks:
            return
        if not self._running:
            self._finish(task, task.last_failure)
            return
        choice = self.choose(task, avoid)
        if choice is None:
            self.wait_for_site(task)
            return
        try:
            self.send(task, *choice)
        except Exception as exc:  # delivered rather than lost
            log.exception("could not send task %s", task.result.task_id)
            self._finish(task, _failure_of(exc, choice[0]))

    # -- on the transports' and the timer's threads ------------------------------------

    def _on_done(self, task: Task, future: Future[Result]) -> None:
        result = future.result()
        with self._lock:
            if result.site is not None:  # each send counted once, each future once
                self._sent_to[result.site] -= 1
            if task.future is not future or result.task_id not in self._tasks:
                return  # delivered already (timed out on its way to the site)
            task.future = None
        if not self._should_retry(task):
            self._finish(task)
            return
        failure = result.failure
        assert failure is not None
        self.journal.record(
            "retried",
            {**brief(result), "failure": str(failure), "reason": failure.kind.value},
        )
        task.last_failure = failure
        result.retries += 1
        result.success, result.failure = None, None
        lost = result.site
        # Not `choose`: it would spend a round-robin turn on a task not yet sent.
        elsewhere = any(
            view.name != lost and view.health in USABLE
            for view in self.views(task.candidates)
        )
        delay = 0.0 if elsewhere else self._backoff(result)
        log.warning(
            "retrying task %s in %.2f s after: %s", result.task_id, delay, failure
        )
        self.timers.call_later(delay, lambda: self._try_send(task, avoid=lost))

    def _should_retry(self, task: Task) -> bool:
        result, failure = task.result, task.result.failure
        if not self._running or failure is None:
            return False
        route = self.config.methods[result.method]
        allowed = result.max_retries
        if allowed is None:
            allowed = route.max_retries
        kinds = route.retry_on if result.retry_on is None else result.retry_on
        return failure.kind in kinds and result.retries - task.restarts < allowed

    def _backoff(self, result: Result) -> float:
        retry = self.config.retry
        nominal = backoff_s(result.retries, retry.initial_s, retry.max_s)
        return nominal * random.uniform(1 - retry.jitter, 1)

    def _time_out(self, task: Task) -> None:
        result = task.result
        failure = Failure(
            kind=FailureKind.TIMEOUT,
            exception_type="TaskTimeoutError",
            message=(
                f"task {result.task_id} of {result.method!r} did not finish within "
                f"its timeout_s of {task.timeout_s:g} s"
                + (f" (at site {result.site!r})" if result.site else "")
            ),
        )
        with self._lock:
            if result.task_id not in self._tasks:
                return
            future, site = task.future, result.site
        if future is not None and site is not None:
            # The transport completes the future with the failure (or the result
            # that is arriving now wins); `_on_done` then delivers it.
            self.transports[site].cancel(result.task_id, failure)
            return
        self._finish(task, failure)

    def _give_up(self, task: Task, since: float) -> None:
        with self._lock:
            if task.waiting_since != since or task.result.task_id not in self._tasks:
                return
        route = self.config.methods[task.result.method]
        deadline_s = route.deadline_s or self.config.deadline_s
        failure = Failure(
            kind=FailureKind.ENDPOINT_LOST,
            exception_type="NoUsableSiteError",
            message=(
                f"no site of {task.result.method!r} could take the task for "
                f"{deadline_s:g} s (deadline_s): {self._why_unusable(task)}"
            ),
        )
        self._finish(task, failure)

    def _why_unusable(self, task: Task) -> str:
        return "; ".join(
            str(self.transports[name].health.current) for name in task.candidates
        )

    def _finish(self, task: Task, failure: Failure | None = None) -> None:
        """Take the task off the table and deliver it (failed, given `failure`)."""
        result = task.result
        with self._lock:
            if self._tasks.pop(result.task_id, None) is None:
                return
            self._waiting.pop(result.task_id, None)
        if task.deadline is not None:
            task.deadline.cancel()
        if failure is not None:
            result.fail(failure)
        self._deliver(result)


def _failure_of(exc: BaseException, site: str) -> Failure:
    return Failure(
        kind=FailureKind.INFRASTRUCTURE,
        exception_type=type(exc).__name__,
        message=f"could not send the task to site {site!r}: {exc}",
    )


def brief(result: Result) -> dict[str, Any]:
    """The journal's short record of a task."""
    record: dict[str, Any] = {
        "task_id": result.task_id,
        "method": result.method,
        "topic": result.topic,
        "site": result.site,
        "retries": result.retries,
    }
    if result.routing is not None:
        record["policy"] = result.routing.policy
        if result.routing.predicted_s is not None:
            record["predicted_s"] = result.routing.predicted_s
    if result.success is not None:
        record["success"] = result.success
        if result.failure is not None:
            record["failure"] = str(result.failure)
    return record
