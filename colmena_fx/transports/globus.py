"""The `globus` transport: tasks through the Globus Compute web service.

One SDK `Executor` per site drives the real service path (function registration,
batched submission with the SDK's own rate limiting, results over AMQP). Its
subclass in `globus_executor` keeps what the stock executor drops: when each batch
is sent, the task ids the service gave it, and each result's arrival time and
engine `task_statuses`. The same worker shim as the local transport runs the user
function, so a task carries the same worker stamps on either transport.

The service keeps a task queued while its endpoint is offline, and reports a task
an endpoint process took and then died with as pending forever. So that no task
waits forever, `globus_watch` keeps the site's health from the endpoint's status
and looks tasks up at the service by id, completing or failing them as lost
(`globus_tasks` says which). The transport never resends a task itself: the
federation does, for the failures whose kind allows it. A task the SDK's result
watcher gave up on is looked up the same way, rather than failed.

A refused submission fails only its own tasks: as the user's to fix when too
large, as `endpoint_lost` after the SDK's own retries of a rate limit or server
error. `cancel` completes a task at once; Globus Compute has no cancel route, so
an accepted task still runs, and its result is dropped.
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
from globus_compute_sdk.sdk.asynchronous.compute_future import ComputeFuture

from colmena_fx.config import SiteConfig
from colmena_fx.exceptions import EndpointError
from colmena_fx.exceptions import PayloadTooLargeError
from colmena_fx.exceptions import ServiceError
from colmena_fx.methodroute import MethodRoute
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.transports import gcformat
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.base import TransportStatus
from colmena_fx.transports.globus_executor import TrackedExecutor
from colmena_fx.transports.globus_lookup import TaskOutcome
from colmena_fx.transports.globus_outcomes import is_engine_report
from colmena_fx.transports.globus_outcomes import read_future
from colmena_fx.transports.globus_outcomes import read_record
from colmena_fx.transports.globus_outcomes import sdk_error
from colmena_fx.transports.globus_service import endpoint_id_of
from colmena_fx.transports.globus_service import endpoint_status
from colmena_fx.transports.globus_service import make_client
from colmena_fx.transports.globus_service import translate
from colmena_fx.transports.globus_tasks import EndpointView
from colmena_fx.transports.globus_tasks import Sent
from colmena_fx.transports.globus_tasks import SentTasks
from colmena_fx.transports.globus_watch import EndpointWatch
from colmena_fx.transports.globus_watch import WatchHooks
from colmena_fx.transports.health import Health
from colmena_fx.transports.health import HealthTracker
from colmena_fx.transports.pending import transport_failure
from colmena_fx.transports.resourcespec import engine_specification
from colmena_fx.units import format_size

log = logging.getLogger(__name__)


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
        self.health = HealthTracker(site.name)
        self._routes = routes or {}
        self._on_accepted = on_accepted
        self._client: Client | None = None
        #: The watch's own client: it polls again anyway, so it never retries, and
        #: the SDK's per-client request lock never holds up a submission for it.
        self._status_client: Client | None = None
        self._executor: TrackedExecutor | None = None
        #: Executors the SDK stopped, kept until their accepted tasks are done.
        self._retired: list[TrackedExecutor] = []
        self._function_ids: dict[Callable[..., Any], str] = {}
        self._register_lock = threading.Lock()
        #: Held while a task is handed to the executor, so hooks find it filed.
        self._submit_lock = threading.RLock()
        self._tasks = SentTasks()
        self._arrivals: dict[str, tuple[int, list[Any] | None]] = {}
        self._arrivals_lock = threading.Lock()
        self._state = TransportState.NEW
        self._closing = threading.Event()
        self._watch: EndpointWatch | None = None

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
        details = self._wait_online(endpoint_id)
        self._executor = self._new_executor()
        self._state = TransportState.RUNNING
        hooks = WatchHooks(
            deliver=self._deliver,
            lose=self._lost,
            resend=self._resend_unsent,
            tidy=self._close_idle_retired,
        )
        self._watch = EndpointWatch(
            self.site, endpoint_id, self.link, self._status_client, self.health,
            self._tasks, hooks,
        )  # fmt: skip
        self._watch.start(details)

    def _wait_online(self, endpoint_id: str) -> dict[str, Any]:
        """The details of the endpoint's first online status report."""
        assert self._client is not None
        deadline = time.monotonic() + self.link.start_timeout_s
        while True:
            try:
                status = endpoint_status(self._client, endpoint_id)
            except ServiceError as exc:
                raise exc.about(f"site {self.site!r}") from exc
            if status.get("status") == "online":
                return dict(status.get("details") or {})
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
            sizes=self._request_sizes,
            submit_limit=lambda: self.link.submit_limit,
        )

    def stop(self) -> None:
        with self._submit_lock:  # nothing is sent once this is set
            if self._state is TransportState.STOPPED:
                return
            self._state = TransportState.STOPPED
        self._closing.set()
        if self._watch is not None:
            self._watch.stop()
        message = f"site {self.site!r} was stopped before the task finished"
        for sent in self._tasks.pop_all():
            self._complete_failed(sent, FailureKind.INFRASTRUCTURE, message)
        for executor in [*self._retired, self._executor]:
            if executor is not None:
                executor.close()
        self._retired.clear()

    # -- sending ---------------------------------------------------------------------

    def submit(self, result: Result, function: Callable[..., Any]) -> Future[Result]:
        future: Future[Result] = Future()
        refusal = self._refusal()
        if refusal is not None:
            result.fail(
                transport_failure(FailureKind.ENDPOINT_LOST, refusal, self.site)
            )
            future.set_result(result)
            return future
        function_id = self._register(function)
        route = self._routes.get(result.method)
        endpoint_config = {
            **self.link.user_endpoint_config,
            **(route.user_endpoint_config if route else {}),
        }
        spec = engine_specification(result.resources, self.config)
        sent = Sent(result, future, function_id, resources=spec or None,
                    endpoint_config=endpoint_config or None)  # fmt: skip
        result.sizes.request = self._checked_size(sent)
        self._send(sent)
        return future

    def _refusal(self) -> str | None:
        """Why a new task fails at once, if it does."""
        if self._state is not TransportState.RUNNING:
            return f"site {self.site!r} is {self._state.value}, not running"
        current = self.health.current
        if current.health is Health.LOST:
            return f"site {self.site!r} is lost ({current.reason})"
        return None

    def _checked_size(self, sent: Sent) -> int:
        """The exact bytes of the request that sends the task alone; raises in the
        caller's thread when the service would refuse it."""
        assert self._executor is not None
        size = self._executor.request_size(
            sent.function_id, (sent.result.inputs,), sent.resources,
            sent.endpoint_config,
        )  # fmt: skip
        limit = self.link.submit_limit
        if size > limit:
            raise PayloadTooLargeError(
                f"the inputs of {sent.result.method!r} make a submission request of "
                f"{format_size(size)} ({size:,} bytes), over Globus Compute's "
                f"{format_size(limit)} limit ({limit:,} bytes; site {self.site!r}, "
                f"globus.submit_limit): declare a data store under 'data.stores' "
                f"in the federation file so that large values go by reference "
                f"(README, 'Large data')"
            )
        return size

    def _send(self, sent: Sent) -> None:
        """Hand the task to the live executor, filed first so the hooks find it."""
        with self._submit_lock:
            if self._state is not TransportState.RUNNING:
                message = f"site {self.site!r} is {self._state.value}, not running"
                self._tasks.pop(sent.task_id)
                self._complete_failed(sent, FailureKind.ENDPOINT_LOST, message)
                return
            executor = self._live_executor()
            self._tasks.add(sent)
            try:
                compute = executor.send(
                    sent.function_id, (sent.result.inputs,), sent.resources,
                    sent.endpoint_config,
                )  # fmt: skip
            except RuntimeError:  # the SDK stopped it since `_live_executor` looked
                self._hand_back(sent)
                return
            sent.executor, sent.unsent = executor, False
            self._tasks.track(sent, compute)
        compute.add_done_callback(self._on_compute_done)

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
        """The executor to send with; one the SDK stopped is retired, not closed:
        its watcher still waits for the tasks the service accepted from it."""
        assert self._executor is not None
        if self._executor.stopped:
            log.warning("site %s: the SDK executor stopped after an error; "
                        "starting a new one", self.site)  # fmt: skip
            old, self._executor = self._executor, self._new_executor()
            self._retired.append(old)
            old.retire()  # its queued tasks come back as cancelled: resent
        return self._executor

    def _hand_back(self, sent: Sent) -> None:
        """A task an executor could not send: the watch sends it again."""
        sent.unsent = True
        if self._watch is not None:
            self._watch.wake()

    def _resend_unsent(self) -> None:
        for sent in self._tasks.select(lambda s: s.unsent):
            log.info("site %s: resending task %s, which a stopped SDK executor "
                     "never sent", self.site, sent.task_id)  # fmt: skip
            self._send(sent)

    # -- hooks, on the SDK's threads -------------------------------------------------

    def _request_sizes(self, tasks: list[ComputeFuture]) -> list[int]:
        with self._submit_lock:  # wait for `submit` to file them
            sents = [self._tasks.of(task) for task in tasks]
        return [sent.result.sizes.request if sent else 0 for sent in sents]

    def _stamp_sent(self, tasks: list[ComputeFuture]) -> None:
        with self._submit_lock:
            sents = [self._tasks.of(task) for task in tasks]
        now = time.time_ns()
        for sent in sents:
            if sent is not None:
                sent.result.stamp(Stamp.SENT, time_ns=now)

    def _record_accepted(self, tasks: list[ComputeFuture]) -> None:
        now = time.monotonic()
        for task in tasks:
            sent = self._tasks.of(task)
            if sent is None:
                continue
            sent.result.remote_id = str(task.task_id)
            group = sent.executor.task_group_id if sent.executor else None
            sent.result.remote_group = str(group) if group else None
            sent.accepted_at = sent.heard_at = now
            if self._on_accepted is not None:
                self._on_accepted(sent.result)

    def _note_arrival(
        self, task_id: str, arrived_ns: int, transitions: list[Any] | None
    ) -> None:
        with self._arrivals_lock:
            self._arrivals[task_id] = (arrived_ns, transitions)

    def _on_compute_done(self, task: Future[Any]) -> None:
        """The SDK completed its future: deliver, or find out from the service."""
        assert isinstance(task, ComputeFuture)
        sent = self._tasks.of(task)
        if sent is None or sent.compute is not task or self._closing.is_set():
            return  # completed already (lost, cancelled, looked up), or stopping
        if not task.task_id and task.cancelled():
            self._hand_back(sent)  # a stopped executor gave it back unsent
            return
        if task.task_id and (task.cancelled() or not is_engine_report(task)):
            log.warning("site %s: the result watcher gave up on task %s (%s); "
                        "asking the service for it", self.site, task.task_id,
                        sdk_error(task))  # fmt: skip
            sent.look_up_soon()
            return
        entry = self._tasks.pop(sent.task_id)
        with self._arrivals_lock:
            arrival = self._arrivals.pop(str(task.task_id), None)
        if entry is None:
            return
        arrived_ns, transitions = arrival or (time.time_ns(), None)
        read_future(task, sent.result, self.site, self._client,
                    self.link.submit_limit)  # fmt: skip
        gcformat.stamp_transitions(transitions, sent.result)
        self._received(sent, arrived_ns)

    # -- completing ------------------------------------------------------------------

    def _received(self, sent: Sent, arrived_ns: int | None = None) -> None:
        result = sent.result
        result.stamp(Stamp.RECEIVED, time_ns=arrived_ns)
        result.stamp(Stamp.DESERIALIZED)
        sent.future.set_result(result)

    def _complete_failed(
        self,
        sent: Sent,
        kind: FailureKind,
        message: str,
        exception_type: str = "EndpointError",
    ) -> None:
        """Fail a task already popped from the table; its late result is dropped."""
        if sent.compute is not None and not sent.compute.task_id:
            sent.compute.cancel()  # still queued in the SDK: never sent
        if sent.executor is not None and sent.remote_id:
            sent.executor.forget([sent.remote_id])
        sent.result.fail(transport_failure(kind, message, self.site, exception_type))
        sent.future.set_result(sent.result)

    # -- cancelling ------------------------------------------------------------------

    def cancel(self, task_id: str, failure: Failure) -> bool:
        """Complete the task now with `failure`.

        Globus Compute has no route to cancel a task (SDK 4.19): a task still
        queued in the SDK is never sent, but one the service accepted still runs
        on the endpoint, and its result is dropped when it comes.
        """
        sent = self._tasks.pop(task_id)
        if sent is None:
            return False
        if sent.remote_id:
            log.info("site %s: task %s (%s) cancelled here; its endpoint may still "
                     "run it", self.site, task_id, sent.remote_id)  # fmt: skip
        if sent.compute is not None and not sent.compute.task_id:
            sent.compute.cancel()
        if sent.executor is not None and sent.remote_id:
            sent.executor.forget([sent.remote_id])
        sent.result.fail(failure)
        sent.future.set_result(sent.result)
        return True

    # -- completing from the watch --------------------------------------------------

    def _deliver(self, sent: Sent, outcome: TaskOutcome) -> bool:
        """Complete the task from the service's record; False if it was already."""
        if self._tasks.pop(sent.task_id) is None:
            return False
        if sent.executor is not None and sent.remote_id:
            sent.executor.forget([sent.remote_id])
        read_record(outcome, sent.result, self.site)
        self._received(sent)
        return True

    def _lost(self, sent: Sent, reason: str) -> bool:
        """Fail the task as lost; False if it was completed already."""
        if self._tasks.pop(sent.task_id) is None:
            return False
        log.debug("site %s: task %s: %s", self.site, sent.task_id, reason)
        self._complete_failed(sent, FailureKind.ENDPOINT_LOST, reason)
        return True

    # -- after a client restart ------------------------------------------------------

    def reattach(self, results: list[Result]) -> dict[str, Future[Result]]:
        """Take back the tasks the service accepted before the client restarted.

        Each is looked up at the service at once (a task that finished meanwhile
        is delivered from its record, not run again) and its task group's result
        queue is watched again, so a result still to come arrives as any other.
        A task without a remote id never reached the service: sent again.
        """
        now = time.monotonic()
        futures: dict[str, Future[Result]] = {}
        by_group: dict[str | None, list[Sent]] = {}
        for result in results:
            if not result.remote_id:
                continue
            sent = Sent(result, Future(), function_id="", resources=None,
                        endpoint_config=None)  # fmt: skip
            sent.accepted_at = sent.heard_at = now
            sent.adopted = True
            self._tasks.add(sent)
            futures[result.task_id] = sent.future
            by_group.setdefault(result.remote_group, []).append(sent)
        for group, sents in by_group.items():
            if group is not None:
                self._watch_group(group, sents)
        if futures and self._watch is not None:
            self._watch.look_up_adopted()
        log.info("site %s: took back %d task(s) the service accepted before the "
                 "client restarted", self.site, len(futures))  # fmt: skip
        return futures

    def _watch_group(self, group: str, sents: list[Sent]) -> None:
        """Watch the result queue of an earlier client's task group for `sents`."""
        executor = self._new_executor()
        executor.task_group_id = group
        executor.retire()  # it only watches: nothing is ever sent with it
        self._retired.append(executor)
        with self._submit_lock:
            computes = executor.adopt([s.remote_id for s in sents if s.remote_id])
            for sent in sents:
                compute = computes[str(sent.remote_id)]
                sent.executor = executor
                self._tasks.track(sent, compute)
        for compute in computes.values():
            compute.add_done_callback(self._on_compute_done)

    def _close_idle_retired(self) -> None:
        for executor in [e for e in self._retired if not e.watching]:
            self._retired.remove(executor)
            executor.close()

    def status(self) -> TransportStatus:
        watch, current = self._watch, self.health.current
        view = watch.view if watch is not None else EndpointView()
        heard = (
            None if view.last_online is None else time.monotonic() - view.last_online
        )
        return TransportStatus(
            site=self.site,
            transport="globus",
            state=self._state,
            in_flight=len(self._tasks),
            remote_host=str(self.link.endpoint_id),
            last_heard_s=heard,
            detail=watch.detail if watch is not None else "",
            health=current.health,
            health_reason=current.reason,
            health_since=current.since,
            capacity=view.capacity,
        )
