"""A TCP forwarder that adds a fixed one-way delay, to give a link a known latency.

The delay may differ by direction: `delay_s` is "out", from the side that connects
to the proxy (the client) to the target (the endpoint), and `back_delay_s` is
"back", from the target to the client (`delay_s` unless given). An asymmetric link
is what no round-trip clock estimate can tell from a clock offset: it puts the
estimate (back - out) / 2 off the truth, within the estimate's uncertainty.

Each chunk read from one side is written to the other its direction's delay after
it was read, in order; chunks read together leave together (a delay, not a
bandwidth cap), which is how a long but fast network path behaves. A side that
closes its end is closed on the other that direction's delay later, after the bytes
it sent before. It listens on a free loopback port.

Every direction of every connection has a reader thread, which stamps each chunk
with its due time as it reads it, and a writer thread, which sends each chunk when
it is due. Reading never waits on writing, so a side that is slow to read holds up
only what is sent to it, never the other direction.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time

#: How often the accepting thread looks whether the proxy is stopping.
_ACCEPT_POLL_S = 0.1


class DelayProxy:
    """Forwards `listen_host:port` to `target_host:target_port`: `delay_s` out (to
    the target), `back_delay_s` back (from it; `delay_s` unless given)."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        delay_s: float,
        listen_host: str = "127.0.0.1",
        back_delay_s: float | None = None,
    ) -> None:
        if back_delay_s is None:
            back_delay_s = delay_s
        for name, value in (("delay_s", delay_s), ("back_delay_s", back_delay_s)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.target = (target_host, target_port)
        #: The one-way delay out, from the connecting side (the client) to the target.
        self.delay_s = delay_s
        #: The one-way delay back, from the target to the connecting side.
        self.back_delay_s = back_delay_s
        self._listener = socket.create_server((listen_host, 0))
        self._listener.settimeout(_ACCEPT_POLL_S)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._connections: list[threading.Thread] = []
        #: Bytes read so far from either side, so a test can tell that the proxy
        #: holds what was sent (waiting to deliver it) rather than sleep on it.
        self.bytes_read = 0
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="delay-proxy-accept", daemon=True
        )

    def start(self) -> DelayProxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection; wait for every thread."""
        with self._lock:
            self._stopping.set()
            connections = list(self._open)
        for sock in connections:  # wakes the threads blocked on them
            _shut(sock, socket.SHUT_RDWR)
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        for thread in self._connections:  # no more once the acceptor is gone
            thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(
                target=self._serve, args=(client,), name="delay-proxy-connection"
            )
            self._connections = [t for t in self._connections if t.is_alive()]
            self._connections.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        """Forward one connection both ways until both sides have closed."""
        try:
            server = socket.create_connection(self.target)
        except OSError:  # nobody listens there (yet, or any more): as a refusal
            client.close()
            return
        ends: tuple[socket.socket, ...] = (client, server)
        with self._lock:
            if self._stopping.is_set():
                ends = ()
            self._open.update(ends)
        if not ends:
            client.close()
            server.close()
            return
        for sock in ends:
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pumps = [
            threading.Thread(target=self._pump, args=args, name="delay-proxy-pump")
            for args in (
                (client, server, self.delay_s),  # out
                (server, client, self.back_delay_s),  # back
            )
        ]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join()
        with self._lock:
            self._open.difference_update(ends)
        for sock in ends:
            sock.close()

    def _pump(self, source: socket.socket, sink: socket.socket, delay_s: float) -> None:
        """Read `source` to its end; a writer delivers each chunk when it is due."""
        chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        writer = threading.Thread(
            target=self._deliver, args=(chunks, source, sink), name="delay-proxy-out"
        )
        writer.start()
        while True:
            try:
                data = source.recv(1 << 20)
            except OSError:
                data = b""
            chunks.put((time.monotonic() + delay_s, data))  # b"": the end
            with self._lock:
                self.bytes_read += len(data)
            if not data:
                break
        writer.join()

    def _deliver(
        self,
        chunks: queue.SimpleQueue[tuple[float, bytes]],
        source: socket.socket,
        sink: socket.socket,
    ) -> None:
        while True:
            due, data = chunks.get()
            if self._stopping.wait(max(0.0, due - time.monotonic())):
                return
            if not data:  # the source closed its end: close this one
                _shut(sink, socket.SHUT_WR)
                return
            try:
                sink.sendall(data)
            except OSError:  # the sink is gone: stop reading what was meant for it
                _shut(source, socket.SHUT_RDWR)
                _shut(sink, socket.SHUT_RDWR)
                return


def _shut(sock: socket.socket, how: int) -> None:
    with contextlib.suppress(OSError):  # already closed or reset
        sock.shutdown(how)
