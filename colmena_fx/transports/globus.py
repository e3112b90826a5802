"""The `globus` transport: tasks through the Globus Compute web service.

One SDK `Executor` per site drives the real service path (function registration,
batched submission with the SDK's own rate limiting, results over AMQP). Its
subclass in `globus_executor` keeps what the stock executor drops: when each batch
is sent, the task ids the service gave it, and each result's arrival time and
engine `task_statuses`. The same worker shim as the local transport runs the user
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
from globus_compute_sdk.errors import TaskExecutionFailed
from globus_compute_sdk.sdk.asynchronous.compute_future import ComputeFuture

from colmena_fx import serialize
from colmena_fx.config import MethodRoute
from colmena_fx.config import SiteConfig
from colmena_fx.exceptions import ColmenaFXError
from colmena_fx.exceptions import EndpointError
from colmena_fx.exceptions import PayloadTooLargeError
from colmena_fx.exceptions import ServiceError
from colmena_fx.limits import SUBMIT_LIMIT_BYTES
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.transports import gcformat
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.base import TransportStatus
from colmena_fx.transports.globus_executor import TrackedExecutor
from colmena_fx.transports.globus_service import endpoint_id_of
from colmena_fx.transports.globus_service import endpoint_status
from colmena_fx.transports.globus_service import make_client
from colmena_fx.transports.globus_service import translate
from colmena_fx.transports.pending import PendingTasks
from colmena_fx.transports.pending import complete_failed
from colmena_fx.transports.pending import transport_failure
from colmena_fx.worker import WorkerReply

log = logging.getLogger(__name__)

#: Room left in a submission for the JSON around a task's payload.
_REQUEST_OVERHEAD_BYTES = 4096


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
        #: The watch's own client: it polls again anyway, so it never retries, and
        #: the SDK's per-client request lock never holds up a submission for it.
        self._status_client: Client | None = None
        self._executor: TrackedExecutor | None = None
        self._function_ids: dict[Callable[..., Any], str] = {}
        self._register_lock = threading.Lock()
        #: Held while a task is handed to the executor, so hooks find it registered.
        self._submit_lock = threading.Lock()
        self._pending = PendingTasks()  # by the SDK's future
        self._arrivals: dict[str, tuple[int, list[Any] | None]] = {}
        self._arrivals_lock = threading.Lock()
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
        try:
            self._client = make_client(self.link.service_url)
            self._status_client = make_client(self.link.service_url, max_retries=0)
        except ServiceError as exc:
            raise exc.about(f"site {self.site!r}") from exc
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
            except ServiceError as exc:
                raise exc.about(f"site {self.site!r}") from exc
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

    def _new_executor(self) -> TrackedExecutor:
        return TrackedExecutor(
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
        self._pending.fail_all(
            FailureKind.INFRASTRUCTURE,
            f"site {self.site!r} was stopped before the task finished",
            self.site,
        )
        if self._executor is not None:
            self._executor.close()
        self._state = TransportState.STOPPED

    # -- sending ---------------------------------------------------------------------

    def submit(self, result: Result, function: Callable[..., Any]) -> Future[Result]:
        future: Future[Result] = Future()
        if self._state is not TransportState.RUNNING:
            message = f"site {self.site!r} is {self._state.value}, not running"
            complete_failed(
                result, future, FailureKind.ENDPOINT_LOST, message, self.site
            )
            return future
        request_bytes = _submission_size(result.inputs)
        if request_bytes > SUBMIT_LIMIT_BYTES:
            raise PayloadTooLargeError(
                f"the inputs of {result.method!r} make a {request_bytes / 1e6:.1f} MB "
                f"submission, over Globus Compute's {SUBMIT_LIMIT_BYTES / 1e6:.0f} MB "
                f"limit (site {self.site!r}): declare a data store under "
                f"'data.stores' in the federation file so that large values go by "
                f"reference (README, 'Large data')"
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
            self._pending.add(task, result, future)
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
            except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as exc:
                doing = f"registering {shim.__name__!r}"
                raise translate(exc, doing, self._client) from exc
            self._function_ids[function] = str(function_id)
            return str(function_id)

    def _live_executor(self) -> TrackedExecutor:
        assert self._executor is not None
        if self._executor.stopped:
            log.warning("site %s: the SDK executor stopped after an error; "
                        "starting a new one", self.site)  # fmt: skip
            self._executor.close()
            self._executor = self._new_executor()
        return self._executor

    # -- hooks, on the SDK's threads -------------------------------------------------

    def _stamp_sent(self, tasks: list[ComputeFuture]) -> None:
        with self._submit_lock:  # wait for `submit` to file them
            entries = [self._pending.get(task) for task in tasks]
        now = time.time_ns()
        for entry in entries:
            if entry is not None:
                entry[0].stamp(Stamp.SENT, time_ns=now)

    def _record_accepted(self, tasks: list[ComputeFuture]) -> None:
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
        with self._arrivals_lock:
            self._arrivals[task_id] = (arrived_ns, transitions)

    # -- receiving -------------------------------------------------------------------

    def _complete(self, task: ComputeFuture) -> None:
        entry = self._pending.pop(task)
        with self._arrivals_lock:
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
        elif isinstance(error, globus_sdk.GlobusAPIError | globus_sdk.NetworkError):
            mapped = translate(error, f"submitting to site {self.site!r}", self._client)
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
        result.fail(transport_failure(kind, message, self.site, exception_type))

    # -- endpoint watch --------------------------------------------------------------

    def _watch(self) -> None:
        """Poll the endpoint's status while tasks are in flight; fail them if lost."""
        assert self._status_client is not None
        while not self._closing.wait(self.link.status_poll_s):
            if not self._pending:
                self._offline_since = None
                continue
            try:
                status = endpoint_status(self._status_client, self.endpoint_id)
            except ColmenaFXError as exc:  # the service, not the endpoint: keep going
                self._detail = str(exc)
                continue
            except Exception as exc:  # never let the watch die unseen
                log.exception(
                    "site %s: cannot ask for the endpoint's status", self.site
                )
                self._detail = f"status unknown: {type(exc).__name__}: {exc}"
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
                self._pending.fail_all(FailureKind.ENDPOINT_LOST, reason, self.site)
                self._offline_since = None

    def status(self) -> TransportStatus:
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
    return serialize.encoded_size(len(inputs)) + _REQUEST_OVERHEAD_BYTES
