"""The endpoint: one process per local site, owning a real engine.

It does what a Globus Compute endpoint does with a task (hand the packed `Task` to
`engine.submit` and send back the packed `Result`), but receives tasks over an
authenticated ZeroMQ link instead of RabbitMQ, and stamps when each task entered and
left the endpoint. It never stops serving over a message it cannot use (a peer with
the key may still send garbage): such a message is logged and dropped.

It serves one client session at a time (`clients`) and keeps every result until
that client acknowledges it (`results`), so a client that dies and comes back (the
same run) gets what finished meanwhile. Embedded (`--parent-pid`), it exits with
its client; standalone (`colmena-fx endpoint start`), it outlives clients.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import zmq
import zmq.auth.thread

from colmena_fx.config import SiteConfig
from colmena_fx.endpoint import wire
from colmena_fx.endpoint.clients import Clients
from colmena_fx.endpoint.clients import Session
from colmena_fx.endpoint.clients import _OnlyClientKey
from colmena_fx.endpoint.engines import drop_queued
from colmena_fx.endpoint.engines import engine_workers
from colmena_fx.endpoint.process import session_processes
from colmena_fx.endpoint.results import ResultBuffer
from colmena_fx.endpoint.tasks import Done
from colmena_fx.endpoint.tasks import EngineTasks
from colmena_fx.exceptions import ConfigError
from colmena_fx.models import HOST

__all__ = ["EmbeddedEndpoint"]

log = logging.getLogger(__name__)

_WAKE_ADDRESS = "inproc://finished"
#: A handover sends buffered results in messages of about this size.
_HANDOVER_BYTES = 16 * 2**20


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
        #: Its parent (the client) died: nothing it had queued is worth running.
        self.orphaned = False
        self.endpoint_id = uuid.uuid4()
        self._stop = threading.Event()
        #: The engine's tasks, once it started.
        self._tasks: EngineTasks | None = None
        self._clients = Clients(site.name, site.local.heartbeat_timeout_s)
        self._results = ResultBuffer(self.run_dir / "results", site.local.buffer_limit)
        self._engine: Any = None
        self._private_dir: str | None = None

    def start(self) -> None:
        """Start the engine, bind the socket, then publish the connection file."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._results.start()
        self._engine = self.site.build_engine()
        self._engine.start(endpoint_id=self.endpoint_id, run_dir=str(self.run_dir))

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

        # Engine threads queue finished tasks and wake the serving thread once per
        # batch through an inproc socket.
        self._wake_in = self._ctx.socket(zmq.PULL)
        self._wake_in.bind(_WAKE_ADDRESS)
        self._wake_out = self._ctx.socket(zmq.PUSH)
        self._wake_out.connect(_WAKE_ADDRESS)
        self._wake_lock = threading.Lock()
        self._wake_sent = False
        self._tasks = EngineTasks(self._engine, self._wake)

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
                self._note_silence()
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    log.warning("parent process %s is gone; stopping", self.parent_pid)
                    self.orphaned = True
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
            self._hello(identity, header)
            return
        if kind not in wire.SESSION_KINDS:
            log.warning("dropped an unexpected %s message", kind)
            return
        session = self._clients.session_of(identity)
        if session is None:  # a client that was replaced, or never said HELLO
            refusal = self._clients.refusal(identity, what=f"a {kind} message")
            self._send(identity, wire.encode(wire.Kind.REFUSED, refusal))
            return
        session.heard()
        assert self._tasks is not None  # serving: started
        if kind is wire.Kind.TASK:
            self._tasks.submit(header, payloads[0], received_ns, session.run)
        elif kind is wire.Kind.CANCEL:
            self._tasks.cancel(header.task_id)
        elif kind is wire.Kind.ACK:
            self._results.ack(header.task_ids, session.run)
        elif kind is wire.Kind.BYE and header.session == session.id:
            self._bye(session)
        # A PING says only that the client is alive: heard, above.

    # -- sessions --------------------------------------------------------------------

    def _hello(self, identity: bytes, header: wire.HelloHeader) -> None:
        outcome = self._clients.hello(identity, header)
        if isinstance(outcome, wire.RefusedHeader):
            self._send(identity, wire.encode(wire.Kind.REFUSED, outcome))
            return
        session, new = outcome
        if new and self._tasks is not None:
            self._keep(self._tasks.take())
            for run, count in self._results.runs().items():
                if run != session.run:
                    log.warning(
                        "%d results of run %s are kept for a client of that run; "
                        "the attached client (run %s) does not get them",
                        count,
                        run,
                        session.run,
                    )
        if header.role == "rx":
            self._welcome(session)

    def _welcome(self, session: Session) -> None:
        """Say what this run has here, hand its results over again, then beat."""
        assert session.rx is not None and self._tasks is not None
        running, done = self._tasks.snapshot(session.run)
        self._keep(done)
        finished = self._results.task_ids(session.run)
        welcome = wire.WelcomeHeader(
            session=session.id,
            run=session.run,
            host=HOST,
            pid=os.getpid(),
            workers=engine_workers(self._engine),
            running=running,
            finished=finished,
        )
        self._send(session.rx, wire.encode(wire.Kind.WELCOME, welcome))
        batch: list[Done] = []
        size = 0
        for task_id in finished:
            held = self._results.read(task_id)
            if held is None:
                continue
            batch.append(Done(task_id, session.run, *held))
            size += len(held[1])
            if size >= _HANDOVER_BYTES:
                self._send_results(session.rx, batch)
                batch, size = [], 0
        self._send_results(session.rx, batch)
        if finished:
            log.info("handed %d results over to run %s", len(finished), session.run)
        self._heartbeat()

    def _bye(self, session: Session) -> None:
        """A clean stop: the client failed its tasks itself, so drop what is left."""
        assert self._tasks is not None
        self._clients.bye(session)
        self._keep(self._tasks.take())
        dropped = self._results.drop_run(session.run)
        cancelled = self._tasks.cancel_run(session.run)
        log.info(
            "client pid %d on %s said goodbye: detached; dropped %d results and "
            "cancelled %d tasks of run %s",
            session.pid,
            session.host,
            dropped,
            cancelled,
            session.run,
        )

    def _note_silence(self) -> None:
        session = self._clients.attached
        timeout = self._clients.timeout_s
        if session is None or session.silence_logged or session.silence_s() < timeout:
            return
        session.silence_logged = True
        log.warning("%s is silent; another client may attach", session.describe())

    # -- results ---------------------------------------------------------------------

    def _wake(self) -> None:
        """Called from engine threads: wake the serving thread, once per batch."""
        with self._wake_lock:
            if not self._wake_sent:
                self._wake_sent = True
                self._wake_out.send(b"")

    def _keep(self, done: list[Done]) -> None:
        """Into the buffer, where results stay until their client acknowledges."""
        for task_id, run, received_ns, packed in done:
            self._results.add(task_id, run, received_ns, packed)

    def _send_finished(self) -> None:
        """Keep every finished task, and send the attached run's in one message."""
        while wire.readable(self._wake_in):
            self._wake_in.recv()
        with self._wake_lock:
            self._wake_sent = False  # before draining: a later result wakes us again
        assert self._tasks is not None
        done = self._tasks.take()
        self._keep(done)
        session = self._clients.attached
        if session is None or session.rx is None:
            return  # kept for the client of their run, when it attaches
        self._send_results(session.rx, [d for d in done if d.run == session.run])

    def _send_results(self, rx: bytes, done: list[Done]) -> None:
        if not done:
            return
        entries = [
            wire.ResultEntry(task_id=d.task_id, received_ns=d.received_ns) for d in done
        ]
        header = wire.ResultHeader(results=entries, sent_ns=time.time_ns(), host=HOST)
        packed = [d.packed for d in done]
        self._send(rx, wire.encode(wire.Kind.RESULT, header, *packed))

    def _heartbeat(self) -> None:
        session = self._clients.attached
        if session is None or session.rx is None:
            return
        header = wire.HeartbeatHeader(
            host=HOST,
            pid=os.getpid(),
            time_ns=time.time_ns(),
            in_flight=len(self._tasks or ()),
            engine=type(self._engine).__name__,
            workers=engine_workers(self._engine),
        )
        self._send(session.rx, wire.encode(wire.Kind.HEARTBEAT, header))

    def _send(self, identity: bytes, frames: list[bytes]) -> None:
        # To a peer that has gone, ROUTER drops the message: results stay kept.
        self._router.send_multipart([identity, *frames])

    def shutdown(self) -> None:
        """Stop the engine first (it owns worker processes), then the sockets."""
        log.info("endpoint for site %s stopping", self.site.name)
        try:
            if self._engine is not None:
                if self.orphaned:
                    drop_queued(self._engine)
                self._engine.shutdown()
        except Exception:
            log.exception("engine shutdown failed")
        if self.orphaned:
            _end_own_session()
        if hasattr(self, "_auth"):
            self._auth.stop()
        if hasattr(self, "_ctx"):
            self._ctx.destroy(linger=0)
        if self._private_dir:
            shutil.rmtree(self._private_dir, ignore_errors=True)
        for run, count in self._results.runs().items():
            log.warning("%d results of run %s were never acknowledged", count, run)
        self._results.clear()
        self.connection_file.unlink(missing_ok=True)


def _end_own_session() -> None:
    """Kill what the engine left running in this endpoint's session: with its
    client gone, nobody else would (the client reaps the session otherwise)."""
    if os.getsid(0) != os.getpid():
        return  # not a session of our own: the processes in it are not all ours
    for proc in session_processes(os.getpid()):
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _logged(step: Callable[[], None], what: str) -> None:
    """Run one step of the serving loop; an error is logged, and serving goes on."""
    try:
        step()
    except Exception:
        log.exception("failed %s; serving on", what)
