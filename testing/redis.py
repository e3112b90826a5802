"""A real Redis server for data-store tests: Debian's `redis-server`, on loopback.

Started on a free port with persistence off and its files in a temporary
directory, and stopped by the fixture that started it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from testing.links import free_port

SERVER = "redis-server"


class RedisServer:
    """One `redis-server` process bound to 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.host = "127.0.0.1"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 20.0) -> RedisServer:
        executable = shutil.which(SERVER) or f"/usr/bin/{SERVER}"
        if not Path(executable).exists():
            raise RuntimeError(
                f"{SERVER} is not installed: `make test` installs Debian's "
                f"redis-server when run as root"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [executable, "--bind", self.host, "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", str(self.directory),
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.client().ping()
                return self
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{SERVER} did not start; see {self.directory / 'redis.log'}"
                    ) from None
                time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, socket_timeout=5)

    def keys(self) -> int:
        """How many keys the server holds."""
        return int(self.client().dbsize())

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
