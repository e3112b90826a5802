"""What became of every task of a run, and of the client that ran it.

Latency tables see only the tasks the thinker took (`delivered` lines). A run
whose client crashed, or was killed and resumed, must still be counted whole, so
this reads every task event of the journal into typed rows:

- per task, its state and the last event about it (`TaskRow`);
- per site, the tasks sent there and what became of them (`SiteTasks`);
- the client's lifecycle: its start, each resume, and whether a clean stop
  followed the last of them (`lifecycle.Lifecycle`).

Journals written before resumes and clean stops hold neither line: such a run
shows no resume and no clean stop, and its tasks are counted all the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from colmena_fx.journal import read_journal
from colmena_fx.latency.lifecycle import Lifecycle
from colmena_fx.latency.lifecycle import Stop
from colmena_fx.latency.lifecycle import count_of
from colmena_fx.latency.lifecycle import resume_row


class TaskState(StrEnum):
    """Where a task ended up, as far as the journal knows."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: Completed (successfully or not), but the thinker never took its result.
    NOT_DELIVERED = "completed, not delivered"
    #: Sent, or being resent, and never completed.
    UNFINISHED = "unfinished"


#: The events that tell where a task is, in the order a task meets them.
TASK_EVENTS = ("submitted", "accepted", "retried", "completed", "delivered")
_TASK_EVENTS = frozenset(TASK_EVENTS)
#: A `retried` reason: the task was resent because its client restarted.
CLIENT_RESTART = "client_restart"


@dataclass(frozen=True, slots=True)
class TaskRow:
    """One task: its state and where it was last seen (slots: a run has 100k)."""

    task_id: str
    method: str
    topic: str
    #: The site of its last attempt; None for a task never sent anywhere.
    site: str | None
    state: TaskState
    #: The last event about it, one of `TASK_EVENTS`.
    last_event: str
    #: When that event was journaled: seconds since the run started.
    last_seen_s: float
    #: Attempts lost and resent, the highest count its lines carry.
    retries: int
    #: Whether a resumed client sent it (again): a `submitted` line after a
    #: `resumed` one, or a resend for `client_restart`.
    resumed_after: bool
    #: What its completion said; None while it has none.
    success: bool | None


@dataclass(frozen=True)
class SiteTasks:
    """The tasks of one site (None: tasks never sent to any)."""

    site: str | None
    #: Distinct tasks sent there at least once (resends included).
    submitted: int
    #: The rest count each task once, at the site of its last attempt.
    succeeded: int
    failed: int
    not_delivered: int
    unfinished: int


@dataclass(frozen=True)
class TaskFacts:
    tasks: list[TaskRow]
    sites: list[SiteTasks]
    lifecycle: Lifecycle

    @property
    def undelivered(self) -> list[TaskRow]:
        """Tasks whose result never reached the thinker, the not-delivered first."""
        order = (TaskState.NOT_DELIVERED, TaskState.UNFINISHED)
        return [row for state in order for row in self.tasks if row.state == state]

    @property
    def interrupted(self) -> bool:
        """Whether a task never reached the thinker or the client was resumed:
        what tables of delivered tasks alone would hide."""
        return bool(self.lifecycle.resumes) or any(
            row.state in (TaskState.NOT_DELIVERED, TaskState.UNFINISHED)
            for row in self.tasks
        )


def read_task_facts(run_dir: Path) -> TaskFacts:
    """The tasks, sites and lifecycle of the run in `run_dir`."""
    return task_facts(read_journal(run_dir))


def task_facts(entries: Iterable[dict[str, Any]]) -> TaskFacts:
    """The tasks, sites and lifecycle of a run's journal lines, oldest first."""
    collector = TaskFactsCollector()
    for entry in entries:
        collector.add(entry)
    return collector.facts()


class _Task:
    """What the journal has said so far about one task."""

    __slots__ = ("last_event", "last_ns", "method", "resumed_after", "retries",
                 "sent_to", "site", "status", "success", "topic")  # fmt: skip

    def __init__(self) -> None:
        self.method = "?"
        self.topic = "default"
        self.site: str | None = None
        #: Sites it was sent to, each once, in order (a run has a few sites: a
        #: list is a third of a dict's memory).
        self.sent_to: list[str] = []
        #: "sent", "completed" or "delivered".
        self.status = "sent"
        self.success: bool | None = None
        self.retries = 0
        self.resumed_after = False
        self.last_event = ""
        self.last_ns = 0

    def state(self) -> TaskState:
        if self.status == "delivered":
            return TaskState.SUCCEEDED if self.success else TaskState.FAILED
        if self.status == "completed":
            return TaskState.NOT_DELIVERED
        return TaskState.UNFINISHED


