"""A local stand-in for the Globus Compute web service, over a real RabbitMQ broker.

It serves the routes the SDK's `Client` and `Executor` call (version, function
registration, batch submit, result-queue credentials, endpoint status, task status)
and does the service's AMQP work: it publishes each submitted task to its
endpoint's task queue in the form the endpoint's interchange consumes, and forwards
each result the endpoint publishes to the task group's queue the SDK consumes.
Faults a real service shows (unknown endpoint, bad token, rate limit, oversize
submission, a refused or slow request, an endpoint reported offline, a status route
that errors, a result that never reaches the result queue) can be switched on per
test, and `reset_faults` switches them all off.

It follows the internals of globus-compute-sdk/endpoint 4.19 (see pyproject.toml).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import pika
from globus_compute_common import messagepack
from globus_compute_common.messagepack.message_types import EPStatusReport
from globus_compute_common.messagepack.message_types import Result
from globus_compute_common.messagepack.message_types import Task

log = logging.getLogger(__name__)

#: The service refuses submissions larger than this (10 MB).
SUBMIT_LIMIT_BYTES = 10 * 1000 * 1000
RESULT_QUEUE_PREFIX = "standin.results."
#: The service's error codes for the statuses tests make it answer with.
_CODES = {413: "PAYLOAD_TOO_LARGE", 429: "RATE_LIMIT_EXCEEDED",
          500: "INTERNAL_ERROR", 503: "SERVICE_UNAVAILABLE"}  # fmt: skip
TASKS_EXCHANGE = "standin.tasks"
RESULTS_EXCHANGE = "standin.results"
HEARTBEATS_EXCHANGE = "standin.heartbeats"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class EndpointRecord:
    endpoint_id: str
    name: str
    last_heartbeat: float | None = None
    heartbeat_period: float = 30.0
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Refusal:
    """Submission requests to answer with an error, whatever they hold."""

    status: int
    count: int
    delay_s: float


@dataclass
class TaskRecord:
    task_id: str
    function_id: str
    endpoint_id: str
    task_group_id: str
    status: str = "waiting-for-ep"
    result: Result | None = None
    #: When the result came (seconds since the epoch), as the service reports it.
    completion_t: float | None = None
    #: What the submit request asked for, for tests that check pass-through.
    resource_specification: dict[str, Any] | None = None
    user_endpoint_config: dict[str, Any] | None = None


class ComputeServiceStandIn:
    """HTTP routes on 127.0.0.1 (a free port) plus the AMQP relay; start, then stop."""

    def __init__(
        self,
        broker_url: str,
        token: str = "stand-in-token",
        submit_limit_bytes: int = SUBMIT_LIMIT_BYTES,
    ) -> None:
        self.broker_url = broker_url
        self.token = token
        self.functions: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, EndpointRecord] = {}
        self.tasks: dict[str, TaskRecord] = {}
        #: The body size of every submission request, in order (tests check counts).
        self.submit_sizes: list[int] = []
        self._default_limit = submit_limit_bytes
        self.submit_limit_bytes = submit_limit_bytes
        self.rate_limited_for_s: float | None = None
        self.status_error: int | None = None
        self.forward_results = True
        self._offline: set[str] = set()
        self._refusals: list[Refusal] = []
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self._publisher: pika.BlockingConnection | None = None
        self._relay: _Relay | None = None
        self._http: ThreadingHTTPServer | None = None

    # -- faults ----------------------------------------------------------------------

    def reset_faults(self) -> None:
        """Switch every fault off (the service is shared by a whole test session)."""
        #: Requests larger than this are refused with 413, as the service does.
        self.submit_limit_bytes = self._default_limit
        #: Set to a number of seconds to answer submissions with 429 (rate limit).
        self.rate_limited_for_s = None
        #: Set to an HTTP status to answer every endpoint status request with it.
        self.status_error = None
        #: False: results are recorded (task status shows them) but never reach
        #: the task group's result queue, as when the service loses a message.
        self.forward_results = True
        with self._lock:
            self._offline = set()
            self._refusals = []

    def refuse_submissions(
        self, status: int, count: int = 1, delay_s: float = 0.0
    ) -> None:
        """Answer the next `count` submission requests with `status` (413, 429,
        503, ...), each after `delay_s`, whatever they hold."""
        with self._lock:
            self._refusals.append(Refusal(status, count, delay_s))

    def set_offline(self, endpoint_id: str, offline: bool = True) -> None:
        """Report the endpoint offline whatever its heartbeats say, as the service
        does when they stop reaching it (a network split), or online again."""
        with self._lock:
            if offline:
                self._offline.add(endpoint_id)
            else:
                self._offline.discard(endpoint_id)

    def _refusal(self) -> Refusal | None:
        with self._lock:
            if not self._refusals:
                return None
            refusal = self._refusals[0]
            refusal.count -= 1
            if refusal.count <= 0:
                self._refusals.pop(0)
            return refusal

    # -- lifecycle -------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._http is not None, "start the stand-in first"
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ComputeServiceStandIn:
        # A blocking connection answers heartbeats only while it is used, and this
        # one idles between tests: with heartbeats on, the broker drops it after
        # two minutes unused and the next endpoint registration fails.
        parameters = pika.URLParameters(self.broker_url)
        parameters.heartbeat = 0
        connection = pika.BlockingConnection(parameters)
        channel = connection.channel()
        for exchange in (TASKS_EXCHANGE, RESULTS_EXCHANGE, HEARTBEATS_EXCHANGE):
            channel.exchange_declare(exchange, exchange_type="direct")
        self._publisher = connection
        self._relay = _Relay(self.broker_url, self._on_result, self._on_heartbeat)
        self._relay.start()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True
        threading.Thread(
            target=self._http.serve_forever, name="standin-http", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._relay is not None:
            self._relay.stop()
        if self._publisher is not None and self._publisher.is_open:
            self._publisher.close()

    # -- endpoints -------------------------------------------------------------------

    def register_endpoint(
        self, name: str, endpoint_id: str | None = None
    ) -> dict[str, Any]:
        """Create an endpoint's queues; returns the `amqp_creds` its process needs.

        With the `endpoint_id` of an endpoint registered before (a restart, as the
        real service's registration route takes the id from the endpoint's
        directory), the same queues are handed out again, tasks still in them
        included.
        """
        endpoint_id = endpoint_id or str(uuid.uuid4())
        again = endpoint_id in self.endpoints
        queues = {
            "task": (TASKS_EXCHANGE, f"{endpoint_id}.tasks"),
            "result": (RESULTS_EXCHANGE, f"{endpoint_id}.results"),
            "heartbeat": (HEARTBEATS_EXCHANGE, f"{endpoint_id}.heartbeats"),
        }
        with self._publish_lock:
            assert self._publisher is not None
            channel = self._publisher.channel()
            for exchange, queue in queues.values():
                channel.queue_declare(queue, durable=True)
                channel.queue_bind(queue, exchange, routing_key=queue)
            channel.close()
        with self._lock:
            if again:  # its status comes from the new process's heartbeats
                record = self.endpoints[endpoint_id]
                record.last_heartbeat, record.state = None, {}
            else:
                self.endpoints[endpoint_id] = EndpointRecord(endpoint_id, name)
        if not again:
            assert self._relay is not None
            self._relay.consume(queues["result"][1], queues["heartbeat"][1])

        def publishing(kind: str) -> dict[str, Any]:
            exchange, queue = queues[kind]
            return {
                "connection_url": self.broker_url,
                "exchange": exchange,
                "queue": queue,
                "queue_publish_kwargs": {
                    "exchange": exchange,
                    "routing_key": queue,
                    "mandatory": True,
                    "properties": {"delivery_mode": 2},
                },
            }

        return {
            "endpoint_id": endpoint_id,
            "task_queue_info": {
                "connection_url": self.broker_url,
                "queue": queues["task"][1],
            },
            "result_queue_info": publishing("result"),
            "heartbeat_queue_info": publishing("heartbeat"),
        }

    def endpoint_status(self, endpoint_id: str) -> dict[str, Any]:
        """Online while heartbeats are fresh and the endpoint consumes its queue.

        The consumer check notices a killed endpoint at once (the broker sees its
        connection drop), where heartbeats alone take several periods.
        """
        with self._lock:
            record = self.endpoints.get(endpoint_id)
            if record is None:
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"Endpoint {endpoint_id} "
                               "not found")  # fmt: skip
            fresh = record.last_heartbeat is not None and (
                time.time() - record.last_heartbeat < 3 * record.heartbeat_period
            )
            healthy = record.state.get("active", True) and "error" not in record.state
            healthy = healthy and endpoint_id not in self._offline
            details = dict(record.state)
        online = fresh and healthy and self._consumers(f"{endpoint_id}.tasks") > 0
        return {"status": "online" if online else "offline", "details": details}

    def _consumers(self, queue: str) -> int:
        with self._publish_lock:
            assert self._publisher is not None
            channel = self._publisher.channel()
            try:
                return int(
                    channel.queue_declare(queue, passive=True).method.consumer_count
                )
            finally:
                channel.close()

    # -- AMQP relay callbacks (relay thread) -----------------------------------------

    def _on_heartbeat(self, body: bytes) -> None:
        report = messagepack.unpack(body)
        if not isinstance(report, EPStatusReport):
            return
        with self._lock:
            record = self.endpoints.get(str(report.endpoint_id))
            if record is None:
                return
            record.last_heartbeat = time.time()
            record.state = dict(report.global_state)
            period = record.state.get("heartbeat_period")
            if isinstance(period, int | float) and period > 0:
                record.heartbeat_period = float(period)

    def _on_result(self, body: bytes) -> tuple[str, bytes] | None:
        """Record a result; returns (queue, body) to forward to the SDK's queue."""
        result = messagepack.unpack(body)
        if not isinstance(result, Result):
            return None
        with self._lock:
            task = self.tasks.get(str(result.task_id))
            if task is None:
                log.warning("result for unknown task %s dropped", result.task_id)
                return None
            task.status = "failed" if result.is_error else "success"
            task.result = result
            task.completion_t = time.time()
            forward = self.forward_results
        if not forward:
            return None
        return f"{RESULT_QUEUE_PREFIX}{task.task_group_id}", body

    # -- routes ----------------------------------------------------------------------

    def screen_submission(self, length: int) -> None:
        """Note a submission request's size; refuse it if a test asked to."""
        with self._lock:
            self.submit_sizes.append(length)
        refusal = self._refusal()
        if refusal is None:
            return
        time.sleep(refusal.delay_s)
        raise ApiError(refusal.status, _CODES.get(refusal.status, "REFUSED"),
                       f"Refused by the stand-in ({refusal.status})")  # fmt: skip

    def check_token(self, header: str | None) -> None:
        if header != f"Bearer {self.token}":
            raise ApiError(401, "AUTHENTICATION_ERROR",
                           "Token is invalid or expired")  # fmt: skip

    def route(self, method: str, path: str, body: dict[str, Any]) -> Any:
        for pattern, verb, handler in _ROUTES:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                return handler(self, body, *match.groups())
        raise ApiError(404, "NOT_FOUND", f"no route {method} {path}")

    def _version(self, _body: dict[str, Any]) -> dict[str, Any]:
        return {"api": "1.0.0", "min_sdk_version": "2.0.0",
                "min_ep_version": "2.0.0"}  # fmt: skip

    def _register_function(self, body: dict[str, Any]) -> dict[str, Any]:
        function_id = str(uuid.uuid4())
        with self._lock:
            self.functions[function_id] = body
        return {"function_uuid": function_id}

    def _result_queue(self, _body: dict[str, Any]) -> dict[str, Any]:
        return {"queue_prefix": RESULT_QUEUE_PREFIX,
                "connection_url": self.broker_url}  # fmt: skip

    def _status(self, _body: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
        if self.status_error is not None:
            raise ApiError(self.status_error, "SERVICE_UNAVAILABLE",
                           "Endpoint status is unavailable")  # fmt: skip
        return self.endpoint_status(endpoint_id)

    def _endpoint(self, _body: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
        with self._lock:
            record = self.endpoints.get(endpoint_id)
        if record is None:
            raise ApiError(404, "ENDPOINT_NOT_FOUND",
                           f"Endpoint {endpoint_id} not found")  # fmt: skip
        return {"uuid": endpoint_id, "name": record.name}

    def _task(self, _body: dict[str, Any], task_id: str) -> dict[str, Any]:
        with self._lock:
            task = self.tasks.get(task_id)
        if task is None:
            raise ApiError(404, "TASK_NOT_FOUND", f"Task {task_id} not found")
        return _task_view(task)

    def _batch_status(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            tasks = [self.tasks.get(t) for t in body.get("task_ids", [])]
        return {"response": "batch",
                "results": {t.task_id: _task_view(t) for t in tasks if t}}  # fmt: skip

    def _submit(self, body: dict[str, Any], endpoint_id: str) -> dict[str, Any]:
        if self.rate_limited_for_s is not None:
            raise ApiError(429, "RATE_LIMIT_EXCEEDED",
                           "Too many requests; slow down")  # fmt: skip
        with self._lock:
            if endpoint_id not in self.endpoints:
                raise ApiError(404, "ENDPOINT_NOT_FOUND",
                               f"Endpoint {endpoint_id} not found")  # fmt: skip
            unknown = [f for f in body["tasks"] if f not in self.functions]
            if unknown:
                raise ApiError(404, "FUNCTION_NOT_FOUND",
                               f"Function {unknown[0]} not found")  # fmt: skip
            code = {f: self.functions[f]["function_code"] for f in body["tasks"]}
        group = body.get("task_group_id") or str(uuid.uuid4())
        spec = body.get("resource_specification")
        headers_common = {
            "resource_specification": json.dumps(spec) if spec else None,
            "result_serializers": body.get("result_serializers") or [],
        }
        records: list[TaskRecord] = []
        messages: list[tuple[dict[str, Any], bytes]] = []
        for function_id, payloads in body["tasks"].items():
            for payload in payloads:
                task_id = str(uuid.uuid4())
                records.append(
                    TaskRecord(task_id, function_id, endpoint_id, group,
                               resource_specification=spec,
                               user_endpoint_config=body.get("user_endpoint_config"))
                )  # fmt: skip
                task = Task(task_id=uuid.UUID(task_id),
                            task_buffer=code[function_id] + payload)  # fmt: skip
                headers = {**headers_common, "function_uuid": function_id,
                           "task_uuid": task_id}  # fmt: skip
                messages.append((headers, messagepack.pack(task)))
        with self._lock:
            self.tasks.update({record.task_id: record for record in records})
        with self._publish_lock:
            assert self._publisher is not None
            channel = self._publisher.channel()
            channel.queue_declare(f"{RESULT_QUEUE_PREFIX}{group}", durable=True)
            for headers, packed in messages:
                channel.basic_publish(
                    TASKS_EXCHANGE,
                    f"{endpoint_id}.tasks",
                    packed,
                    pika.BasicProperties(headers=headers, delivery_mode=2),
                )
            channel.close()
        tasks_by_function: dict[str, list[str]] = {}
        for record in records:
            tasks_by_function.setdefault(record.function_id, []).append(record.task_id)
        return {
            "request_id": str(uuid.uuid4()),
            "task_group_id": group,
            "endpoint_id": endpoint_id,
            "tasks": tasks_by_function,
        }


def _task_view(task: TaskRecord) -> dict[str, Any]:
    view: dict[str, Any] = {"task_id": task.task_id, "status": task.status}
    if task.result is not None:
        key = "exception" if task.result.is_error else "result"
        view[key] = task.result.data
        view["completion_t"] = str(task.completion_t)
    return view


_Handler = Callable[..., Any]
_SUBMIT_ROUTE = r"/v3/endpoints/([0-9a-f-]+)/submit"
_ROUTES: list[tuple[str, str, _Handler]] = [
    (r"/v2/version", "GET", ComputeServiceStandIn._version),
    (r"/v3/functions", "POST", ComputeServiceStandIn._register_function),
    (r"/v2/get_amqp_result_connection_url", "GET", ComputeServiceStandIn._result_queue),
    (r"/v2/endpoints/([0-9a-f-]+)/status", "GET", ComputeServiceStandIn._status),
    (r"/v2/endpoints/([0-9a-f-]+)", "GET", ComputeServiceStandIn._endpoint),
    (r"/v2/tasks/([0-9a-f-]+)", "GET", ComputeServiceStandIn._task),
    (r"/v2/batch_status", "POST", ComputeServiceStandIn._batch_status),
    (_SUBMIT_ROUTE, "POST", ComputeServiceStandIn._submit),
]


def _handler_for(service: ComputeServiceStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("stand-in: " + format, *args)

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                service.check_token(self.headers.get("Authorization"))
                path = self.path.split("?", 1)[0]
                if method == "POST" and re.fullmatch(_SUBMIT_ROUTE, path):
                    service.screen_submission(length)
                limit = service.submit_limit_bytes
                if length > limit:
                    raise ApiError(413, "PAYLOAD_TOO_LARGE",
                                   f"Request payload of {length} bytes exceeds the "
                                   f"{limit} byte limit")  # fmt: skip
                body = json.loads(raw) if raw else {}
                status, reply = 200, service.route(method, path, body)
            except ApiError as exc:
                status = exc.status
                reply = {"code": exc.code, "message": exc.message,
                         "http_status_code": exc.status}  # fmt: skip
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


class _Relay(threading.Thread):
    """Consumes endpoints' result and heartbeat queues on one AMQP connection."""

    def __init__(
        self,
        broker_url: str,
        on_result: Callable[[bytes], tuple[str, bytes] | None],
        on_heartbeat: Callable[[bytes], None],
    ) -> None:
        super().__init__(name="standin-relay", daemon=True)
        self._connection = pika.BlockingConnection(pika.URLParameters(broker_url))
        self._channel = self._connection.channel()
        self._on_result = on_result
        self._on_heartbeat = on_heartbeat
        self._stopping = threading.Event()

    def consume(self, result_queue: str, heartbeat_queue: str) -> None:
        """Start consuming an endpoint's queues (safe from any thread)."""
        done = threading.Event()

        def subscribe() -> None:
            self._channel.basic_consume(result_queue, self._result)
            self._channel.basic_consume(heartbeat_queue, self._heartbeat)
            done.set()

        self._connection.add_callback_threadsafe(subscribe)
        if not done.wait(10):
            raise RuntimeError("stand-in relay did not subscribe in time")

    def _result(self, channel: Any, deliver: Any, _props: Any, body: bytes) -> None:
        try:
            forward = self._on_result(body)
            if forward is not None:
                queue, payload = forward
                channel.basic_publish(
                    "", queue, payload, pika.BasicProperties(delivery_mode=2,
                                                             timestamp=int(time.time()))
                )  # fmt: skip
        except Exception:
            log.exception("stand-in could not relay a result")
        channel.basic_ack(deliver.delivery_tag)

    def _heartbeat(self, channel: Any, deliver: Any, _props: Any, body: bytes) -> None:
        try:
            self._on_heartbeat(body)
        except Exception:
            log.exception("stand-in could not read a heartbeat")
        channel.basic_ack(deliver.delivery_tag)

    def run(self) -> None:
        while not self._stopping.is_set():
            self._connection.process_data_events(time_limit=0.2)
        self._connection.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)
