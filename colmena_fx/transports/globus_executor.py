"""The SDK's `Executor` and result watcher, subclassed to report what they hide.

The stock executor stamps nothing and drops each result's `task_statuses`. These
subclasses override two documented-by-use methods of globus-compute-sdk 4.19
(`_submit_tasks`, `_get_result_watcher`) instead of patching the SDK globally:
batches are reported as they are sent and accepted, and every result's arrival
time and engine transitions are handed on before its future completes.

The stock executor also shares state across the process: it remembers the first
task group any executor is given and hands it to every later one, and it reuses
whichever result watcher serves that group. Two sites would then read one result
queue with two watchers, and a watcher that receives the other site's result keeps
it. A `TrackedExecutor` keeps its task group to itself (the service creates a new
one with its first batch) and runs exactly one watcher of its own.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from globus_compute_sdk import Executor
from globus_compute_sdk.sdk.asynchronous.compute_future import ComputeFuture
from globus_compute_sdk.sdk.executor import _REGISTERED_EXECUTORS
from globus_compute_sdk.sdk.executor import _RESULT_WATCHERS
from globus_compute_sdk.sdk.executor import _ResultWatcher
from globus_compute_sdk.sdk.utils.uuid_like import as_optional_uuid

#: How often the SDK's result watcher matches arrived results to futures. Its
#: default (0.5 s) would add a quarter second to every round trip on average.
RESULT_MATCH_PERIOD_S = 0.02
Capture = Callable[[str, int, list[Any] | None], None]
BatchHook = Callable[[list[ComputeFuture]], None]


class _ArrivalLog(dict[str, Any]):
    """The watcher's table of received results, noting when each one arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived_ns: dict[str, int] = {}

    def __setitem__(self, task_id: str, value: Any) -> None:
        self.arrived_ns[task_id] = time.time_ns()
        super().__setitem__(task_id, value)


class _TimedResultWatcher(_ResultWatcher):
    """The SDK's result watcher, handing each result's arrival and transitions on."""

    def __init__(self, *args: Any, capture: Capture, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poll_period_s = RESULT_MATCH_PERIOD_S
        self._capture = capture
        self._arrivals = _ArrivalLog()
        self._received_results = self._arrivals

    def _match_results_to_futures(self) -> None:
        received = self._arrivals
        with self._new_futures_lock:
            ready = self._open_futures.keys() & received.keys()
        for task_id in ready:
            _props, message = received[task_id]
            arrived = received.arrived_ns.pop(task_id, time.time_ns())
            self._capture(task_id, arrived, message.task_statuses)
        super()._match_results_to_futures()  # type: ignore[no-untyped-call]


class TrackedExecutor(Executor):
    """The SDK's executor, reporting each batch as it is sent and as it is accepted."""

    def __init__(
        self,
        *args: Any,
        on_sending: BatchHook,
        on_accepted: BatchHook,
        capture: Capture,
        **kwargs: Any,
    ) -> None:
        self._on_sending = on_sending
        self._on_accepted = on_accepted
        self._capture = capture
        self._watcher: _TimedResultWatcher | None = None
        super().__init__(*args, **kwargs)
        # The SDK's constructor adopts the last task group of any executor.
        self._task_group_id = None

    @property
    def task_group_id(self) -> uuid.UUID | None:
        """This executor's own task group: never the process-wide default."""
        return self._task_group_id

    @task_group_id.setter
    def task_group_id(self, task_group_id: Any) -> None:
        # The SDK's setter would also make it every later executor's default.
        self._task_group_id = as_optional_uuid(task_group_id)

    def _submit_tasks(  # the SDK's signature (4.19)
        self,
        taskgroup_uuid: Any,
        endpoint_uuid: Any,
        resource_specification: dict[str, Any] | None,
        user_endpoint_config: dict[str, Any] | None,
        result_serializers: list[str] | None,
        futures: list[ComputeFuture],
        tasks: list[Any],
    ) -> None:
        self._on_sending(futures)
        try:
            super()._submit_tasks(
                taskgroup_uuid,
                endpoint_uuid,
                resource_specification,
                user_endpoint_config,
                result_serializers,
                futures,
                tasks,
            )
        finally:
            self._on_accepted([f for f in futures if f.task_id])

    def _get_result_watcher(self) -> _ResultWatcher:
        """This executor's own watcher, started with its first accepted batch."""
        watcher = self._watcher
        if watcher is None or not watcher.is_alive():
            watcher = _TimedResultWatcher(
                self.task_group_id,
                self.client,
                port=self.amqp_port,
                capture=self._capture,
            )
            watcher.start()
            self._watcher = watcher
        return watcher

    def close(self) -> None:
        """Shut down, result watcher included: the SDK leaves it running for as
        long as any of its futures is open, and a lost task's never closes."""
        self.shutdown(wait=False, cancel_futures=True)  # type: ignore[no-untyped-call]
        # After a failed submission the SDK marks the executor stopped, and its
        # `shutdown` then returns at once, still listing it among the live ones.
        _REGISTERED_EXECUTORS.pop(id(self), None)
        watcher = self._watcher
        if watcher is not None:
            if watcher.is_alive():
                watcher.shutdown(wait=False, cancel_futures=True)  # type: ignore[no-untyped-call]
                watcher.join(timeout=5)
            # A watcher whose thread ended by itself is still in the SDK's table.
            if _RESULT_WATCHERS.get(watcher.task_group_id) is watcher:
                del _RESULT_WATCHERS[watcher.task_group_id]

    @property
    def stopped(self) -> bool:
        """The SDK stops an executor for good after any failed submission."""
        return bool(self._stopped)
