"""The real Globus Compute endpoint process, started as a parent endpoint would.

A deployed multi-user endpoint registers with the web service and then starts one
user endpoint process per user, handing it the queue credentials on stdin. Here the
stand-in service does the registration and this class plays the parent: it runs
`globus-compute-endpoint _start-user-endpoint` (the endpoint package's own
interchange and engine) with the engine block of a site file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO
from typing import Any

import yaml

from testing.gcservice.service import ComputeServiceStandIn


class EndpointProcess:
    def __init__(
        self,
        service: ComputeServiceStandIn,
        name: str,
        engine: dict[str, Any],
        directory: Path,
        heartbeat_period: int = 1,
    ) -> None:
        self.service = service
        self.name = name
        self.engine = engine
        self.directory = directory
        self.heartbeat_period = heartbeat_period
        self.endpoint_id: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(
        self, timeout_s: float = 60.0, endpoint_id: str | None = None
    ) -> EndpointProcess:
        """Register (again, under `endpoint_id`) and start the endpoint process."""
        creds = self.service.register_endpoint(self.name, endpoint_id)
        self.endpoint_id = creds["endpoint_id"]
        endpoint_dir = self.directory / self.name
        endpoint_dir.mkdir(parents=True, exist_ok=True)
        config = {"engine": self.engine, "heartbeat_period": self.heartbeat_period}
        stdin = json.dumps(
            {"ep_info": {}, "config": yaml.safe_dump(config), "amqp_creds": creds}
        )
        bin_dir = str(Path(sys.executable).parent)
        env = {
            **os.environ,
            "GLOBUS_COMPUTE_USER_DIR": str(self.directory),
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])
            ),
        }
        with (self.directory / f"{self.name}.out").open("ab") as log:
            self._process = self._spawn(bin_dir, env, log)
        assert self._process.stdin is not None
        self._process.stdin.write(stdin.encode())
        self._process.stdin.close()
        self._wait_online(timeout_s)
        return self

    def _spawn(
        self, bin_dir: str, env: dict[str, str], log: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                str(Path(bin_dir) / "globus-compute-endpoint"),
                "_start-user-endpoint",
                self.name,
            ],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.directory,
            start_new_session=True,
        )

    def _wait_online(self, timeout_s: float) -> None:
        assert self._process is not None and self.endpoint_id is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self.service.endpoint_status(self.endpoint_id)["status"] == "online":
                return
            time.sleep(0.2)
        output = self.output()[-3000:]
        self.kill()
        raise RuntimeError(f"endpoint {self.name} did not come online:\n{output}")

    def restart(self, timeout_s: float = 60.0) -> EndpointProcess:
        """Crash the endpoint and start it again under the same id, as a facility's
        process supervisor would: the queues (and the broker's unacknowledged
        deliveries, requeued when the old process's connection dropped) are kept,
        everything the old process had taken from them is gone."""
        self.kill()
        # The endpoint refuses to start for three heartbeat periods (15 s at least)
        # after a crash, unless the PID file of the dead process is removed, as its
        # message says to do and a supervisor that saw the process die may.
        (self.directory / self.name / "daemon.pid").unlink(missing_ok=True)
        return self.start(timeout_s, endpoint_id=self.endpoint_id)

    def output(self) -> str:
        path = self.directory / f"{self.name}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        """End the endpoint and everything it started, at once (as a crash would)."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            self.kill()
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        self.kill()  # whatever is left of the session: interchange, workers
