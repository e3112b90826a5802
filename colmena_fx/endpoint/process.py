"""Start, watch and stop an embedded endpoint as a child process.

The endpoint runs in a session of its own, and every process it starts (the Parsl
interchange, worker pools and their workers) stays in that session even when they
change process group, so stopping the session cleans up everything, including the
orphans left when an endpoint was killed. `reap` does that, and removes the private
socket directory a killed endpoint could not remove itself, so that an endpoint
can be restarted without its predecessor's engine still holding workers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from colmena_fx.config import SiteConfig
from colmena_fx.endpoint.wire import ConnectionInfo
from colmena_fx.endpoint.wire import error_file
from colmena_fx.exceptions import ConfigError
from colmena_fx.exceptions import EndpointError

#: Rounds of killing what is left in a session: a worker pool that is being killed
#: may have forked one more worker after the first look.
_KILL_ROUNDS = 5
#: How long each round waits for what it killed to die.
_KILL_WAIT_S = 2.0


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class EndpointProcess:
    """One site's endpoint process, its log and its connection file."""

    def __init__(self, site: SiteConfig, run_dir: Path) -> None:
        self.site = site
        self.run_dir = Path(run_dir).resolve()
        self.log_path = self.run_dir / "endpoint.log"
        self.connection_file = self.run_dir / "connection.json"
        self._popen: subprocess.Popen[bytes] | None = None
        self._session: int | None = None
        #: How the running endpoint is reached, once it said so.
        self.info: ConnectionInfo | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(
        self, timeout: float | None = None, cancel: threading.Event | None = None
    ) -> ConnectionInfo:
        """Spawn the endpoint and wait until it has written its connection file.

        Setting `cancel` while it waits kills the endpoint and everything it
        started, and raises `EndpointError`: a stop must not wait for a start.
        """
        self.info = None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.connection_file.unlink(missing_ok=True)
        error_file(self.connection_file).unlink(missing_ok=True)
        site_file = self.site.source
        if site_file is None:  # built in Python: give the child a file to read
            site_file = self.run_dir / "site.json"
            site_file.write_text(self.site.model_dump_json(indent=2))
        env = {**os.environ, **self.site.local.env}
        # The engine launches its interchange and workers by command name.
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        # A local site shares this machine: its workers import the same modules
        # the client can, including those beside the campaign script.
        env["PYTHONPATH"] = os.pathsep.join(
            [os.getcwd(), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        )
        command = [
            sys.executable, "-m", "colmena_fx.endpoint", str(Path(site_file).resolve()),
            "--run-dir", str(self.run_dir),
            "--connection-file", str(self.connection_file),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.run_dir,
                start_new_session=True,
            )
        self._session = self._popen.pid
        deadline = time.monotonic() + (timeout or self.site.local.start_timeout_s)
        stopping = cancel or threading.Event()
        while time.monotonic() < deadline:
            if self.connection_file.exists():
                self.info = ConnectionInfo.read(self.connection_file)
                return self.info
            code = self._popen.poll()
            if code is not None:
                tail = _log_tail(self.log_path)
                reason = error_file(self.connection_file)
                self.reap()  # an engine that died half-started may have left workers
                if code == 2 and reason.exists():
                    raise ConfigError(reason.read_text())
                raise EndpointError(
                    f"the endpoint of site {self.site.name!r} exited with status "
                    f"{code} "
                    f"while starting; its log {self.log_path} ends with:\n{tail}"
                )
            if stopping.wait(0.05):
                self.kill()
                self.reap()
                raise EndpointError(
                    f"site {self.site.name!r} was stopped while its endpoint started"
                )
        self.stop()
        raise EndpointError(
            f"the endpoint of site {self.site.name!r} did not start within "
            f"{timeout or self.site.local.start_timeout_s:.0f} s; see {self.log_path}"
        )

    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the endpoint to stop its engine, then clean up whatever is left."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            self._popen.send_signal(signal.SIGCONT)  # a stopped one cannot handle it
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait()
        self.reap()

    def kill(self) -> None:
        """Kill the endpoint process alone, as a crash would (used by tests)."""
        if self._popen is not None:
            self._popen.kill()
            self._popen.wait()

    def reap(self) -> None:
        """Clean up after an endpoint that exited: what it started, and its files.

        The engine's interchange and workers would otherwise keep running (and
        holding cores, GPUs or a batch job) with nobody to send them work.
        """
        if self._popen is not None and self._popen.poll() is None:
            return  # still running: stop() it instead
        self._kill_session()
        self.connection_file.unlink(missing_ok=True)
        private = _private_dir(self.info)
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)

    def _kill_session(self) -> None:
        if self._session is None:
            return
        for _ in range(_KILL_ROUNDS):
            left = session_processes(self._session)
            if not left:
                return
            for proc in left:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            _wait_gone(left, _KILL_WAIT_S)


def session_processes(session: int) -> list[psutil.Process]:
    """The live processes of `session` but this one (zombies are dead enough)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if (
                proc.pid != os.getpid()
                and os.getsid(proc.pid) == session
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def _wait_gone(processes: list[psutil.Process], timeout: float) -> None:
    """Wait until each is gone or a zombie: an orphan's zombie waits on its init,
    which in a container may never reap it, so `psutil.wait_procs` would not do."""
    deadline = time.monotonic() + timeout
    left = list(processes)
    while left and time.monotonic() < deadline:
        left = [proc for proc in left if _alive(proc)]
        if left:
            time.sleep(0.02)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _private_dir(info: ConnectionInfo | None) -> Path | None:
    """The private directory of an ipc endpoint's socket (`cfx-*`, made by the
    endpoint), which only the endpoint's own shutdown removes."""
    if info is None or not info.address.startswith("ipc://"):
        return None
    directory = Path(info.address.removeprefix("ipc://")).parent
    return directory if directory.name.startswith("cfx-") else None
