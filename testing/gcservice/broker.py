"""A private RabbitMQ broker on loopback, as the Globus Compute service runs one.

Debian's `rabbitmq-server` is started as the current user with every port chosen
free and bound to 127.0.0.1 (AMQP, Erlang distribution, and its own epmd), and
all its state in a temporary directory, so tests never touch a system broker.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pika

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
EPMD = "epmd"


class BrokerUnavailable(RuntimeError):
    """RabbitMQ is not installed or did not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def installed() -> bool:
    return SERVER.exists() and shutil.which(EPMD) is not None


class RabbitMQBroker:
    """Start with `start()`, stop with `stop()`; `url` is the AMQP address."""

    def __init__(self, directory: Path, start_timeout_s: float = 60.0) -> None:
        self.directory = directory
        self.start_timeout_s = start_timeout_s
        self.port = free_port()
        self._epmd_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        """The server's process (the root of everything it starts), once started."""
        return self._process.pid if self._process is not None else None

    def _environment(self) -> dict[str, str]:
        base = self.directory
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            # A test machine's disk may be nearly full; never block publishers.
            "disk_free_limit.absolute = 1\n"
        )
        (base / "enabled_plugins").write_text("[].\n")
        return {
            **os.environ,
            "HOME": str(base),  # the Erlang cookie lives here
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            "RABBITMQ_NODENAME": f"colmena-fx-{self.port}@localhost",
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-kernel inet_dist_use_interface {127,0,0,1}"
            ),
            "ERL_EPMD_PORT": str(self._epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self) -> RabbitMQBroker:
        if not installed():
            raise BrokerUnavailable(
                "rabbitmq-server is not installed (Debian: apt-get install "
                "rabbitmq-server; `make test` does this when run as root)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "server.out").open("wb")
        self._process = subprocess.Popen(
            [str(SERVER)],
            env=self._environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:  # the AMQP listener opens last, once the broker is ready
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                pika.BlockingConnection(pika.URLParameters(self.url)).close()
                return self
            except (OSError, pika.exceptions.AMQPError):
                time.sleep(0.25)
        output = (self.directory / "server.out").read_text(errors="replace")[-2000:]
        self.stop()
        raise BrokerUnavailable(f"RabbitMQ did not start:\n{output}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._process = None
        # epmd detaches from the broker's session; stop it through its own port.
        subprocess.run(
            [EPMD, "-kill"],
            env={**os.environ, "ERL_EPMD_PORT": str(self._epmd_port)},
            capture_output=True,
            check=False,
        )
