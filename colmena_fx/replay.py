"""A run directory read back: which tasks finished, which the thinker took, which
are still out, and everything needed to send those again exactly as they were.

The task store (`taskstore`) has each request, each finished task's value and the
order in which the thinker took them; the journal has where each task was last
sent. A task is:

- *delivered*: the thinker took its result before the client stopped;
- *undelivered*: it finished (its result is in the store) but was never taken;
- *unfinished*: no result: still at a site, or lost with the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from colmena_fx import serialize
from colmena_fx.exceptions import RunDirectoryError
from colmena_fx.journal import JOURNAL_NAME
from colmena_fx.journal import read_journal
from colmena_fx.models import Event
from colmena_fx.models import ResourceRequirements
from colmena_fx.models import Result
from colmena_fx.models import Timeline
from colmena_fx.records import read_records
from colmena_fx.taskstore import REQUESTS_NAME
from colmena_fx.taskstore import RESULTS_NAME


@dataclass
class Request:
    """One submitted task as its request record has it, and where it was last."""

    result: Result
    candidates: list[str]
    timeout_s: float | None
    #: Resends of it because a client restarted (not the task's fault).
    restarts: int = 0


@dataclass
class RunReplay:
    """What a run directory says about its tasks, in submission order."""

    run_dir: Path
    requests: dict[str, Request] = field(default_factory=dict)
    #: Finished tasks with their values, in the order they finished.
    results: dict[str, Result] = field(default_factory=dict)
    #: Task ids in the order the thinker took them.
    delivered_ids: list[str] = field(default_factory=list)
    #: Resumes before this one (`resumed` lines).
    resumes: int = 0
    #: Whether the last client stopped cleanly (a `stopped` line ends its part).
    stopped_cleanly: bool = False
    #: Tasks with a `completed` / `delivered` journal line. The store writes at
    #: once and the journal in batches, so a crash can leave a kept result or a
    #: taken one without its line: resuming writes those lines then.
    journaled_completed: set[str] = field(default_factory=set)
    journaled_delivered: set[str] = field(default_factory=set)

    @property
    def delivered(self) -> list[Result]:
        return [self.results[t] for t in self.delivered_ids if t in self.results]

    @property
    def undelivered(self) -> list[Result]:
        taken = set(self.delivered_ids)
        return [r for t, r in self.results.items() if t not in taken]

    @property
    def unjournaled(self) -> tuple[list[Result], list[Result]]:
        """Results whose `completed` line, and those whose `delivered` line, the
        journal lost in the crash."""
        completed = [r for t, r in self.results.items()
                     if t not in self.journaled_completed]  # fmt: skip
        delivered = [r for r in self.delivered
                     if r.task_id not in self.journaled_delivered]  # fmt: skip
        return completed, delivered

    @property
    def unfinished(self) -> list[Request]:
        return [r for t, r in self.requests.items() if t not in self.results]


def read_run(run_dir: Path) -> RunReplay:
    """Replay `run_dir`; raises `RunDirectoryError` if it holds no resumable run."""
    run_dir = Path(run_dir)
    if not (run_dir / JOURNAL_NAME).exists():
        raise RunDirectoryError(
            f"cannot resume {run_dir}: it has no {JOURNAL_NAME}; pass the run "
            f"directory of a campaign (the one its journal is in)"
        )
    if not (run_dir / REQUESTS_NAME).exists():
        raise RunDirectoryError(
            f"cannot resume {run_dir}: it has no {REQUESTS_NAME} (it was written "
            f"by a version of colmena-fx that did not keep task requests)"
        )
    replay = RunReplay(run_dir)
    # The latest acceptance of each task by a site's service.
    accepted: dict[str, dict[str, Any]] = {}
    for header, payload in read_records(run_dir / REQUESTS_NAME):
        if header.get("kind") == "request":
            request = _request(header, payload)
            replay.requests[request.result.task_id] = request
        elif header.get("kind") == "accepted":
            accepted[header["task_id"]] = header
    for header, payload in read_records(run_dir / RESULTS_NAME):
        if header.get("kind") == "taken":
            replay.delivered_ids.append(header["task_id"])
        elif header.get("kind") == "result":
            result = _result(header, payload, run_dir)
            replay.results[result.task_id] = result
    _read_journal(replay)
    for task_id, header in accepted.items():
        found = replay.requests.get(task_id)
        attempt = int(header.get("retries") or 0)
        # Written at once, the acceptance may be newer than the journal's last line.
        if found is not None and attempt >= found.result.retries:
            found.result.site = header.get("site")
            found.result.remote_id = header.get("remote_id")
            found.result.remote_group = header.get("remote_group")
            found.result.retries = attempt
    return replay


def _request(header: dict[str, Any], inputs: bytes) -> Request:
    timeline = Timeline(events=[Event(*event) for event in header.get("events", [])])
    result = Result(
        task_id=header["task_id"],
        method=header["method"],
        topic=header["topic"],
        resources=ResourceRequirements.model_validate(header.get("resources", {})),
        task_info=header.get("task_info") or {},
        inputs=inputs,
        keep_inputs=header.get("keep_inputs", False),
        max_retries=header.get("max_retries"),
        retry_on=header.get("retry_on"),
        timeline=timeline,
    )
    result.sizes.inputs = len(inputs)
    return Request(result, list(header.get("candidates", [])), header.get("timeout_s"))


def _result(header: dict[str, Any], payload: bytes, run_dir: Path) -> Result:
    result = Result.model_validate(header["record"])
    if payload:
        try:
            result.value = serialize.loads(payload)
        except Exception as exc:
            raise RunDirectoryError(
                f"cannot resume {run_dir}: the value of task {result.task_id} "
                f"({result.method!r}) cannot be read back: {type(exc).__name__}: "
                f"{exc}; resume where the classes of the campaign's values import"
            ) from exc
    return result


def _read_journal(replay: RunReplay) -> None:
    """Last site, retries and resumes, from the journal."""
    for entry in read_journal(replay.run_dir):
        event, task = entry.get("event"), entry.get("task") or {}
        if event == "resumed":
            replay.resumes += 1
            replay.stopped_cleanly = False
        elif event == "stopped":
            replay.stopped_cleanly = True
        elif event == "completed":
            replay.journaled_completed.add(str(task.get("task_id")))
        elif event == "delivered":
            replay.journaled_delivered.add(str(task.get("task_id")))
        elif event in ("submitted", "retried"):
            request = replay.requests.get(str(task.get("task_id")))
            if request is not None:
                request.result.site = task.get("site")
                request.result.retries = int(task.get("retries") or 0)
                if event == "retried":
                    request.result.retries += 1
                    request.restarts += task.get("reason") == "client_restart"
