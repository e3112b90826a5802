"""The `local` transport: the client side of the link to an endpoint on this machine.

Either the transport starts the site's endpoint itself (embedded, the default; it
restarts one that dies, `local_restart`), or, with `local.attach`, it attaches to
one that `colmena-fx endpoint start` runs and that outlives the client: then it
never starts, restarts or kills a process, and `stop` says BYE and leaves the
endpoint running.

Two CurveZMQ DEALER sockets, one session (`local_link`): callers send tasks on `tx`
under a lock, straight from their own thread (no hand-off), and one receiver thread
owns `rx`, on which the endpoint sends results and heartbeats, and on which the
receiver pings the endpoint and acknowledges each batch of results once their
futures are complete (their callbacks have persisted them). What it hears keeps
the site's health (`local_watch`).

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
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.transports import gcformat
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.base import TransportStatus
from colmena_fx.transports.health import HealthTracker
from colmena_fx.transports.local_handover import Arrivals
from colmena_fx.transports.local_link import BYE_LINGER_MS
from colmena_fx.transports.local_link import LinkSession
from colmena_fx.transports.local_link import connect
from colmena_fx.transports.local_link import read_connection_file
from colmena_fx.transports.local_link import run_identity
from colmena_fx.transports.local_receiver import Receiver
from colmena_fx.transports.local_restart import Restarter
from colmena_fx.transports.local_restart import Stopping
from colmena_fx.transports.local_restart import backoff_delays
from colmena_fx.transports.local_watch import LinkWatch
from colmena_fx.transports.local_watch import heartbeat_health
from colmena_fx.transports.pending import PendingTasks
from colmena_fx.transports.pending import complete_failed
from colmena_fx.transports.resourcespec import engine_specification

__all__ = ["LocalTransport", "backoff_delays", "heartbeat_health"]

log = logging.getLogger(__name__)


class LocalTransport:
    """Exchanges tasks with a site's endpoint; starts and restarts it unless it
    attaches to one (`local.attach`)."""

    def __init__(self, site: SiteConfig, run_dir: Path) -> None:
        self.site = site.name
        self.config = site
        self.health = HealthTracker(self.site)
        #: The connection file of the endpoint attached to; None when embedded.
        self.attach = site.local.attach
        #: The endpoint process this transport runs; None when it attaches.
        self.process = None if self.attach else EndpointProcess(site, Path(run_dir))
        #: The client's run: an endpoint hands a run's results to its sessions only.
        self.run = run_identity(run_dir)
        self._functions = gcformat.FunctionCache()
        self._pending = PendingTasks()
        self._tx_lock = threading.Lock()
        self._tx: zmq.Socket[Any] | None = None
        self._session: LinkSession | None = None
        self._ctx: zmq.Context[zmq.Socket[Any]] | None = None
        self._watch = LinkWatch(site.local, self.health, self._pending)
        self._arrivals = Arrivals(self._watch, takes_back=self.process is None)
        self._closing = threading.Event()
        #: Guards starting threads against `stop`, so it can join every one.
        self._threads_lock = threading.Lock()
        #: The receiver of the current link.
        self._receiver: Receiver | None = None
        self._restarter = (
            None
            if self.process is None
            else Restarter(
                self.process,
                self._watch,
                self._closing,
                self._threads_lock,
                self._bring_up,
                self._end_receiver,
            )
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._ctx = zmq.Context()
        try:
            if self.process is None:
                assert self.attach is not None
                info = read_connection_file(self.attach, self.config)
            else:
                info = self.process.start(cancel=self._closing)
            self._bring_up(info)
        except Stopping:
            self.stop()
            raise EndpointError(
                f"site {self.site!r} was stopped while starting"
            ) from None
        except BaseException:
            self.stop()
            raise

    def _bring_up(self, info: wire.ConnectionInfo) -> None:
        """Connect, say HELLO on both sockets, and return once WELCOMEd; raises
        `EndpointError` if refused, silent or exited, `Stopping` on stop."""
        self._watch.new_link()
        session = LinkSession(self.run)
        via = self.config.local.connect_via
        assert self._ctx is not None
        rx = connect(self._ctx, info, via)
        rx.send_multipart(session.hello("rx"))
        tx = connect(self._ctx, info, via)
        tx.send_multipart(session.hello("tx"))
        with self._tx_lock:
            old, self._tx, self._session = self._tx, tx, session
        if old is not None:
            old.close(linger=0)
        receiver = Receiver(
            rx,
            session,
            self._watch,
            self._arrivals,
            self._closing,
            self._send_tx,
            self._exited,
        )
        with self._threads_lock:
            if self._closing.is_set():
                rx.close(linger=0)
                raise Stopping
            if self._receiver is not None:
                self._receiver.retire()  # a newer link ends the previous receiver
            self._receiver = receiver
            receiver.thread.start()
        self._wait_welcome(receiver, info)
        self._watch.up(f"endpoint pid {info.pid} answers on {info.address}")

    def _wait_welcome(self, receiver: Receiver, info: wire.ConnectionInfo) -> None:
        deadline = time.monotonic() + self.config.local.start_timeout_s
        while not receiver.answered.wait(0.05):
            if self._closing.is_set():
                raise Stopping
            code = self.process.exit_code() if self.process else None
            if self.process is not None and code is not None:
                raise EndpointError(
                    f"the endpoint of site {self.site!r} exited (status {code}) "
                    f"before it answered; see {self.process.log_path}"
                )
            if time.monotonic() > deadline:
                raise EndpointError(self._unanswered(info))
        if receiver.refused is not None:
            raise EndpointError(
                f"cannot attach to {self.attach or info.address}: {receiver.refused}"
            )

    def _unanswered(self, info: wire.ConnectionInfo) -> str:
        via = self.config.local.connect_via
        route = (
            f"{info.address} (through {via}, local.connect_via)"
            if via
            else info.address
        )
        if self.process is not None:
            return (
                f"site {self.site!r}: the endpoint started but never answered over "
                f"{route}; see {self.process.log_path}"
            )
        return (
            f"site {self.site!r}: the endpoint (pid {info.pid}) of connection file "
            f"{self.attach} did not answer over {route} within "
            f"{self.config.local.start_timeout_s:g} s (local.start_timeout_s); is it "
            f"running? Start it with `colmena-fx endpoint start "
            f"{self.config.source or '<site file>'}`"
        )

    def stop(self) -> None:
        """Stop restarting and receiving, fail what is in flight, say BYE, and stop
        the endpoint if this transport started it.

        Returns promptly even during a restart's backoff or start: both watch
        `_closing`, and an endpoint caught starting is killed with its session.
        """
        with self._threads_lock:  # from here on, no thread is started
            if self._closing.is_set() or self._watch.state is TransportState.STOPPED:
                return  # stopped, or stopping in another thread
            self._closing.set()
        _join(self._restarter)
        _join(self._receiver)  # read after the restarter ended: it may start one
        self._pending.fail_all(
            FailureKind.INFRASTRUCTURE,
            f"site {self.site!r} was stopped before the task finished",
            self.site,
        )
        self._watch.set_state(TransportState.STOPPED)
        self._say_bye()
        if self.process is not None:
            self.process.stop()
        if self._ctx is not None:
            self._ctx.destroy(linger=0)

    def _say_bye(self) -> None:
        """Tell the endpoint this session ends: it detaches it at once (the next
        client need not wait) and drops the run's results, failed here already."""
        with self._tx_lock:
            tx, self._tx = self._tx, None
        if tx is None:
            return
        linger = 0
        # An embedded endpoint is stopped next: only an attached one needs it.
        if self._session is not None and self.process is None:
            try:
                tx.send_multipart(self._session.bye(), flags=zmq.NOBLOCK)
                linger = BYE_LINGER_MS  # the BYE may still be on its way
            except zmq.ZMQError as exc:
                log.debug("site %s: cannot say BYE: %s", self.site, exc)
        tx.close(linger=linger)

    # -- sending ---------------------------------------------------------------------

    def submit(self, result: Result, function: Callable[..., Any]) -> Future[Result]:
        future: Future[Result] = Future()
        packed = gcformat.pack_task(
            result.task_id, self._functions.buffer(function), result.inputs
        )
        result.sizes.request = len(packed)
        header = wire.TaskHeader(
            task_id=result.task_id,
            resource_specification=engine_specification(result.resources, self.config),
        )
        frames = wire.encode(wire.Kind.TASK, header, packed)
        with self._pending.lock:
            running = self._watch.state is TransportState.RUNNING
            if running:
                self._pending.add(result.task_id, result, future)
        if not running:
            complete_failed(
                result,
                future,
                FailureKind.ENDPOINT_LOST,
                self._watch.why_down(),
                self.site,
            )
            return future
        with self._tx_lock:
            result.stamp(Stamp.SENT)
            assert self._tx is not None  # set before the state went RUNNING
            self._tx.send_multipart(frames, copy=False)
        return future

    def reattach(self, results: list[Result]) -> dict[str, Future[Result]]:
        """Take back tasks sent before the client restarted, without sending them
        again: those the endpoint's WELCOME listed (running, or finished while the
        client was away). Embedded, there are none: that endpoint died with the
        client. Called once, after `start`; later calls return {}.
        """
        if self.process is not None:
            return {}
        futures, done = self._arrivals.reattach(results)
        if done and self._session is not None:  # the receiver owns rx: ACK on tx
            self._send_tx(self._session.ack(done))
        return futures

    def _send_tx(self, frames: list[bytes]) -> None:
        """Send a control message on tx, from any thread."""
        with self._tx_lock:
            try:
                if self._tx is not None:
                    self._tx.send_multipart(frames, flags=zmq.NOBLOCK)
            except zmq.ZMQError as exc:  # not connected, or its queue is full
                log.warning(
                    "site %s: cannot send %s: %s", self.site, frames[0].decode(), exc
                )

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

    # -- the endpoint's process (embedded only) --------------------------------------

    def _exited(self) -> bool:
        """For the receiver: whether the endpoint process exited (then restarted)."""
        code = self.process.exit_code() if self.process else None
        if code is None or self._restarter is None:
            return False
        self._restarter.on_exit(code)
        return True

    def _end_receiver(self, retire: bool) -> None:
        """Join the receiver; with `retire`, end it first (for `Restarter`)."""
        receiver = self._receiver
        if receiver is not None:
            if retire:
                receiver.retire()
            _join(receiver)

    # -- state -----------------------------------------------------------------------

    def status(self) -> TransportStatus:
        health = self.health.current
        return TransportStatus(
            site=self.site,
            transport="local",
            state=self._watch.state,
            in_flight=len(self._pending),
            remote_host=self._watch.remote_host,
            last_heard_s=self._watch.silence_s(),
            detail=self._watch.lost_reason,
            health=health.health,
            health_reason=health.reason,
            health_since=health.since,
            capacity=self._watch.workers,
        )


def _join(owner: Receiver | Restarter | None, timeout: float = 30.0) -> None:
    thread = owner.thread if owner is not None else None
    if thread is None or thread is threading.current_thread():
        return
    thread.join(timeout)
    if thread.is_alive():
        log.warning("thread %s did not end within %g s", thread.name, timeout)
