"""The embedded endpoint: one process per local site, owning a real engine.

It does what a Globus Compute endpoint does with a task (hand the packed `Task` to
`engine.submit` and send back the packed `Result`), but receives tasks over an
authenticated ZeroMQ link instead of RabbitMQ, and stamps when each task entered and
left the endpoint. It never stops serving over a message it cannot use (a peer with
the key may still send garbage): such a message is logged and dropped.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth.thread
from globus_compute_common import messagepack
from globus_compute_common.messagepack.message_types import Result as GCResult
from globus_compute_common.messagepack.message_types import ResultErrorDetails
from globus_compute_endpoint.engines import ProcessPoolEngine
from globus_compute_endpoint.engines import ThreadPoolEngine
from globus_compute_endpoint.engines.base import GCFuture

from colmena_fx.config import SiteConfig
from colmena_fx.endpoint import wire
from colmena_fx.exceptions import ConfigError
from colmena_fx.models import HOST

log = logging.getLogger(__name__)

_WAKE_ADDRESS = "inproc://finished"

#: Engines whose task futures are `concurrent.futures`' own: a task still queued
#: there cancels cleanly. Parsl's (GlobusComputeEngine) cannot be cancelled: its
#: result thread would fail setting the result of a cancelled future.
_CANCELLABLE = (ProcessPoolEngine, ThreadPoolEngine)


class _Cancelled(Exception):
    """Refuses the engine's retry of a task the client cancelled."""


@dataclass
class _Task:
    """A task the engine holds, from its TASK message until its result is sent."""

    received_ns: int
    cancelled: bool = False
    #: The engine's future of the task's latest attempt, once it was submitted.
    work: Future[Any] | None = None


class _OnlyClientKey:
    """ZAP credentials check: the one client key of this run, nobody else."""

    def __init__(self, client_public_key: str) -> None:
        self._allowed = client_public_key.encode()

    def callback(self, domain: str, key: bytes) -> bool:
        if key == self._allowed:
            return True
        log.warning("rejected a peer with an unknown CURVE key %s", key.decode())
        return False


