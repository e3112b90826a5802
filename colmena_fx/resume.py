"""Picking a run up where its client left it: redeliver, reattach, resend.

Given a replayed run directory (`replay`) and the federation's started sites:

- the journal lines the crash lost for results the store kept are written;
- results that finished but were never taken go back on their topics;
- each unfinished task is offered to the site it was last sent to (`reattach`): a
  globus site takes back what its service accepted, an attached standalone
  endpoint what it holds; an embedded endpoint died with the client and takes
  nothing back;
- every other unfinished task is sent again, exactly as it was submitted, as a
  retry with reason `client_restart` (not counted against `max_retries`: the task
  did nothing wrong).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from colmena_fx.config import FederationConfig
from colmena_fx.dispatch import Dispatcher
from colmena_fx.dispatch import Task
from colmena_fx.dispatch import brief
from colmena_fx.journal import Journal
from colmena_fx.models import HOST
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.replay import Request
from colmena_fx.replay import RunReplay
from colmena_fx.transports.base import Transport

log = logging.getLogger(__name__)

CLIENT_RESTART = "client_restart"


@dataclass
class Resumption:
    """What resuming a run found and did."""

    #: Results the thinker took before the client stopped, in the order it did.
    delivered: list[Result] = field(default_factory=list)
    #: Tasks of the earlier client whose results are still to be taken, in the
    #: order they were submitted: each arrives on its topic.
    pending: list[Result] = field(default_factory=list)
    redelivered: int = 0
    reattached: dict[str, int] = field(default_factory=dict)
    resent: int = 0

    def record(self, resumes: int) -> dict[str, Any]:
        """The journal's `resumed` line."""
        return {
            "client_host": HOST,
            "pid": os.getpid(),
            "resumes": resumes,
            "delivered_before": len(self.delivered),
            "redelivered": self.redelivered,
            "reattached": self.reattached,
            "resent": self.resent,
            "unfinished": sum(self.reattached.values()) + self.resent,
        }


def resume_run(
    replay: RunReplay,
    config: FederationConfig,
    functions: dict[str, Callable[..., Any]],
    transports: dict[str, Transport],
    dispatch: Dispatcher,
    journal: Journal,
    redeliver: Callable[[Result], None],
    fail: Callable[[Result], None],
) -> Resumption:
    """Redeliver, reattach and resend the run's tasks; returns what it did."""
    done = Resumption(delivered=replay.delivered)
    completed, delivered = replay.unjournaled
    for result in completed:  # lost with the crash: a report counts them
        journal.record("completed", brief(result))
    for result in delivered:
        journal.record_result("delivered", result)
    for result in replay.undelivered:
        redeliver(result)
        done.redelivered += 1
    tasks: list[tuple[Task, str | None]] = []
    for request in replay.unfinished:
        task = _task(request, config, functions, transports)
        if task is None:
            fail(_unroutable(request))
            continue
        tasks.append((task, request.result.site))
    futures = _reattach(tasks, transports)
    for task, site in tasks:
        if task.result.task_id in futures:
            assert site is not None
            done.reattached[site] = done.reattached.get(site, 0) + 1
    done.resent = len(tasks) - len(futures)
    # Before any of the tasks' own lines, so that a report sees them after it.
    journal.record("resumed", done.record(replay.resumes + 1))
    for task, site in tasks:
        future = futures.get(task.result.task_id)
        if future is not None and site is not None:
            dispatch.adopt(task, site, future)
        else:
            task.result.remote_id = task.result.remote_group = None
            dispatch.resend(task, CLIENT_RESTART, _lost_message(site, transports))
    pending = {r.task_id for r in replay.undelivered} | {
        t.result.task_id for t, _ in tasks
    }
    done.pending = [
        replay.results.get(task_id) or request.result
        for task_id, request in replay.requests.items()
        if task_id in pending
    ]
    log.info(
        "resumed %s: %d results taken before, %d redelivered, %s reattached, "
        "%d sent again",
        replay.run_dir, len(done.delivered), done.redelivered,
        done.reattached or "none", done.resent,
    )  # fmt: skip
    return done


def _task(
    request: Request,
    config: FederationConfig,
    functions: dict[str, Callable[..., Any]],
    transports: dict[str, Transport],
) -> Task | None:
    """The dispatcher's task for a request; None if no site can take it now."""
    result = request.result
    function = functions.get(result.method)
    if function is None or result.method not in config.methods:
        return None
    candidates = [s for s in request.candidates if s in transports]
    if not candidates:
        return None
    task = Task(result, function, candidates, timeout_s=request.timeout_s)
    task.restarts = request.restarts
    return task


def _reattach(
    tasks: list[tuple[Task, str | None]], transports: dict[str, Transport]
) -> dict[str, Future[Result]]:
    """Offer each site the tasks last sent to it; the futures of those it took."""
    by_site: dict[str, list[Result]] = {}
    for task, site in tasks:
        if site in transports:
            by_site.setdefault(site, []).append(task.result)
    futures: dict[str, Future[Result]] = {}
    for site, results in by_site.items():
        try:
            futures.update(transports[site].reattach(results))
        except Exception:  # sent again instead: never lost
            log.exception("site %s could not take back its tasks", site)
    return futures


def _lost_message(site: str | None, transports: dict[str, Transport]) -> str:
    if site is None:
        return "the client restarted before the task was sent"
    if site not in transports:
        return f"the client restarted, and its site {site!r} is no longer in the run"
    return (
        f"the client restarted, and site {site!r} no longer had the task (an "
        f"embedded endpoint stops with its client)"
    )


def _unroutable(request: Request) -> Result:
    result = request.result
    result.fail(
        Failure(
            kind=FailureKind.INFRASTRUCTURE,
            exception_type="UnknownMethodError",
            message=(
                f"the run was resumed without a route for {result.method!r} to any "
                f"of its sites {request.candidates}: it cannot be sent again"
            ),
        )
    )
    return result
