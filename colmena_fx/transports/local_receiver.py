"""The receiver of one link: the thread that owns its `rx` socket.

It reads what the endpoint sends (WELCOME or REFUSED, heartbeats, results), pings
the endpoint every `heartbeat_s`, and acknowledges each RESULT message once its
futures are complete: `future.set_result` runs the federation's callbacks, which
persist the result, so an acknowledged result is safe whatever happens next. A
client the endpoint refused keeps asking (HELLO instead of PING), so that it
rejoins once the client that took its place is gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

from colmena_fx.endpoint import wire
from colmena_fx.transports.base import TransportState
from colmena_fx.transports.local_handover import Arrivals
from colmena_fx.transports.local_handover import ArrivedResult
from colmena_fx.transports.local_link import LinkSession
from colmena_fx.transports.local_watch import LinkWatch

log = logging.getLogger(__name__)


class Receiver:
    """Owns `rx` on the `cfx-rx-<site>` thread until closing, retired, or `exited()`
    (which checks the endpoint's process, and answers an exit) says so."""

    def __init__(
        self,
        rx: zmq.Socket[Any],
        session: LinkSession,
        watch: LinkWatch,
        arrivals: Arrivals,
        closing: threading.Event,
        send_tx: Callable[[list[bytes]], None],
        exited: Callable[[], bool],
    ) -> None:
        self.rx = rx
        self.session = session
        self.watch = watch
        self.arrivals = arrivals
        self.closing = closing
        self.send_tx = send_tx
        self.exited = exited
        self.site = watch.site
        #: Set on the link's WELCOME or REFUSED, which a start waits for.
        self.answered = threading.Event()
        #: Why the endpoint refused this client, while it does.
        self.refused: str | None = None
        self._retired = threading.Event()
        self.thread = threading.Thread(
            target=self._run, name=f"cfx-rx-{self.site}", daemon=True
        )

    def retire(self) -> None:
        """End the thread at its next turn (a failed restart's receiver)."""
        self._retired.set()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.rx, zmq.POLLIN)
        period = self.watch.local.heartbeat_s
        poll_ms = int(min(200.0, period * 500))
        next_ping = time.monotonic() + period
        try:
            while not self.closing.is_set() and not self._retired.is_set():
                if poller.poll(poll_ms):
                    while wire.readable(self.rx):
                        frames = self.rx.recv_multipart()
                        try:
                            self._handle(frames)
                        except Exception:  # keep receiving: other tasks need it
                            log.exception("site %s: cannot handle a message", self.site)
                if time.monotonic() >= next_ping:
                    next_ping = time.monotonic() + period
                    self._ping()
                if self.watch.watching:  # a start or restart watches for itself
                    if self.exited():
                        return
                    self.watch.check_silence()
        finally:
            self.rx.close(linger=0)

    def _ping(self) -> None:
        """Tell the endpoint this client is alive; refused, ask to attach again."""
        try:
            if self.refused is not None and self.watch.silent:
                self.rx.send_multipart(self.session.hello("rx"), flags=zmq.NOBLOCK)
                self.send_tx(self.session.hello("tx"))
            else:
                self.rx.send_multipart(self.session.ping(), flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # not connected yet, or the queue is full
            log.debug("site %s: cannot ping: %s", self.site, exc)

    def _handle(self, frames: list[bytes]) -> None:
        received_ns = time.time_ns()
        try:
            kind, header, payloads = wire.decode(frames)
        except wire.WireError as exc:
            self.watch.heard()
            log.warning("site %s sent a malformed message: %s", self.site, exc)
            return
        if kind is wire.Kind.REFUSED:  # no sign of a link that serves this client
            self._refused(header.reason)
            return
        self.watch.heard()
        if kind is wire.Kind.HEARTBEAT:
            self.watch.remote_host = header.host
            self.watch.workers = header.workers
        elif kind is wire.Kind.WELCOME:
            self.watch.remote_host = header.host
            self.watch.workers = header.workers
            self.arrivals.welcome(header)
            self.refused = None
            self.answered.set()
        elif kind is wire.Kind.RESULT:
            done = [
                entry.task_id
                for entry, payload in zip(header.results, payloads, strict=True)
                if self.arrivals.complete(
                    ArrivedResult(entry, payload, header, received_ns)
                )
            ]
            if done:  # their callbacks have run: the endpoint may forget them
                self.rx.send_multipart(self.session.ack(done))

    def _refused(self, reason: str) -> None:
        first, self.refused = self.refused is None, reason
        why = (
            f"site {self.site!r}: the endpoint took another client, so this one asks "
            f"to attach again: {reason}"
        )
        if self.watch.state is TransportState.RUNNING:
            self.watch.lose(why, rejoins=True)  # rejoins if the endpoint takes it back
        elif self.watch.silent:  # lost already (silent): now it is known why
            if first:
                self.watch.still_lost(why)
        else:  # a start waits for this answer
            self.answered.set()
