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

And the stock executor stops for good when one submission fails, cancelling every
task still queued behind it. A `TrackedExecutor` fails only the refused batch's own
tasks and keeps sending; it also splits a batch whose tasks together would exceed
the service's request limit.

Everything here that reaches into the SDK is pinned to 4.19 (pyproject.toml).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

from globus_compute_sdk import Client
from globus_compute_sdk import Executor
from globus_compute_sdk.sdk.asynchronous.compute_future import ComputeFuture
from globus_compute_sdk.sdk.executor import _REGISTERED_EXECUTORS
from globus_compute_sdk.sdk.executor import _RESULT_WATCHERS
from globus_compute_sdk.sdk.executor import _ResultWatcher
from globus_compute_sdk.sdk.utils.uuid_like import as_optional_uuid
from globus_compute_sdk.sdk.utils.uuid_like import as_uuid

log = logging.getLogger(__name__)

#: How often the SDK's result watcher matches arrived results to futures. Its
#: default (0.5 s) would add a quarter second to every round trip on average.
RESULT_MATCH_PERIOD_S = 0.02
#: Stands for the task group in a size count made before the service created one:
#: every later request names the group, and every group id takes the same room.
_SOME_GROUP = uuid.UUID(int=0)
#: Request envelopes remembered (one per function and settings in use).
_ENVELOPES_KEPT = 256

Capture = Callable[[str, int, list[Any] | None], None]
BatchHook = Callable[[list[ComputeFuture]], None]
SizeHook = Callable[[list[ComputeFuture]], list[int]]


