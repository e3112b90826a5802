"""The `globus` transport: tasks through the Globus Compute web service.

One SDK `Executor` per site drives the real service path (function registration,
batched submission with the SDK's own rate limiting, results over AMQP). Two small
subclasses keep what the stock executor drops, without touching the SDK globally:
when each batch is sent and which task ids the service gave it, and, for each
result, when it arrived and the engine's `task_statuses` (execution start and end,
stamped on the worker). The same worker shim as the local transport runs the user
function, so a task carries the same worker stamps on either transport.

The service keeps tasks queued while an endpoint is offline; so that no task waits
forever, the transport polls the endpoint's status while tasks are in flight and
fails them as lost once the endpoint has been offline for `globus.lost_after_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import globus_sdk
from globus_compute_sdk import Client
from globus_compute_sdk import Executor
from globus_compute_sdk.errors import TaskExecutionFailed
from globus_compute_sdk.sdk.asynchronous.compute_future import ComputeFuture
from globus_compute_sdk.sdk.executor import _RESULT_WATCHERS
from globus_compute_sdk.sdk.executor import _ResultWatcher

from colmena_fx.config import MethodRoute
from colmena_fx.config import SiteConfig
from colmena_fx.exceptions import ColmenaFXError
from colmena_fx.exceptions import EndpointError
from colmena_fx.exceptions import PayloadTooLargeError
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.transports import gcformat
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.base import TransportStatus
from colmena_fx.transports.globus_service import SUBMIT_LIMIT_BYTES
from colmena_fx.transports.globus_service import endpoint_id_of
from colmena_fx.transports.globus_service import endpoint_status
from colmena_fx.transports.globus_service import make_client
from colmena_fx.transports.globus_service import translate
from colmena_fx.worker import WorkerReply

log = logging.getLogger(__name__)

#: How often the SDK's result watcher matches arrived results to futures. Its
#: default (0.5 s) would add a quarter second to every round trip on average.
RESULT_MATCH_PERIOD_S = 0.02
#: Room left in a submission for the JSON around a task's payload.
_REQUEST_OVERHEAD_BYTES = 4096

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
        self._received_results = _ArrivalLog()

    def _match_results_to_futures(self) -> None:
        received = self._received_results
        with self._new_futures_lock:
            ready = self._open_futures.keys() & received.keys()
        for task_id in ready:
            _props, message = received[task_id]
            arrived = received.arrived_ns.pop(task_id, time.time_ns())
            self._capture(task_id, arrived, message.task_statuses)
        super()._match_results_to_futures()


class _TrackedExecutor(Executor):
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
        watcher = _RESULT_WATCHERS.get(self.task_group_id)
        if not isinstance(watcher, _TimedResultWatcher) or not watcher.is_alive():
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
        self.shutdown(wait=False, cancel_futures=True)
        watcher = self._watcher
        if watcher is not None and watcher.is_alive():
            watcher.shutdown(wait=False, cancel_futures=True)
            watcher.join(timeout=5)

    @property
    def stopped(self) -> bool:
        """The SDK stops an executor for good after any failed submission."""
        return bool(self._stopped)


class GlobusTransport:
    """Sends one site's tasks to its Globus Compute endpoint."""

    def __init__(
        self,
        site: SiteConfig,
        run_dir: Path,
        routes: dict[str, MethodRoute] | None = None,
        on_accepted: Callable[[Result], None] | None = None,
    ) -> None:
        self.site = site.name
        self.config = site
        self.link = site.globus
        self.run_dir = Path(run_dir)
        self._routes = routes or {}
        self._on_accepted = on_accepted
        self._client: Client | None = None
        self._executor: _TrackedExecutor | None = None
        self._function_ids: dict[Callable[..., Any], str] = {}
        self._register_lock = threading.Lock()
        #: Held while a task is handed to the executor, so hooks find it registered.
        self._submit_lock = threading.Lock()
        self._pending: dict[ComputeFuture, tuple[Result, Future[Result]]] = {}
        self._pending_lock = threading.Lock()
        self._arrivals: dict[str, tuple[int, list[Any] | None]] = {}
        self._state = TransportState.NEW
        self._detail = ""
        self._last_online: float | None = None
        self._offline_since: float | None = None
        self._closing = threading.Event()
        self._monitor: threading.Thread | None = None

    @property
    def endpoint_id(self) -> str:
        return endpoint_id_of(self.config)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        endpoint_id = self.endpoint_id
        self._client = make_client(self.link.service_url)
        self._wait_online(endpoint_id)
        self._executor = self._new_executor()
        self._state = TransportState.RUNNING
        self._monitor = threading.Thread(
            target=self._watch, name=f"cfx-globus-{self.site}", daemon=True
        )
        self._monitor.start()

    def _wait_online(self, endpoint_id: str) -> None:
        assert self._client is not None
        deadline = time.monotonic() + self.link.start_timeout_s
        while True:
            try:
                status = endpoint_status(self._client, endpoint_id)
            except EndpointError as exc:
                raise EndpointError(f"site {self.site!r}: {exc}") from None
            if status.get("status") == "online":
                self._last_online = time.monotonic()
                return
            if time.monotonic() > deadline:
                raise EndpointError(
                    f"site {self.site!r}: Globus Compute reports endpoint "
                    f"{endpoint_id} as {status.get('status', 'unknown')!r} after "
                    f"{self.link.start_timeout_s:.0f} s: start it on the facility "
                    f"(`globus-compute-endpoint start <name>`) or check "
                    f"`colmena-fx endpoint status {self.config.source or self.site}`"
                )
            time.sleep(min(1.0, self.link.start_timeout_s / 10))

    def _new_executor(self) -> _TrackedExecutor:
        return _TrackedExecutor(
            endpoint_id=self.endpoint_id,
            client=self._client,
            batch_size=self.link.batch_size,
            api_burst_limit=self.link.api_burst_limit,
            api_burst_window_s=self.link.api_burst_window_s,
            amqp_port=self.link.amqp_port,
            label=f"colmena-fx:{self.site}",
            on_sending=self._stamp_sent,
            on_accepted=self._record_accepted,
            capture=self._note_arrival,
        )

    def stop(self) -> None:
        if self._state is TransportState.STOPPED:
            return
        self._closing.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        self._fail_all(
            FailureKind.INFRASTRUCTURE,
            f"site {self.site!r} was stopped before the task finished",
        )
        if self._executor is not None:
            self._executor.close()
        self._state = TransportState.STOPPED

    # -- sending ---------------------------------------------------------------------

    def submit(self, result: Result, function: Callable[..., Any]) -> Future[Result]:
        future: Future[Result] = Future()
        if self._state is not TransportState.RUNNING:
            message = f"site {self.site!r} is {self._state.value}, not running"
            self._complete_failed(result, future, FailureKind.ENDPOINT_LOST, message)
            return future
        request_bytes = _submission_size(result.inputs)
        if request_bytes > SUBMIT_LIMIT_BYTES:
            raise PayloadTooLargeError(
                f"the inputs of {result.method!r} make a {request_bytes / 1e6:.1f} MB "
                f"submission, over Globus Compute's {SUBMIT_LIMIT_BYTES / 1e6:.0f} MB "
                f"limit (site {self.site!r}): pass large values by reference "
                f"(a data store) instead"
            )
        result.sizes.request = request_bytes
        function_id = self._register(function)
        route = self._routes.get(result.method)
        endpoint_config = {
            **self.link.user_endpoint_config,
            **(route.user_endpoint_config if route else {}),
        }
        with self._submit_lock:
            executor = self._live_executor()
            executor.resource_specification = (
                result.resources.to_resource_specification() or None
            )
            executor.user_endpoint_config = endpoint_config or None
            task = executor.submit_to_registered_function(
                function_id, args=(result.inputs,)
            )
            with self._pending_lock:
                self._pending[task] = (result, future)
        task.add_done_callback(self._complete)
        return future

    def _register(self, function: Callable[..., Any]) -> str:
        """The function id of the shim around `function`, registered once."""
        with self._register_lock:
            function_id = self._function_ids.get(function)
            if function_id is not None:
                return function_id
            assert self._client is not None
            shim = gcformat.make_shim(function)
            try:
                function_id = self._client.register_function(
                    shim, description=f"colmena-fx worker shim for {shim.__name__}"
                )
            except globus_sdk.GlobusAPIError as exc:
                raise translate(exc, f"registering {shim.__name__!r}") from exc
            self._function_ids[function] = function_id
            return function_id

    def _live_executor(self) -> _TrackedExecutor:
        assert self._executor is not None
        if self._executor.stopped:
            log.warning("site %s: the SDK executor stopped after an error; "
                        "starting a new one", self.site)  # fmt: skip
            self._executor.close()
            self._executor = self._new_executor()
        return self._executor

    # -- hooks, on the SDK's threads -------------------------------------------------

    def _stamp_sent(self, tasks: list[ComputeFuture]) -> None:
        with self._submit_lock, self._pending_lock:  # wait for `submit` to file them
            entries = [self._pending.get(task) for task in tasks]
        now = time.time_ns()
        for entry in entries:
            if entry is not None:
                entry[0].stamp(Stamp.SENT, time_ns=now)

    def _record_accepted(self, tasks: list[ComputeFuture]) -> None:
        with self._pending_lock:
            entries = [(task, self._pending.get(task)) for task in tasks]
        for task, entry in entries:
            if entry is None:
                continue
            entry[0].remote_id = str(task.task_id)
            if self._on_accepted is not None:
                self._on_accepted(entry[0])

    def _note_arrival(
        self, task_id: str, arrived_ns: int, transitions: list[Any] | None
    ) -> None:
        with self._pending_lock:
            self._arrivals[task_id] = (arrived_ns, transitions)

    # -- receiving -------------------------------------------------------------------

    def _complete(self, task: ComputeFuture) -> None:
        with self._pending_lock:
            entry = self._pending.pop(task, None)
            arrival = self._arrivals.pop(str(task.task_id), None)
        if entry is None:
            return  # already failed (endpoint lost, or stopped)
        result, future = entry
        arrived_ns, transitions = arrival or (time.time_ns(), None)
        self._read_outcome(task, result)
        gcformat.stamp_transitions(transitions, result)
        result.stamp(Stamp.RECEIVED, time_ns=arrived_ns)
        result.stamp(Stamp.DESERIALIZED)
        future.set_result(result)

    def _read_outcome(self, task: ComputeFuture, result: Result) -> None:
        if task.cancelled():
            self._fail(result, FailureKind.INFRASTRUCTURE, "the SDK cancelled the task")
            return
        error = task.exception()
        if error is None:
            reply = task.result()
            if isinstance(reply, WorkerReply):
                gcformat.apply_reply(reply, result)
            else:
                message = f"the endpoint returned {type(reply).__name__}, not a reply"
                self._fail(result, FailureKind.INFRASTRUCTURE, message)
        elif isinstance(error, TaskExecutionFailed):
            gcformat.fail_from_engine(error.remote_data, result)
        elif isinstance(error, globus_sdk.GlobusAPIError):
            mapped = translate(error, f"submitting to site {self.site!r}")
            kind = (
                FailureKind.USER
                if isinstance(mapped, PayloadTooLargeError)
                else FailureKind.INFRASTRUCTURE
            )
            self._fail(result, kind, str(mapped), type(mapped).__name__)
        else:
            message = f"Globus Compute SDK error: {type(error).__name__}: {error}"
            self._fail(result, FailureKind.INFRASTRUCTURE, message)

    def _fail(
        self,
        result: Result,
        kind: FailureKind,
        message: str,
        exception_type: str = "EndpointError",
    ) -> None:
        result.fail(
            Failure(
                kind=kind,
                exception_type=exception_type,
                message=message,
                host=self.site,
            )
        )

    # -- endpoint watch --------------------------------------------------------------

    def _watch(self) -> None:
        """Poll the endpoint's status while tasks are in flight; fail them if lost."""
        assert self._client is not None
        while not self._closing.wait(self.link.status_poll_s):
            with self._pending_lock:
                busy = bool(self._pending)
            if not busy:
                self._offline_since = None
                continue
            try:
                status = endpoint_status(self._client, self.endpoint_id)
            except ColmenaFXError as exc:  # the service, not the endpoint: keep going
                self._detail = str(exc)
                continue
            now = time.monotonic()
            if status.get("status") == "online":
                self._last_online, self._offline_since = now, None
                self._detail = ""
                continue
            self._offline_since = self._offline_since or now
            offline_s = now - self._offline_since
            self._detail = f"endpoint offline for {offline_s:.0f} s"
            if offline_s >= self.link.lost_after_s:
                reason = (
                    f"the endpoint of site {self.site!r} ({self.endpoint_id}) has "
                    f"been offline for {offline_s:.0f} s, as Globus Compute reports "
                    f"it; its tasks in flight are lost"
                )
                log.error("%s", reason)
                self._fail_all(FailureKind.ENDPOINT_LOST, reason)
                self._offline_since = None

    def _fail_all(self, kind: FailureKind, message: str) -> None:
        with self._pending_lock:
            pending = list(self._pending.values())
            self._pending.clear()
        for result, future in pending:
            self._complete_failed(result, future, kind, message)

    def _complete_failed(
        self, result: Result, future: Future[Result], kind: FailureKind, message: str
    ) -> None:
        name = "EndpointLostError" if kind is FailureKind.ENDPOINT_LOST else ""
        self._fail(result, kind, message, name or "EndpointError")
        future.set_result(result)

    def status(self) -> TransportStatus:
        with self._pending_lock:
            in_flight = len(self._pending)
        heard = (
            None if self._last_online is None else time.monotonic() - self._last_online
        )
        return TransportStatus(
            site=self.site,
            transport="globus",
            state=self._state,
            in_flight=in_flight,
            remote_host=str(self.link.endpoint_id),
            last_heard_s=heard,
            detail=self._detail,
        )


def _submission_size(inputs: bytes) -> int:
    """Bytes of the submit request a task adds: its payload goes as base64 lines."""
    encoded = (len(inputs) + 2) // 3 * 4
    return encoded + encoded // 76 + _REQUEST_OVERHEAD_BYTES
