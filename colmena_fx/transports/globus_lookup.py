"""Tasks looked up at the Globus Compute service by id, and what it reports.

The transport asks when its result watcher gave up on a task, after an endpoint
restarted or came back, for a task silent too long, and for the tasks a resumed
client takes back: the service's record says whether each finished, and how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from globus_compute_sdk import Client

#: Task ids per status request (the SDK's `reload_tasks` asks for 128): the answer
#: holds each finished task's result, up to 10 MiB each.
LOOKUP_CHUNK = 32


@dataclass(frozen=True)
class TaskOutcome:
    """A task as the service reports it: pending, or done with a value or an error.

    `value` is what the worker returned, deserialized as the SDK does; `error` is
    the engine's error report (remote traceback); `undecodable` says why a reported
    value could not be read.
    """

    status: str
    done: bool
    value: Any = None
    error: str | None = None
    undecodable: str | None = None


def task_outcomes(client: Client, task_ids: list[str]) -> dict[str, TaskOutcome]:
    """The service's view of each task (those it does not report are left out).

    Read as `Executor._load_tasks_status` reads them: a task is done when it has a
    completion time. Through the web client directly: `Client.get_batch_result`
    keeps every finished task in a table for the client's lifetime, and drops a
    failed one from its answer after logging its traceback.
    """
    outcomes: dict[str, TaskOutcome] = {}
    for start in range(0, len(task_ids), LOOKUP_CHUNK):
        chunk = task_ids[start : start + LOOKUP_CHUNK]
        with client._request_lock:
            reply = client._compute_web_client.v2.get_task_batch(chunk)
        for task_id, state in (reply.data.get("results") or {}).items():
            outcomes[str(task_id)] = _outcome(client, state)
    return outcomes


def _outcome(client: Client, state: dict[str, Any]) -> TaskOutcome:
    status = str(state.get("status", "unknown")).lower()
    completed = state.get("completion_t")
    if not completed:
        return TaskOutcome(status, done=False)
    if status != "success":
        # The SDK raises `TaskExecutionFailed(exception)`: its `remote_data`.
        report = state.get("exception") or state.get("reason") or status
        return TaskOutcome(status, done=True, error=str(report))
    try:
        value = client.fx_serializer.deserialize(state["result"])
    except Exception as exc:
        return TaskOutcome(
            status, done=True, undecodable=f"{type(exc).__name__}: {exc}"
        )
    return TaskOutcome(status, done=True, value=value)
