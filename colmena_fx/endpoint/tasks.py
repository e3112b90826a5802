"""The tasks an endpoint's engine holds, each tagged with its client's run.

Engine threads finish tasks; the serving thread takes what finished (`take`), and
is woken once per batch through `wake`. A task leaves the table and joins the
finished list under one lock, so that a listing of both (`snapshot`, for a WELCOME)
never misses a task between the two.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any
from typing import NamedTuple

from globus_compute_endpoint.engines.base import GCFuture

from colmena_fx.endpoint import wire
from colmena_fx.endpoint.engines import CANCELLABLE
from colmena_fx.endpoint.engines import error_result
from colmena_fx.endpoint.engines import track_attempts

log = logging.getLogger(__name__)


class _Cancelled(Exception):
    """Refuses the engine's retry of a task the client cancelled."""


@dataclass
class _Task:
    """A task the engine holds, from its TASK message until it finished."""

    received_ns: int
    #: The run of the session that sent it: only that run's sessions get its result.
    run: str
    cancelled: bool = False
    #: The engine's future of the task's latest attempt, once it was submitted.
    work: Future[Any] | None = None


class Done(NamedTuple):
    """A finished task: its packed Globus Compute `Result`."""

    task_id: str
    run: str
    received_ns: int
    packed: bytes


class EngineTasks:
    """Tasks in the engine by id, and those finished but not yet taken."""

    def __init__(self, engine: Any, wake: Callable[[], None]) -> None:
        self.engine = engine
        self._wake = wake
        self._lock = threading.Lock()
        self._tasks: dict[str, _Task] = {}
        self._finished: list[Done] = []
        track_attempts(engine, self._attempt)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tasks) + len(self._finished)

    def submit(
        self, header: wire.TaskHeader, packed_task: bytes, received_ns: int, run: str
    ) -> None:
        task_id = header.task_id
        task = _Task(received_ns, run)
        future = GCFuture(task_id)
        with self._lock:  # a task sent again (a retry) replaces its entry
            self._tasks[task_id] = task
        future.add_done_callback(lambda done: self._finished_task(task_id, task, done))
        try:
            self.engine.submit(future, packed_task, header.resource_specification)
        except Exception as exc:
            log.exception("engine refused task %s", task_id)
            if not future.done():
                future.set_result(
                    error_result(task_id, f"engine refused the task: {exc}")
                )

    def take(self) -> list[Done]:
        """What finished since the last take, in order."""
        with self._lock:
            done, self._finished = self._finished, []
        return done

    def snapshot(self, run: str) -> tuple[list[str], list[Done]]:
        """The running tasks of `run`, and (taken) everything finished, at once."""
        with self._lock:
            running = [
                task_id
                for task_id, task in self._tasks.items()
                if task.run == run and not task.cancelled
            ]
            done, self._finished = self._finished, []
        return running, done

    def cancel_run(self, run: str) -> int:
        """Cancel every task of `run`; how many there were."""
        with self._lock:
            ids = [task_id for task_id, task in self._tasks.items() if task.run == run]
        for task_id in ids:
            self.cancel(task_id)
        return len(ids)

    def cancel(self, task_id: str) -> None:
        """Drop a task the client no longer waits for: unstarted, it never runs."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is not None:
                task.cancelled = True
        if task is None:
            log.debug("cancel of task %s, which is no longer here", task_id)
            return
        work = task.work
        cancellable = isinstance(self.engine, CANCELLABLE)
        if work is not None and cancellable and work.cancel():
            log.info("task %s cancelled before it started", task_id)
        elif cancellable:
            log.info(
                "task %s cancelled after a worker took it: it runs on, unreported",
                task_id,
            )
        else:
            log.info(
                "task %s cancelled: a %s cannot stop it, so it runs on, unreported",
                task_id,
                type(self.engine).__name__,
            )

    def _attempt(self, task_id: str) -> _Task | None:
        """The task the engine is submitting (again); refuses a cancelled one."""
        with self._lock:
            task = self._tasks.get(task_id)
        if task is not None and task.cancelled:
            raise _Cancelled(f"task {task_id} was cancelled by the client")
        return task

    def _finished_task(self, task_id: str, task: _Task, done: GCFuture) -> None:
        """Called from engine threads: queue the result, unless it was cancelled."""
        try:
            packed = done.result()
        except BaseException as exc:  # the engine failed the future itself
            packed = error_result(task_id, f"engine error: {exc!r}")
        with self._lock:
            if self._tasks.get(task_id) is task:
                del self._tasks[task_id]
            if not task.cancelled:
                self._finished.append(Done(task_id, task.run, task.received_ns, packed))
        if task.cancelled:
            log.info("task %s was cancelled by the client: result dropped", task_id)
            return
        self._wake()
