"""A TCP forwarder that adds a fixed one-way delay, to give a link a known latency.

Each chunk read from one side is written to the other `delay_s` after it was read,
in order; chunks read together leave together (a delay, not a bandwidth cap), which
is how a long but fast network path behaves. It listens on a free loopback port.
"""

from __future__ import annotations

import heapq
import itertools
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from dataclasses import field


@dataclass(order=True)
class _Chunk:
    due: float
    order: int
    target: socket.socket = field(compare=False)
    data: bytes = field(compare=False)


class DelayProxy:
    """Forwards `127.0.0.1:port` to `target_host:target_port`, `delay_s` each way."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        delay_s: float,
        listen_host: str = "127.0.0.1",
    ) -> None:
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self._listener = socket.create_server((listen_host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._queue: list[_Chunk] = []
        self._order = itertools.count()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delay-proxy")

    def start(self) -> DelayProxy:
        self._listener.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for sock in [*self._peers, self._listener, self._wake_r, self._wake_w]:
            sock.close()
        self._selector.close()

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopping.is_set():
            timeout = None
            if self._queue:
                timeout = max(0.0, self._queue[0].due - time.monotonic())
            for key, _ in self._selector.select(timeout):
                sock = key.fileobj
                if sock is self._listener:
                    self._accept()
                elif sock is self._wake_r:
                    self._wake_r.recv(64)
                else:
                    self._read(sock)  # type: ignore[arg-type]
            self._send_due()

    def _accept(self) -> None:
        client, _ = self._listener.accept()
        try:
            server = socket.create_connection(self.target)
        except OSError:  # nobody listens there (yet, or any more): as a refusal
            client.close()
            return
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ)
        self._peers[client], self._peers[server] = server, client

    def _read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # one side closed: close both
            peer = self._peers.pop(sock, None)
            for end in (sock, peer):
                if end is not None:
                    self._peers.pop(end, None)
                    self._selector.unregister(end)
                    end.close()
            return
        due = time.monotonic() + self.delay_s
        heapq.heappush(
            self._queue, _Chunk(due, next(self._order), self._peers[sock], data)
        )

    def _send_due(self) -> None:
        now = time.monotonic()
        while self._queue and self._queue[0].due <= now:
            chunk = heapq.heappop(self._queue)
            if chunk.target.fileno() < 0:  # its connection closed meanwhile
                continue
            chunk.target.setblocking(True)
            try:
                chunk.target.sendall(chunk.data)
            except OSError:
                pass
            finally:
                chunk.target.setblocking(False)
