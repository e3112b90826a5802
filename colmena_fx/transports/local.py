"""The `local` transport: the client side of the link to an embedded endpoint.

Two CurveZMQ DEALER sockets: callers send tasks on `tx` under a lock, straight from
their own thread (no hand-off), and one receiver thread owns `rx`, on which the
endpoint sends results and heartbeats. The receiver also watches the endpoint and
keeps the site's health:

- heartbeats late by more than `LATE_PERIODS` periods: `degraded`; heard: `up`;
- silent for `heartbeat_timeout_s` (a hung or stopped endpoint): `lost`, and every
  task in flight fails as `endpoint_lost`; the receiver keeps listening, and the
  site rejoins (`up`) as soon as it is heard again;
- its process exited: `lost`, tasks failed, what it left (engine processes, socket
  directory) reaped at once, then restarted with backoff (`local.restart`) on the
  `cfx-restart-<site>` thread: `recovering`, then `up`, or `lost` for good.

The transport never retries a task itself: the federation resubmits lost ones.
Results that arrive for a task already failed here are dropped (and logged).
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
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.timers import backoff_s
from colmena_fx.transports import gcformat
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.base import TransportStatus
from colmena_fx.transports.health import Health
from colmena_fx.transports.health import HealthTracker
from colmena_fx.transports.pending import PendingTasks
from colmena_fx.transports.pending import complete_failed
from colmena_fx.transports.pending import transport_failure

log = logging.getLogger(__name__)

#: Heartbeats missed in a row before a site is `degraded` (it is `lost` only after
#: `heartbeat_timeout_s`).
LATE_PERIODS = 3


def heartbeat_health(silence_s: float, period_s: float, timeout_s: float) -> Health:
    """The health that `silence_s` seconds without a word from the endpoint means."""
    if silence_s > timeout_s:
        return Health.LOST
    if silence_s > LATE_PERIODS * period_s:
        return Health.DEGRADED
    return Health.UP


def backoff_delays(attempts: int, initial_s: float, max_s: float) -> list[float]:
    """The wait before each restart: doubling from `initial_s`, capped at `max_s`."""
    return [backoff_s(n, initial_s, max_s) for n in range(1, attempts + 1)]


class _Stopping(Exception):
    """The transport is stopping: a restart in progress gives up quietly."""


class LocalTransport:
    """Starts a site's endpoint process, exchanges tasks with it, restarts it."""

    def __init__(self, site: SiteConfig, run_dir: Path) -> None:
        self.site = site.name
        self.config = site
        self.health = HealthTracker(self.site)
        self.process = EndpointProcess(site, Path(run_dir))
        self._functions = gcformat.FunctionCache()
        self._pending = PendingTasks()
        self._tx_lock = threading.Lock()
        self._tx: zmq.Socket[Any] | None = None
        self._ctx: zmq.Context[zmq.Socket[Any]] | None = None
        self._state = TransportState.NEW
        self._lost_reason = ""
        self._last_heard: float | None = None
        self._remote_host: str | None = None
        self._workers: int | None = None
        #: Lost through silence, not an exit: hearing the endpoint again rejoins.
        self._silent = False
        self._heard = threading.Event()
        self._closing = threading.Event()
        #: Guards starting threads against `stop`, so it can join every one.
        self._threads_lock = threading.Lock()
        self._receiver: threading.Thread | None = None
        #: Which link the receiver serves: a new link ends the previous receiver.
        self._link = 0
        self._restarter: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._ctx = zmq.Context()
        try:
            self._bring_up(self.process.start(cancel=self._closing))
        except _Stopping:
            self.stop()
            raise EndpointError(
                f"site {self.site!r} was stopped while starting"
            ) from None
        except BaseException:
            self.stop()
            raise

    def _bring_up(self, info: wire.ConnectionInfo) -> None:
        """Connect to a freshly started endpoint and return once it was heard from;
        raises `EndpointError` if it exits or stays silent, `_Stopping` on stop."""
        self._heard.clear()
        self._last_heard = None
        self._silent = False
        rx = self._connect(info)
        rx.send_multipart(
            wire.encode(wire.Kind.HELLO, wire.HelloHeader(client_host=HOST))
        )
        tx = self._connect(info)
        with self._tx_lock:
            old, self._tx = self._tx, tx
        if old is not None:
            old.close(linger=0)
        with self._threads_lock:
            if self._closing.is_set():
                rx.close(linger=0)
                raise _Stopping
            self._link += 1
            self._receiver = threading.Thread(
                target=self._receive,
                args=(rx, self._link),
                name=f"cfx-rx-{self.site}",
                daemon=True,
            )
            self._receiver.start()
        self._wait_heard(info)
        with self._pending.lock:
            self._state = TransportState.RUNNING
            self._lost_reason = ""
        self.health.set(Health.UP, f"endpoint pid {info.pid} answers on {info.address}")

    def _wait_heard(self, info: wire.ConnectionInfo) -> None:
        deadline = time.monotonic() + self.config.local.start_timeout_s
        while not self._heard.wait(0.05):
            if self._closing.is_set():
                raise _Stopping
            code = self.process.exit_code()
            if code is not None:
                raise EndpointError(
                    f"the endpoint of site {self.site!r} exited (status {code}) "
                    f"before it answered; see {self.process.log_path}"
                )
            if time.monotonic() > deadline:
                via = self.config.local.connect_via
                route = (
                    f"{info.address} (through {via}, local.connect_via)"
                    if via
                    else info.address
                )
                raise EndpointError(
                    f"site {self.site!r}: the endpoint started but never answered "
                    f"over {route}; see {self.process.log_path}"
                )

    def _connect(self, info: wire.ConnectionInfo) -> zmq.Socket[Any]:
        assert self._ctx is not None
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
        """Stop restarting and receiving, fail what is in flight, stop the endpoint.

        Returns promptly even during a restart's backoff or start: both watch
        `_closing`, and an endpoint caught starting is killed with its session.
        """
        with self._threads_lock:  # from here on, no thread is started
            if self._closing.is_set() or self._state is TransportState.STOPPED:
                return  # stopped, or stopping in another thread
            self._closing.set()
        _join(self._restarter)
        _join(self._receiver)  # read after the restarter ended: it may start one
        self._pending.fail_all(
            FailureKind.INFRASTRUCTURE,
            f"site {self.site!r} was stopped before the task finished",
            self.site,
        )
        with self._pending.lock:
            self._state = TransportState.STOPPED
        self.process.stop()
        with self._tx_lock:
            tx, self._tx = self._tx, None
        if tx is not None:
            tx.close(linger=0)
        if self._ctx is not None:
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
            assert self._tx is not None  # set before the state went RUNNING
            self._tx.send_multipart(frames, copy=False)
        return future

    def cancel(self, task_id: str, failure: Failure) -> bool:
        """Complete `task_id` now with `failure`; the endpoint drops it (unstarted,
        it never runs) and sends no result. False if it is not in flight here."""
        pending = self._pending.pop(task_id)
        if pending is None:
            return False
        frames = wire.encode(wire.Kind.CANCEL, wire.CancelHeader(task_id=task_id))
        with self._tx_lock:
            try:
                if self._tx is not None:
                    self._tx.send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.ZMQError as exc:  # the task is completed all the same
                log.warning(
                    "site %s: cannot send cancel of %s: %s", self.site, task_id, exc
                )
        result, future = pending
        result.fail(failure)
        future.set_result(result)
        return True

    def _why_down(self) -> str:
        if self._state is TransportState.LOST:
            return self._lost_reason
        return f"site {self.site!r} is {self._state.value}, not running"

    # -- receiving -------------------------------------------------------------------

    def _receive(self, rx: zmq.Socket[Any], link: int) -> None:
        """Own `rx` until stop, a newer link, or the endpoint's exit (which it
        answers by starting a restart)."""
        poller = zmq.Poller()
        poller.register(rx, zmq.POLLIN)
        poll_ms = int(min(200.0, self.config.local.heartbeat_s * 500))
        try:
            while not self._closing.is_set() and link == self._link:
                if poller.poll(poll_ms):
                    while wire.readable(rx):
                        frames = rx.recv_multipart()
                        try:
                            self._handle(frames)
                        except Exception:  # keep receiving: other tasks need it
                            log.exception("site %s: cannot handle a message", self.site)
                if self._watch():
                    return
        finally:
            rx.close(linger=0)

    def _watch(self) -> bool:
        """Check the endpoint's process and heartbeats; True once it has exited."""
        watching = self._state is TransportState.RUNNING or self._silent
        if not watching:  # a start or restart is bringing it up, and watches it
            return False
        code = self.process.exit_code()
        if code is not None:
            self._on_exit(code)
            return True
        if self._last_heard is None:
            return False
        silence = time.monotonic() - self._last_heard
        local = self.config.local
        health = heartbeat_health(silence, local.heartbeat_s, local.heartbeat_timeout_s)
        if health is Health.LOST and not self._silent:
            self._silent = True
            self._lose(
                f"site {self.site!r} has not been heard from for "
                f"{local.heartbeat_timeout_s:g} s (local.heartbeat_timeout_s); "
                f"it rejoins when heard again"
            )
        elif health is Health.DEGRADED and self.health.health is Health.UP:
            self.health.set(
                Health.DEGRADED,
                f"heartbeats late: last heard {silence:.1f} s ago "
                f"(expected every {local.heartbeat_s:g} s)",
            )
        return False

    def _handle(self, frames: list[bytes]) -> None:
        received_ns = time.time_ns()
        self._heard_now()
        try:
            kind, header, payloads = wire.decode(frames)
        except wire.WireError as exc:
            log.warning("site %s sent a malformed message: %s", self.site, exc)
            return
        if kind is wire.Kind.HEARTBEAT:
            self._remote_host = header.host
            self._workers = header.workers
            self._heard.set()
        elif kind is wire.Kind.RESULT:
            for entry, payload in zip(header.results, payloads, strict=True):
                self._complete(entry, payload, header, received_ns)

    def _heard_now(self) -> None:
        """The endpoint spoke: a silent site rejoins, a late one is up again."""
        now = time.monotonic()
        silence = None if self._last_heard is None else now - self._last_heard
        self._last_heard = now
        if self._silent:
            self._silent = False
            with self._pending.lock:
                self._state = TransportState.RUNNING
                self._lost_reason = ""
            self.health.set(Health.UP, f"heard again after {silence or 0:.1f} s")
        elif self.health.health is Health.DEGRADED:
            self.health.set(Health.UP, "heartbeats on time again")

    def _complete(
        self,
        entry: wire.ResultEntry,
        payload: bytes,
        header: wire.ResultHeader,
        received_ns: int,
    ) -> None:
        pending = self._pending.pop(entry.task_id)
        if pending is None:  # at-least-once: the federation may have resubmitted it
            log.warning(
                "site %s returned task %s, which is no longer in flight here "
                "(failed as lost, cancelled or stopped): result dropped",
                self.site,
                entry.task_id,
            )
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

    def _lose(self, reason: str) -> None:
        log.error("%s; failing its tasks in flight", reason)
        with self._pending.lock:
            self._state = TransportState.LOST
            self._lost_reason = reason
        self.health.set(Health.LOST, reason)
        self._pending.fail_all(FailureKind.ENDPOINT_LOST, reason, self.site)

    # -- restarting ------------------------------------------------------------------

    def _on_exit(self, code: int) -> None:
        """The endpoint died: fail its tasks, reap what it left, restart it."""
        reason = (
            f"the endpoint of site {self.site!r} exited (status {code}); "
            f"see {self.process.log_path}"
        )
        restarting = self.config.local.restart.attempts > 0
        if not restarting:
            reason += "; not restarted, as local.restart.attempts is 0"
        self._silent = False
        self._lose(reason)
        self.process.reap()
        if not restarting:
            return
        with self._threads_lock:
            if self._closing.is_set():
                return
            self._restarter = threading.Thread(
                target=self._restart, name=f"cfx-restart-{self.site}", daemon=True
            )
            self._restarter.start()

    def _restart(self) -> None:
        """Start the endpoint again, with backoff; `lost` for good if it never comes."""
        _join(self._receiver)  # the one that saw the exit: let it close its rx
        restart = self.config.local.restart
        delays = backoff_delays(
            restart.attempts, restart.backoff_initial_s, restart.backoff_max_s
        )
        error = ""
        for attempt, delay in enumerate(delays, start=1):
            self.health.set(
                Health.RECOVERING,
                f"restart {attempt} of {restart.attempts} in {delay:g} s",
            )
            if self._closing.wait(delay):
                return
            self.health.set(
                Health.RECOVERING,
                f"restart {attempt} of {restart.attempts}: starting the endpoint",
            )
            try:
                self._bring_up(self.process.start(cancel=self._closing))
                log.info("site %s restarted (attempt %d)", self.site, attempt)
                return
            except _Stopping:
                return
            except Exception as exc:
                if self._closing.is_set():
                    return
                error = (str(exc).splitlines() or [type(exc).__name__])[0]
                log.warning("site %s: restart %d failed: %s", self.site, attempt, exc)
                self._abandon_attempt()
        reason = (
            f"the endpoint of site {self.site!r} did not restart in "
            f"{restart.attempts} attempts (last: {error}); see "
            f"{self.process.log_path}, fix the site and start the campaign again"
        )
        with self._pending.lock:
            self._lost_reason = reason
        self.health.set(Health.LOST, reason)

    def _abandon_attempt(self) -> None:
        """Undo a failed restart: its receiver, its process and what it started."""
        self.process.kill()
        with self._threads_lock:
            self._link += 1  # ends the attempt's receiver, which never watched
        _join(self._receiver)
        self.process.reap()

    # -- state -----------------------------------------------------------------------

    def status(self) -> TransportStatus:
        in_flight = len(self._pending)
        heard = (
            None if self._last_heard is None else time.monotonic() - self._last_heard
        )
        health = self.health.current
        return TransportStatus(
            site=self.site,
            transport="local",
            state=self._state,
            in_flight=in_flight,
            remote_host=self._remote_host,
            last_heard_s=heard,
            detail=self._lost_reason,
            health=health.health,
            health_reason=health.reason,
            health_since=health.since,
            capacity=self._workers,
        )


def _join(thread: threading.Thread | None, timeout: float = 30.0) -> None:
    if thread is None or thread is threading.current_thread():
        return
    thread.join(timeout)
    if thread.is_alive():
        log.warning("thread %s did not end within %g s", thread.name, timeout)
