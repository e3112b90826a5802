"""A campaign client the tests run as a real process, to kill it and resume its run.

`python -m testing.resumable FEDERATION_FILE LOG_PATH --tasks N [--seconds S]
[--take K] [--resume RUN_DIR]` submits tasks of `testing.tasks:logged_run` (index
0..N-1), or resumes the run, then takes every result (or only K, and then waits to
be killed). It prints `run <dir>` once started and `delivered <index> <success>`
per result taken, flushed at once, so that a test can kill it between any two
results and know what the thinker had taken. `Client` runs it for a test.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from colmena_fx.federation import Federation

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testing.resumable")
    parser.add_argument("federation", type=Path)
    parser.add_argument("log_path")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=0.2)
    parser.add_argument("--take", type=int)
    parser.add_argument("--resume", type=Path)
    args = parser.parse_args(argv)
    federation = Federation.from_file(args.federation, resume=args.resume)
    with federation:
        print(f"run {federation.run_dir}", flush=True)
        if args.resume is None:
            for index in range(args.tasks):
                federation.submit(
                    "logged_run", args.log_path, index, args.seconds,
                    task_info={"index": index},
                )  # fmt: skip
            waiting = args.tasks
        else:
            waiting = len(federation.resumed_pending)
        if args.take is not None:
            waiting = min(waiting, args.take)
        for _ in range(waiting):
            result = federation.get_result(timeout=120)
            if result is None:
                print("timed out", flush=True)
                return 1
            print(f"delivered {result.task_info['index']} {result.success}", flush=True)
        if args.take is not None:
            print("waiting", flush=True)
            threading.Event().wait()  # until killed
    return 0


class Client:
    """`main` in a process of its own, watched line by line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "testing.resumable", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def delivered(self) -> list[int]:
        """Indexes of the results the client took, in order."""
        with self._changed:
            return [int(line.split()[1]) for line in self.lines
                    if line.startswith("delivered ")]  # fmt: skip

    def wait_for(self, what: str, ready: object, timeout: float = 120) -> None:
        """Wait until `ready()` holds; fail with the client's output if it exits."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not ready():  # type: ignore[operator]
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    output = "\n".join(self.lines[-40:])
                    raise AssertionError(f"client: no {what}; its output:\n{output}")
                self._changed.wait(min(left, 0.5))

    @property
    def run_dir(self) -> Path:
        self.wait_for("run line", lambda: any(x.startswith("run ") for x in self.lines))
        line = next(x for x in self.lines if x.startswith("run "))
        return Path(line.split(" ", 1)[1])

    def kill(self) -> None:
        """kill -9, as a crash or a dropped session would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._reader.join(10)

    def wait(self, timeout: float = 120) -> int:
        code = self.process.wait(timeout)
        self._reader.join(10)
        return code


if __name__ == "__main__":
    sys.exit(main())
