"""Helpers for tests that break sites: health recorders, gates, raw link clients."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psutil
import zmq

from colmena_fx.endpoint import wire
from colmena_fx.transports.health import Health
from colmena_fx.transports.health import HealthChange
from colmena_fx.transports.health import HealthTracker


class HealthLog:
    """Every health change of one site from now on, beside the listener it had."""

    def __init__(self, tracker: HealthTracker) -> None:
        self.changes: list[HealthChange] = []
        self._lock = threading.Lock()
        self._previous = tracker.listener
        tracker.listener = self._record

    def _record(self, change: HealthChange) -> None:
        with self._lock:
            self.changes.append(change)
        if self._previous is not None:
            self._previous(change)

    def healths(self) -> list[Health]:
        """The states passed through, a state repeated (new reason) only once."""
        with self._lock:
            states = [change.health for change in self.changes]
        return [s for i, s in enumerate(states) if i == 0 or states[i - 1] is not s]

    def reasons(self, health: Health) -> list[str]:
        with self._lock:
            return [c.reason for c in self.changes if c.health is health]


def wait_for_file(path: str, timeout_s: float = 60.0) -> str:
    """Run on a worker: hold it until the test creates `path` (a gate)."""
    deadline = time.monotonic() + timeout_s
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"nobody created {path} within {timeout_s:g} s")
        time.sleep(0.01)
    return path


def hold(gate: str, started: str, timeout_s: float = 60.0) -> str:
    """Run on a worker: say it started (creates `started`), then wait for `gate`."""
    Path(started).touch()
    return wait_for_file(gate, timeout_s)


def gone(process: psutil.Process) -> bool:
    """Exited: a zombie counts, as init may never reap an orphan in a container."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def raw_client(
    ctx: zmq.Context[zmq.Socket[Any]], info: wire.ConnectionInfo
) -> zmq.Socket[Any]:
    """A DEALER with the run's client key: the endpoint reads all it sends."""
    sock = ctx.socket(zmq.DEALER)
    sock.curve_serverkey = info.server_public_key.encode()
    sock.curve_publickey = info.client_public_key.encode()
    sock.curve_secretkey = info.client_secret_key.encode()
    sock.linger = 0
    sock.connect(info.address)
    return sock