class EmbeddedEndpoint:
    """Serves one site's engine on a ZeroMQ ROUTER socket until stopped."""

    def __init__(
        self,
        site: SiteConfig,
        run_dir: Path,
        connection_file: Path,
        parent_pid: int | None = None,
    ) -> None:
        self.site = site
        self.run_dir = Path(run_dir).resolve()
        self.connection_file = Path(connection_file)
        self.parent_pid = parent_pid
        self.endpoint_id = uuid.uuid4()
        self._stop = threading.Event()
        self._tasks: dict[str, _Task] = {}
        self._tasks_lock = threading.Lock()
        self._client: bytes | None = None
        self._undelivered: list[list[bytes]] = []
        self._engine: Any = None
        self._private_dir: str | None = None

    def start(self) -> None:
        """Start the engine, bind the socket, then publish the connection file."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._engine = self.site.build_engine()
        self._engine.start(endpoint_id=self.endpoint_id, run_dir=str(self.run_dir))
        _track_attempts(self._engine, self._attempt)

        self._ctx = zmq.Context()
        self._auth = zmq.auth.thread.ThreadAuthenticator(self._ctx, log=log)
        self._auth.start()
        server_public, server_secret = wire.new_keypair()
        client_public, client_secret = wire.new_keypair()
        self._auth.configure_curve_callback("*", _OnlyClientKey(client_public))

        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.curve_server = True
        self._router.curve_publickey = server_public.encode()
        self._router.curve_secretkey = server_secret.encode()
        self._router.linger = 0
        address = self._bind()

        # Engine threads queue finished tasks here and wake the serving thread
        # once per batch through an inproc socket.
        self._finished: collections.deque[tuple[str, int, bytes]] = collections.deque()
        self._wake_in = self._ctx.socket(zmq.PULL)
        self._wake_in.bind(_WAKE_ADDRESS)
        self._wake_out = self._ctx.socket(zmq.PUSH)
        self._wake_out.connect(_WAKE_ADDRESS)
        self._wake_lock = threading.Lock()
        self._wake_sent = False

        wire.ConnectionInfo(
            site=self.site.name,
            address=address,
            pid=os.getpid(),
            server_public_key=server_public,
            client_public_key=client_public,
            client_secret_key=client_secret,
        ).write(self.connection_file)
        log.info("endpoint for site %s listening on %s", self.site.name, address)

    def _bind(self) -> str:
        link = self.site.local
        if link.link == "tcp":
            host = link.tcp_host
            bracketed = f"[{host}]" if ":" in host else host
            if ":" in host:
                self._router.ipv6 = True
            if link.tcp_port is not None:
                address = f"tcp://{bracketed}:{link.tcp_port}"
                try:
                    self._router.bind(address)
                except zmq.ZMQError as exc:
                    raise ConfigError(
                        f"{self.site.source or self.site.name}: key 'local.tcp_port': "
                        f"cannot listen on {address}: {exc}"
                    ) from None
                return address
            port = self._router.bind_to_random_port(f"tcp://{bracketed}")
            return f"tcp://{bracketed}:{port}"
        # A private directory: only this user can reach the socket file.
        self._private_dir = tempfile.mkdtemp(prefix="cfx-")
        address = f"ipc://{self._private_dir}/endpoint.sock"
        self._router.bind(address)
        return address

    def request_stop(self) -> None:
        self._stop.set()

    def serve(self) -> None:
        """Move tasks in and results out until `request_stop` or the parent dies."""
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._wake_in, zmq.POLLIN)
        period = self.site.local.heartbeat_s
        next_beat = time.monotonic()
        while not self._stop.is_set():
            wait_ms = max(0, int((next_beat - time.monotonic()) * 1000))
            ready = dict(poller.poll(min(wait_ms, 200)))
            if self._router in ready:
                self._drain_requests()
            if self._wake_in in ready:
                _logged(self._send_finished, "sending results")
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + period
                _logged(self._heartbeat, "sending a heartbeat")
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    log.warning("parent process %s is gone; stopping", self.parent_pid)
                    break

    def _drain_requests(self) -> None:
        while wire.readable(self._router):
            frames = self._router.recv_multipart(copy=True)
            received_ns = time.time_ns()
            try:
                self._handle(frames, received_ns)
            except wire.WireError as exc:
                log.warning("dropped a malformed message: %s", exc)
            except Exception:  # one bad message must not stop every other task
                log.exception("dropped a message that could not be handled")

    def _handle(self, frames: list[bytes], received_ns: int) -> None:
        identity, *message = frames
        kind, header, payloads = wire.decode(message)
        if kind is wire.Kind.HELLO:
            self._client = identity
            log.info("client on %s connected", header.client_host)
            self._heartbeat()
            for held in self._undelivered:
                self._to_client(held)
            self._undelivered.clear()
        elif kind is wire.Kind.TASK:
            self._submit(header, payloads[0], received_ns)
        elif kind is wire.Kind.CANCEL:
            self._cancel(header.task_id)
        else:
            log.warning("dropped an unexpected %s message", kind)

    def _submit(
        self, header: wire.TaskHeader, packed_task: bytes, received_ns: int
    ) -> None:
        task_id = header.task_id
        task = _Task(received_ns)
        future = GCFuture(task_id)
        with self._tasks_lock:  # a task sent again (a retry) replaces its entry
            self._tasks[task_id] = task
        future.add_done_callback(lambda done: self._finished_task(task_id, task, done))
        try:
            self._engine.submit(future, packed_task, header.resource_specification)
        except Exception as exc:
            log.exception("engine refused task %s", task_id)
            if not future.done():
                future.set_result(
                    _error_result(task_id, f"engine refused the task: {exc}")
                )

    def _attempt(self, task_id: str) -> _Task | None:
        """The task the engine is submitting (again); refuses a cancelled one."""
        with self._tasks_lock:
            task = self._tasks.get(task_id)
        if task is not None and task.cancelled:
            raise _Cancelled(f"task {task_id} was cancelled by the client")
        return task

    def _finished_task(self, task_id: str, task: _Task, done: GCFuture) -> None:
        """Called from engine threads: send the result, unless it was cancelled."""
        with self._tasks_lock:
            if self._tasks.get(task_id) is task:
                del self._tasks[task_id]
            cancelled = task.cancelled
        if cancelled:
            log.info("task %s was cancelled by the client: result dropped", task_id)
            return
        try:
            packed = done.result()
        except BaseException as exc:  # the engine failed the future itself
            packed = _error_result(task_id, f"engine error: {exc!r}")
        self._send_result(task_id, task.received_ns, packed)

    def _cancel(self, task_id: str) -> None:
        """Drop a task the client no longer waits for: unstarted, it never runs."""
        with self._tasks_lock:
            task = self._tasks.get(task_id)
            if task is not None:
                task.cancelled = True
        if task is None:
            log.debug("cancel of task %s, which is no longer here", task_id)
            return
        work = task.work
        engine = type(self._engine).__name__
        if (
            work is not None
            and isinstance(self._engine, _CANCELLABLE)
            and work.cancel()
        ):
            log.info("task %s cancelled before it started", task_id)
        elif isinstance(self._engine, _CANCELLABLE):
            log.info(
                "task %s cancelled after a worker took it: it runs on, unreported",
                task_id,
            )
        else:
            log.info(
                "task %s cancelled: a %s cannot stop it, so it runs on, unreported",
                task_id,
                engine,
            )

    def _send_result(self, task_id: str, received_ns: int, packed: bytes) -> None:
        """Called from engine threads: queue the result, wake the serving thread."""
        self._finished.append((task_id, received_ns, packed))
        with self._wake_lock:
            if not self._wake_sent:
                self._wake_sent = True
                self._wake_out.send(b"")

    def _send_finished(self) -> None:
        """Send every finished task to the client in one message."""
        while wire.readable(self._wake_in):
            self._wake_in.recv()
        with self._wake_lock:
            self._wake_sent = False  # before draining: a later result wakes us again
        entries, payloads = [], []
        while self._finished:
            task_id, received_ns, packed = self._finished.popleft()
            entries.append(wire.ResultEntry(task_id=task_id, received_ns=received_ns))
            payloads.append(packed)
        if not entries:
            return
        header = wire.ResultHeader(results=entries, sent_ns=time.time_ns(), host=HOST)
        self._to_client(wire.encode(wire.Kind.RESULT, header, *payloads))

    def _heartbeat(self) -> None:
        header = wire.HeartbeatHeader(
            host=HOST,
            pid=os.getpid(),
            time_ns=time.time_ns(),
            in_flight=len(self._tasks) + len(self._finished),
            engine=type(self._engine).__name__,
            workers=engine_workers(self._engine),
        )
        self._to_client(wire.encode(wire.Kind.HEARTBEAT, header))

    def _to_client(self, frames: list[bytes]) -> None:
        if self._client is None:
            if frames[0] != wire.Kind.HEARTBEAT.value.encode():
                self._undelivered.append(frames)  # sent once the client says hello
            return
        self._router.send_multipart([self._client, *frames])

    def shutdown(self) -> None:
        """Stop the engine first (it owns worker processes), then the sockets."""
        log.info("endpoint for site %s stopping", self.site.name)
        try:
            if self._engine is not None:
                self._engine.shutdown()
        except Exception:
            log.exception("engine shutdown failed")
        if hasattr(self, "_auth"):
            self._auth.stop()
        if hasattr(self, "_ctx"):
            self._ctx.destroy(linger=0)
        if self._private_dir:
            shutil.rmtree(self._private_dir, ignore_errors=True)
        self.connection_file.unlink(missing_ok=True)


def _error_result(task_id: str, message: str) -> bytes:
    return messagepack.pack(
        GCResult(
            task_id=uuid.UUID(task_id),
            data=message,
            error_details=ResultErrorDetails(
                code="EndpointError", user_message=message
            ),
        )
    )


def _logged(step: Callable[[], None], what: str) -> None:
    """Run one step of the serving loop; an error is logged, and serving goes on."""
    try:
        step()
    except Exception:
        log.exception("failed %s; serving on", what)


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


def _track_attempts(engine: Any, attempt: Callable[[str], _Task | None]) -> None:
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
