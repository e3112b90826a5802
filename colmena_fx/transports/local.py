"""The `local` transport: the client side of the link to an embedded endpoint.

Two CurveZMQ DEALER sockets: callers send tasks on `tx` under a lock, straight from
their own thread (no hand-off), and one receiver thread owns `rx`, on which the
endpoint sends results and heartbeats. The receiver also watches the endpoint: when
its process exits or its heartbeats stop, every task in flight is failed with the
site's name, and later submissions fail at once instead of waiting forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import zmq

from colmena_fx.config import SiteConfig
from colmena_fx.endpoint import wire
from colmena_fx.endpoint.process import EndpointProcess
from colmena_fx.exceptions import EndpointError
from colmena_fx.models import HOST
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.transports import gcformat
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.base import TransportStatus
from colmena_fx.transports.pending import PendingTasks
from colmena_fx.transports.pending import complete_failed
from colmena_fx.transports.pending import transport_failure

log = logging.getLogger(__name__)


class LocalTransport:
    """Starts a site's endpoint process and exchanges tasks with it."""

    def __init__(self, site: SiteConfig, run_dir: Path) -> None:
        self.site = site.name
        self.config = site
        self.process = EndpointProcess(site, Path(run_dir))
        self._functions = gcformat.FunctionCache()
        self._pending = PendingTasks()
        self._tx_lock = threading.Lock()
        self._state = TransportState.NEW
        self._lost_reason = ""
        self._last_heard: float | None = None
        self._remote_host: str | None = None
        self._heard = threading.Event()
        self._closing = threading.Event()
        self._receiver: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        info = self.process.start()
        self._ctx = zmq.Context()
        self._tx = self._connect(info)
        self._rx = self._connect(info)
        self._rx.send_multipart(
            wire.encode(wire.Kind.HELLO, wire.HelloHeader(client_host=HOST))
        )
        self._receiver = threading.Thread(
            target=self._receive, name=f"cfx-rx-{self.site}", daemon=True
        )
        self._state = TransportState.RUNNING
        self._receiver.start()
        if not self._heard.wait(self.config.local.start_timeout_s):
            self.stop()
            via = self.config.local.connect_via
            route = (
                f"{info.address} (through {via}, local.connect_via)"
                if via
                else info.address
            )
            raise EndpointError(
                f"site {self.site!r}: the endpoint started but never answered over "
                f"{route}; see {self.process.log_path}"
            )

    def _connect(self, info: wire.ConnectionInfo) -> zmq.Socket[Any]:
        sock = self._ctx.socket(zmq.DEALER)
        sock.curve_serverkey = info.server_public_key.encode()
        sock.curve_publickey = info.client_public_key.encode()
        sock.curve_secretkey = info.client_secret_key.encode()
        sock.linger = 0
        # Through a tunnel or proxy, the client dials its near end; the CURVE keys
        # are the endpoint's all the same, as the middle only forwards bytes.
        via = self.config.local.connect_via
        address = f"tcp://{via}" if via else info.address
        if address.startswith("tcp://["):
            sock.ipv6 = True
        sock.connect(address)
        return sock

    def stop(self) -> None:
        if self._state in (TransportState.STOPPED, TransportState.NEW):
            self._state = TransportState.STOPPED
            self.process.stop()
            return
        self._closing.set()
        if self._receiver is not None:
            self._receiver.join(timeout=5)
        self._pending.fail_all(
            FailureKind.INFRASTRUCTURE,
            f"site {self.site!r} was stopped before the task finished",
            self.site,
        )
        self._state = TransportState.STOPPED
        self.process.stop()
        self._ctx.destroy(linger=0)

    # -- sending ---------------------------------------------------------------------

    def submit(self, result: Result, function: Callable[..., Any]) -> Future[Result]:
        future: Future[Result] = Future()
        packed = gcformat.pack_task(
            result.task_id, self._functions.buffer(function), result.inputs
        )
        result.sizes.request = len(packed)
        header = wire.TaskHeader(
            task_id=result.task_id,
            resource_specification=result.resources.to_resource_specification(),
        )
        frames = wire.encode(wire.Kind.TASK, header, packed)
        with self._pending.lock:
            running = self._state is TransportState.RUNNING
            if running:
                self._pending.add(result.task_id, result, future)
        if not running:
            complete_failed(
                result, future, FailureKind.ENDPOINT_LOST, self._why_down(), self.site
            )
            return future
        with self._tx_lock:
            result.stamp(Stamp.SENT)
            self._tx.send_multipart(frames, copy=False)
        return future

    def _why_down(self) -> str:
        if self._state is TransportState.LOST:
            return self._lost_reason
        return f"site {self.site!r} is {self._state.value}, not running"

    # -- receiving -------------------------------------------------------------------

    def _receive(self) -> None:
        poller = zmq.Poller()
        poller.register(self._rx, zmq.POLLIN)
        timeout = self.config.local.heartbeat_timeout_s
        period = self.config.local.heartbeat_s
        next_check = time.monotonic()
        while not self._closing.is_set():
            if poller.poll(200):
                while wire.readable(self._rx):
                    frames = self._rx.recv_multipart()
                    try:
                        self._handle(frames)
                    except Exception:  # keep receiving: other tasks depend on it
                        log.exception("site %s: cannot handle a message", self.site)
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + period
                reason = self._check_alive(timeout)
                if reason:
                    self._lose(reason)
                    return

    def _handle(self, frames: list[bytes]) -> None:
        received_ns = time.time_ns()
        self._last_heard = time.monotonic()
        try:
            kind, header, payloads = wire.decode(frames)
        except wire.WireError as exc:
            log.warning("site %s sent a malformed message: %s", self.site, exc)
            return
        if kind is wire.Kind.HEARTBEAT:
            self._remote_host = header.host
            self._heard.set()
        elif kind is wire.Kind.RESULT:
            for entry, payload in zip(header.results, payloads, strict=True):
                self._complete(entry, payload, header, received_ns)

    def _complete(
        self,
        entry: wire.ResultEntry,
        payload: bytes,
        header: wire.ResultHeader,
        received_ns: int,
    ) -> None:
        pending = self._pending.pop(entry.task_id)
        if pending is None:
            log.warning("site %s returned unknown task %s", self.site, entry.task_id)
            return
        result, future = pending
        result.stamp(
            Stamp.ENDPOINT_RECEIVED, host=header.host, time_ns=entry.received_ns
        )
        try:
            gcformat.unpack_result(payload, result)  # adds the worker's stamps
        except Exception as exc:
            message = f"cannot read the result: {exc}"
            result.fail(transport_failure(FailureKind.INFRASTRUCTURE, message, ""))
        result.stamp(Stamp.ENDPOINT_SENT, host=header.host, time_ns=header.sent_ns)
        result.stamp(Stamp.RECEIVED, time_ns=received_ns)
        result.stamp(Stamp.DESERIALIZED)
        future.set_result(result)

    def _check_alive(self, timeout: float) -> str:
        code = self.process.exit_code()
        if code is not None:
            return (
                f"the endpoint of site {self.site!r} exited (status {code}); "
                f"see {self.process.log_path}"
            )
        if (
            self._last_heard is not None
            and time.monotonic() - self._last_heard > timeout
        ):
            return f"site {self.site!r} has not been heard from for {timeout:.0f} s"
        return ""

    def _lose(self, reason: str) -> None:
        log.error("%s; failing its tasks in flight", reason)
        with self._pending.lock:
            self._state = TransportState.LOST
            self._lost_reason = reason
        self._pending.fail_all(FailureKind.ENDPOINT_LOST, reason, self.site)

    def status(self) -> TransportStatus:
        in_flight = len(self._pending)
        heard = (
            None if self._last_heard is None else time.monotonic() - self._last_heard
        )
        return TransportStatus(
            site=self.site,
            transport="local",
            state=self._state,
            in_flight=in_flight,
            remote_host=self._remote_host,
            last_heard_s=heard,
            detail=self._lost_reason,
        )
