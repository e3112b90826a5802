"""The test suite's TCP delay proxy: a known latency on a real socket."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from testing.delayproxy import DelayProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_server() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def test_each_way_is_delayed_and_streams_arrive_intact(echo_server: int) -> None:
    delay = 0.05
    with (
        DelayProxy("127.0.0.1", echo_server, delay) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port)) as sock,
    ):
        start = time.monotonic()
        sock.sendall(b"ping")
        assert _receive(sock, 4) == b"ping"
        assert time.monotonic() - start >= 2 * delay  # out and back
        stream = bytes(range(256)) * 40_000  # 10 MB in many chunks, both ways
        sender = threading.Thread(target=sock.sendall, args=(stream,))
        sender.start()
        assert _receive(sock, len(stream)) == stream
        sender.join()
    assert not [t for t in threading.enumerate() if t.name == "delay-proxy"]
