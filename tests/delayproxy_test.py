"""The test suite's TCP delay proxy: a known latency on a real socket."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from testing.delayproxy import DelayProxy
from testing.links import free_port
from testing.wait import wait_until


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
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        assert chunk, "connection closed early"
        data += chunk
    return bytes(data)


def _proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("delay-proxy")]


def test_a_round_trip_takes_at_least_the_delay_both_ways(echo_server: int) -> None:
    delay = 0.05
    with (
        DelayProxy("127.0.0.1", echo_server, delay) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock,
    ):
        for message in (b"ping", b"pong", b"x" * 1000):
            start = time.monotonic()
            sock.sendall(message)
            assert _receive(sock, len(message)) == message
            assert time.monotonic() - start >= 2 * delay  # out and back
    assert _proxy_threads() == []


def test_streams_both_ways_arrive_intact_and_in_order(echo_server: int) -> None:
    # All sent before any is read back: more than the kernel buffers on the way
    # hold, so the proxy must keep reading from each side while the other is slow.
    stream = np.arange(12_000_000, dtype=">u4").tobytes()  # 48 MB, numbered
    with (
        DelayProxy("127.0.0.1", echo_server, 0.01) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=60) as sock,
    ):
        sock.sendall(stream)
        assert _receive(sock, len(stream)) == stream
    assert _proxy_threads() == []


def test_a_close_is_delivered_after_the_data_before_it(echo_server: int) -> None:
    with (
        DelayProxy("127.0.0.1", echo_server, 0.05) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock,
    ):
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)  # the echo server closes once it has read them
        assert _receive(sock, 10) == b"last words"
        assert sock.recv(10) == b""


def test_a_target_nobody_listens_on_closes_the_connection() -> None:
    with (
        DelayProxy("127.0.0.1", free_port(), 0.01) as proxy,
        socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock,
    ):
        assert sock.recv(10) == b""


def test_stop_closes_open_connections_and_leaves_no_threads(echo_server: int) -> None:
    proxy = DelayProxy("127.0.0.1", echo_server, 10.0).start()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        message = b"queued for ten seconds"
        sock.sendall(message)
        wait_until(lambda: proxy.bytes_read >= len(message), 10, "the proxy reading it")
        proxy.stop()
        assert sock.recv(100) == b""  # closed, not delivered late
    assert _proxy_threads() == []


def test_the_delay_back_may_differ_from_the_delay_out() -> None:
    # Each direction timed on its own, in this one process (one clock): the
    # target notes when the message arrives and answers at once.
    out_s, back_s = 0.02, 0.06
    arrived: list[float] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def answer() -> None:
            connection, _ = listener.accept()
            with connection:
                assert _receive(connection, 4) == b"ping"
                arrived.append(time.monotonic())
                connection.sendall(b"pong")

        target = threading.Thread(target=answer)
        target.start()
        with (
            DelayProxy("127.0.0.1", port, out_s, back_delay_s=back_s) as proxy,
            socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock,
        ):
            assert (proxy.delay_s, proxy.back_delay_s) == (out_s, back_s)
            sent = time.monotonic()
            sock.sendall(b"ping")
            assert _receive(sock, 4) == b"pong"
            received = time.monotonic()
        target.join(timeout=30)
    (at,) = arrived
    assert out_s <= at - sent < out_s + 0.015
    assert back_s <= received - at < back_s + 0.015
    assert _proxy_threads() == []


def test_a_negative_delay_back_is_refused() -> None:
    with pytest.raises(ValueError, match="back_delay_s must be >= 0"):
        DelayProxy("127.0.0.1", free_port(), 0.01, back_delay_s=-0.001)
