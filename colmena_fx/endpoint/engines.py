"""What the endpoint needs from a Globus Compute engine beyond `submit`: its
capacity, each attempt's future (to cancel it), and an error result of its format."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from typing import Protocol

from globus_compute_common import messagepack
from globus_compute_common.messagepack.message_types import Result as GCResult
from globus_compute_common.messagepack.message_types import ResultErrorDetails
from globus_compute_endpoint.engines import ProcessPoolEngine
from globus_compute_endpoint.engines import ThreadPoolEngine

log = logging.getLogger(__name__)

#: Engines whose task futures are `concurrent.futures`' own: a task still queued
#: there cancels cleanly. Parsl's (GlobusComputeEngine) cannot be cancelled: its
#: result thread would fail setting the result of a cancelled future.
CANCELLABLE = (ProcessPoolEngine, ThreadPoolEngine)


class Attempted(Protocol):
    """A task that learns the engine's future of its latest attempt."""

    work: Future[Any] | None


def error_result(task_id: str, message: str) -> bytes:
    """A packed Globus Compute `Result` saying the endpoint failed the task."""
    return messagepack.pack(
        GCResult(
            task_id=uuid.UUID(task_id),
            data=message,
            error_details=ResultErrorDetails(
                code="EndpointError", user_message=message
            ),
        )
    )


def engine_workers(engine: Any) -> int | None:
    """How many tasks `engine` can run at once, from what it exposes; None if unknown.

    Process and thread pools: their executor's `_max_workers` (which the engines'
    own status reports use). Parsl's HighThroughputExecutor: `workers_per_node`
    (its `max_workers_per_node`, bounded by cores and memory) per node, times
    `nodes_per_block` and `max_blocks` of its provider: all its blocks, once up.
    """
    try:
        executor = getattr(engine, "executor", None)
        workers = getattr(executor, "_max_workers", None)
        if isinstance(workers, int):
            return workers
        per_node = getattr(executor, "workers_per_node", None)
        provider = getattr(executor, "provider", None)
        nodes = getattr(provider, "nodes_per_block", None)
        blocks = getattr(provider, "max_blocks", None)
        numbers = (per_node, nodes, blocks)
        if all(isinstance(n, int | float) and math.isfinite(n) for n in numbers):
            return int(per_node * nodes * blocks)  # type: ignore[operator]
    except Exception:  # an engine of another kind: capacity is only a hint
        log.debug("cannot tell the workers of %r", engine, exc_info=True)
    return None


def track_attempts(engine: Any, attempt: Callable[[str], Attempted | None]) -> None:
    """Wrap the engine's `_submit` (globus-compute-endpoint 4.19) to learn each
    attempt's future, the one a cancel must reach, and to refuse an attempt of a
    cancelled task: the engine submits a task again when an attempt fails.

    `_submit(resource_specification, func, packed_task, args=(task_id, ...), ...)`
    is what `GlobusComputeEngineBase.submit` calls for every attempt.
    """
    submit = getattr(engine, "_submit", None)
    if submit is None:
        return

    def tracked(*positional: Any, **keywords: Any) -> Any:
        args = keywords.get("args") or ()
        task = attempt(str(args[0])) if args else None
        work = submit(*positional, **keywords)
        if task is not None and isinstance(work, Future):
            task.work = work
        return work

    engine._submit = tracked


def drop_queued(engine: Any) -> None:
    """Cancel the tasks a process or thread pool has not started: nobody waits for
    them (the client is gone), and its shutdown would otherwise run them all first.
    Parsl's engine drops its queue with its interchange anyway."""
    executor = getattr(engine, "executor", None)
    if isinstance(engine, CANCELLABLE) and executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)
