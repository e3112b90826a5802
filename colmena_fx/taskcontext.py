"""What a running function may know about its own task.

Retries make execution at-least-once: a task whose site was lost may already have
run there, or still be running, when another site runs it again. A function with
side effects (files, database rows) reads its task id here to make them idempotent:
the id is the same on every attempt.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from colmena_fx.models import ResourceRequirements


@dataclass(frozen=True)
class TaskContext:
    """Travels with each task to its worker."""

    task_id: str
    method: str
    #: The task's `timeout_s`: the worker stops the function when it runs longer.
    timeout_s: float | None = None
    #: What the task asked of its site (`submit(resources=...)` or the method's),
    #: for a function that launches a program to size it; None when it asked for
    #: nothing, so that most tasks carry no more than before.
    resources: ResourceRequirements | None = None
    #: Where the worker sends the items a generator yields, as they come (the
    #: client's stream on a local site); None: they travel in the reply.
    stream_to: str | None = None
    #: The method's `stream: false`: a generator's items become one list, the
    #: task's value, as in Colmena.
    collect_yields: bool = False


_current: ContextVar[TaskContext | None] = ContextVar("cfx_task", default=None)


def current_task() -> TaskContext | None:
    """The task the calling function runs for, on a worker; None elsewhere."""
    return _current.get()


def enter(context: TaskContext | None) -> object:
    """Make `context` current; returns the token `leave` takes."""
    return _current.set(context)


def leave(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