class _ArrivalLog(dict[str, Any]):
    """The watcher's table of received results, noting when each one arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived_ns: dict[str, int] = {}

    def __setitem__(self, task_id: str, value: Any) -> None:
        self.arrived_ns[task_id] = time.time_ns()
        super().__setitem__(task_id, value)


class _TimedResultWatcher(_ResultWatcher):
    """The SDK's result watcher, handing each result's arrival and transitions on.

    It can also `forget` tasks completed another way (looked up at the service,
    cancelled, lost): the SDK's watcher would keep their futures open and, should
    their results still come, keep those in memory for as long as it runs.
    """

    def __init__(self, *args: Any, capture: Capture, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poll_period_s = RESULT_MATCH_PERIOD_S
        self._capture = capture
        self._arrivals = _ArrivalLog()
        self._received_results = self._arrivals
        self._forgotten: set[str] = set()

    def forget(self, task_ids: Iterable[str]) -> None:
        with self._new_futures_lock:
            for task_id in task_ids:
                self._open_futures.pop(task_id, None)
                self._forgotten.add(task_id)
            if not self._open_futures:
                self._open_futures_empty.set()
        self._time_to_check_results.set()

    @property
    def open_count(self) -> int:
        with self._new_futures_lock:
            return len(self._open_futures)

    def _match_results_to_futures(self) -> None:
        received = self._arrivals
        with self._new_futures_lock:
            stale = self._forgotten & received.keys()
            self._forgotten -= stale
            # A task forgotten before its future reached this watcher is open
            # too: it is stale, not ready (its result is dropped below).
            for task_id in stale:
                self._open_futures.pop(task_id, None)
            if not self._open_futures:
                self._open_futures_empty.set()
            ready = (self._open_futures.keys() & received.keys()) - stale
        for task_id in stale:  # a result nobody waits for any more
            received.pop(task_id, None)
            received.arrived_ns.pop(task_id, None)
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
        sizes: SizeHook,
        submit_limit: Callable[[], int],
        **kwargs: Any,
    ) -> None:
        self._on_sending = on_sending
        self._on_accepted = on_accepted
        self._capture = capture
        self._sizes = sizes
        self._submit_limit = submit_limit
        self._watcher: _TimedResultWatcher | None = None
        #: Tasks forgotten before the watcher started, handed to it when it does.
        self._forget_first: set[str] = set()
        self._send_lock = threading.Lock()
        self._envelopes: dict[str, int] = {}
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

    # -- sending ---------------------------------------------------------------------

    def send(
        self,
        function_id: str,
        args: tuple[Any, ...],
        resource_specification: dict[str, Any] | None,
        user_endpoint_config: dict[str, Any] | None,
    ) -> ComputeFuture:
        """Queue one task; the SDK takes the two settings from the executor."""
        with self._send_lock:
            self.resource_specification = resource_specification
            self.user_endpoint_config = user_endpoint_config
            return self.submit_to_registered_function(function_id, args=args)  # type: ignore[no-any-return]

    def request_size(
        self,
        function_id: str,
        args: tuple[Any, ...],
        resource_specification: dict[str, Any] | None,
        user_endpoint_config: dict[str, Any] | None,
    ) -> int:
        """Bytes of the submission request that would send this one task, as
        `_submit_tasks` builds it and the SDK's transport encodes it.

        The task's payload is serialized as `Batch.add` does; the rest of the
        request (the same for every task of a function and settings) is encoded
        once and remembered: building it costs a subprocess (the SDK's
        `create_user_runtime` runs `file` for `platform.architecture`). The
        payload is base64 text, digits and newlines, which every JSON encoder
        the SDK may use escapes alike: a newline takes two bytes.
        """
        serializer = self.client.fx_serializer
        payload = serializer.pack_buffers(
            [serializer.serialize(args), serializer.serialize({})]
        )
        settings = (resource_specification, user_endpoint_config)
        envelope = self._envelope_size(function_id, *settings)
        return envelope + len(json.dumps(payload)) - len('""')

    def _envelope_size(
        self,
        function_id: str,
        resource_specification: dict[str, Any] | None,
        user_endpoint_config: dict[str, Any] | None,
    ) -> int:
        """Bytes of a one-task submission request whose payload is empty.

        Counted with a task group even before the service has created one, as
        every request but the first names it: at most 57 bytes too many, once.
        """
        key = json.dumps([function_id, resource_specification,
                          user_endpoint_config], sort_keys=True)  # fmt: skip
        size = self._envelopes.get(key)
        if size is not None:
            return size
        batch = self.client.create_batch(
            task_group_id=self.task_group_id or _SOME_GROUP,
            resource_specification=resource_specification,
            user_endpoint_config=user_endpoint_config,
            result_serializers=self._result_serializer_paths(),
            create_websocket_queue=True,
        )
        batch.tasks[as_uuid(function_id)].append("")
        size = json_request_size(self.client, batch.prepare())
        if len(self._envelopes) >= _ENVELOPES_KEPT:
            self._envelopes.clear()
        self._envelopes[key] = size
        return size

    def _result_serializer_paths(self) -> list[str] | None:
        paths = [v.import_path for v in self._validated_result_serializers]
        return paths or None

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
        """Send the batch in requests that fit the limit; a refused one fails only
        its own tasks (the SDK would stop the executor and cancel the queue)."""
        queued = [(f, t) for f, t in zip(futures, tasks, strict=True) if not f.done()]
        for chunk in self._within_limit(queued):
            chunk_futures = [f for f, _ in chunk]
            self._on_sending(chunk_futures)
            try:
                super()._submit_tasks(
                    taskgroup_uuid,
                    endpoint_uuid,
                    resource_specification,
                    user_endpoint_config,
                    result_serializers,
                    chunk_futures,
                    [t for _, t in chunk],
                )
            except Exception as exc:
                self._refused(chunk_futures, exc)
            finally:
                self._on_accepted([f for f in chunk_futures if f.task_id])
                # Cancelled while the request was on its way: nobody waits.
                self.forget(f.task_id for f in chunk_futures
                            if f.task_id and f.cancelled())  # fmt: skip

    def _within_limit(
        self, queued: list[tuple[ComputeFuture, Any]]
    ) -> Iterator[list[tuple[ComputeFuture, Any]]]:
        """Runs of tasks whose requests, sent alone, add up to at most the limit
        (a little more than they take together: each counts the envelope)."""
        sizes = self._sizes([f for f, _ in queued])
        limit = self._submit_limit()
        chunk: list[tuple[ComputeFuture, Any]] = []
        total = 0
        for pair, size in zip(queued, sizes, strict=True):
            if chunk and total + size > limit:
                yield chunk
                chunk, total = [], 0
            chunk.append(pair)
            total += size
        if chunk:
            yield chunk

    def _refused(self, futures: list[ComputeFuture], exc: Exception) -> None:
        log.warning("submitting %d task(s) failed: %s: %s", len(futures),
                    type(exc).__name__, exc)  # fmt: skip
        for future in futures:  # the SDK sets them, unless it failed before that
            if not future.done():
                future.set_exception(exc)
        # The SDK's flag for "raised and reported": this one is handled for good.
        self._submitter_thread_exception_captured = False

    # -- receiving -------------------------------------------------------------------

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
            watcher.forget(self._forget_first)
            self._forget_first.clear()
            watcher.start()
            self._watcher = watcher
        return watcher

    def adopt(self, task_ids: list[str]) -> dict[str, ComputeFuture]:
        """Futures for tasks of this executor's task group sent by an earlier
        client, completed by its watcher as results come (as `reload_tasks` does,
        without asking the service for the group's task list)."""
        futures = {task_id: ComputeFuture(task_id) for task_id in task_ids}
        if futures:
            watcher = self._get_result_watcher()
            watcher.watch_for_task_results(self, list(futures.values()))
        return futures

    def forget(self, task_ids: Iterable[str]) -> None:
        """Stop waiting for these tasks' results; any that still come are dropped."""
        task_ids = list(task_ids)
        if not task_ids:
            return
        if self._watcher is None:
            self._forget_first.update(task_ids)
        else:
            self._watcher.forget(task_ids)

    @property
    def watching(self) -> int:
        """Accepted tasks whose results this executor's watcher still waits for."""
        watcher = self._watcher
        if watcher is None or not watcher.is_alive():
            return 0
        return watcher.open_count

    # -- ending ----------------------------------------------------------------------

    def retire(self) -> None:
        """Send nothing more (the SDK cancels what is still queued), but keep the
        watcher for the tasks already accepted: `close` it once they are done."""
        self.shutdown(wait=False, cancel_futures=True)  # type: ignore[no-untyped-call]
        _REGISTERED_EXECUTORS.pop(id(self), None)

    def close(self) -> None:
        """Shut down, result watcher included: the SDK leaves it running for as
        long as any of its futures is open, and a lost task's never closes."""
        self.retire()
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
        """Whether the SDK stopped it (after an error outside a submission)."""
        return bool(self._stopped)


def json_request_size(client: Client, data: dict[str, Any]) -> int:
    """Bytes of `data` as the client's transport sends it as a JSON body (with
    orjson where installed, else `requests`' own encoder)."""
    web = client._compute_web_client.v3
    provider = web.transport.representation_providers["json"]
    request = provider.encode("POST", web.base_url, None, data, {})
    body = request.prepare().body
    if isinstance(body, str):
        return len(body.encode())
    return len(body) if isinstance(body, bytes) else 0