class TaskFactsCollector:
    """Folds journal lines into per-task state; lines it cannot read are left out.

    Fed one line at a time (`add`), it keeps a few fields per task and nothing of
    the lines themselves: a reader can feed it beside others in one pass.
    """

    def __init__(self) -> None:
        self.start_ns: int | None = None
        self.run_ns: int | None = None
        self.last_ns: int | None = None
        self.sites: list[str] = []  # as the run line declares them
        self.tasks: dict[str, _Task] = {}
        self.resumes: list[tuple[int, dict[str, Any]]] = []
        self.stop: tuple[int, dict[str, Any]] | None = None
        self.recorded = False

    def add(self, entry: dict[str, Any]) -> None:
        task, time_ns = entry.get("task"), entry.get("time_ns")
        if not isinstance(task, dict) or not isinstance(time_ns, int):
            return
        self.line(entry.get("event"), task, time_ns)

    def line(self, event: object, task: dict[str, Any], time_ns: int) -> None:
        """`add` for a line already checked: its task a dict, its time an int."""
        if self.start_ns is None:  # the run line, or the first line of an old run
            self.start_ns = time_ns
        last = self.last_ns
        if not last or time_ns > last:  # max(time_ns, last or time_ns)
            self.last_ns = time_ns
        if not isinstance(event, str):
            return
        if event in _TASK_EVENTS:
            self._task_event(event, task, time_ns)
        elif event == "run":
            if self.run_ns is None:
                self.run_ns = self.start_ns = time_ns
                self.sites = [str(site) for site in task.get("sites") or {}]
            self.stop = None  # a start: a stop before it does not end this one
        elif event == "resumed":
            self.resumes.append((time_ns, task))
            self.stop, self.recorded = None, True
        elif event == "stopped":
            self.stop, self.recorded = (time_ns, task), True

    def _task_event(self, event: str, line: dict[str, Any], time_ns: int) -> None:
        task_id = line.get("task_id")
        if not isinstance(task_id, str):
            return
        task = self.tasks.get(task_id)
        if task is None:
            task = self.tasks[task_id] = _Task()
        get = line.get
        method, topic, site = get("method"), get("topic"), get("site")
        if isinstance(method, str):
            task.method = method
        if isinstance(topic, str):
            task.topic = topic
        retries = get("retries")
        if (
            isinstance(retries, int)
            and retries > task.retries  # mostly 0: this decides, before the bool test
            and not isinstance(retries, bool)
        ):
            task.retries = retries
        status = task.status
        if status == "delivered" and event != "delivered":
            return  # the thinker has it: a stray line after changes nothing
        if event == "accepted" and status != "sent":
            return  # a site's late word on an attempt that already completed
        task.last_event, task.last_ns = event, time_ns
        if isinstance(site, str):
            task.site = site
        if event == "delivered":
            task.status, task.success = "delivered", get("success") is True
        elif event == "completed":
            success = get("success")
            task.status = "completed"
            task.success = success if isinstance(success, bool) else None
        elif event == "submitted":  # sent, or sent again: not finished (again)
            task.status, task.success = "sent", None
            if isinstance(site, str) and site not in task.sent_to:
                task.sent_to.append(site)
            task.resumed_after = task.resumed_after or bool(self.resumes)
        elif event == "retried":
            task.status, task.success = "sent", None
            if get("reason") == CLIENT_RESTART:
                task.resumed_after = True

    def _since_start(self, time_ns: int) -> float:
        return (time_ns - (self.start_ns or time_ns)) / 1e9

    def facts(self) -> TaskFacts:
        start_ns = self.start_ns
        rows = [
            TaskRow(
                task_id=task_id,
                method=task.method,
                topic=task.topic,
                site=task.site,
                state=task.state(),
                last_event=task.last_event,
                last_seen_s=(task.last_ns - (start_ns or task.last_ns)) / 1e9,
                retries=task.retries,
                resumed_after=task.resumed_after,
                success=task.success,
            )
            for task_id, task in self.tasks.items()
        ]
        return TaskFacts(rows, self._site_rows(rows), self._lifecycle())

    def _site_rows(self, rows: list[TaskRow]) -> list[SiteTasks]:
        counts: dict[str | None, dict[str, int]] = {s: {} for s in self.sites}
        for task in self.tasks.values():
            for site in task.sent_to:
                tally = counts.setdefault(site, {})
                tally["submitted"] = tally.get("submitted", 0) + 1
        for row in rows:
            tally = counts.setdefault(row.site, {})
            tally[row.state] = tally.get(row.state, 0) + 1
        rank = {site: i for i, site in enumerate(self.sites)}
        order = sorted(
            counts,
            key=lambda s: (s is None, rank.get(s or "", len(rank)), s or ""),
        )
        return [
            SiteTasks(
                site=site,
                submitted=counts[site].get("submitted", 0),
                succeeded=counts[site].get(TaskState.SUCCEEDED, 0),
                failed=counts[site].get(TaskState.FAILED, 0),
                not_delivered=counts[site].get(TaskState.NOT_DELIVERED, 0),
                unfinished=counts[site].get(TaskState.UNFINISHED, 0),
            )
            for site in order
        ]

    def _lifecycle(self) -> Lifecycle:
        stop = None
        if self.stop is not None:
            time_ns, line = self.stop
            stop = Stop(self._since_start(time_ns), count_of(line.get("unfinished")))
        return Lifecycle(
            start_ns=self.run_ns,
            resumes=[
                resume_row(i, self._since_start(time_ns), line)
                for i, (time_ns, line) in enumerate(self.resumes, start=1)
            ],
            stop=stop,
            end_s=self._since_start(self.last_ns or 0),
            recorded=self.recorded,
        )
