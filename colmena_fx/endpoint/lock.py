"""One endpoint per run directory: an exclusive lock on `<run dir>/endpoint.lock`.

Two endpoints in one directory would overwrite each other's connection file (and
the one that exits first would delete the other's) and mix their results; the
second start is refused before it writes anything. The lock holds while the
process lives and goes with it, however it ends (the kernel releases it), so a
stale file never blocks a restart. The file holds the owner's pid, for the message.

A POSIX record lock (`lockf`), not a `flock`: worker processes the engine forks
share the open file, and would hold a `flock` on after the endpoint died; a record
lock belongs to the process that took it alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import psutil

from colmena_fx.exceptions import EndpointError

LOCK_NAME = "endpoint.lock"


class RunDirLock:
    """The lock of one run directory, held from `acquire` until the process ends."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write this pid in it; `EndpointError` if it is taken."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # never truncate it
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # EAGAIN or EACCES: another process holds it
            owner = _read_pid(fd)
            os.close(fd)
            raise EndpointError(self._taken_message(owner)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go early (tests, a failed start); the file stays for the next one."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _taken_message(self, owner: int | None) -> str:
        who = f"pid {owner}" if owner is not None else "a process that gave no pid"
        if owner is not None and not psutil.pid_exists(owner):
            holders = ", ".join(str(pid) for pid in _holders(self.path)) or "unknown"
            return (
                f"another endpoint ({who}) ran in {self.run_dir} and exited, but "
                f"processes it started (pids {holders}) still hold {self.path}: "
                f"stop them, or give this one another --run-dir"
            )
        return (
            f"another endpoint ({who}) already runs in {self.run_dir}; stop it "
            f"first, or give this one another --run-dir"
        )


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _holders(path: Path) -> list[int]:
    """Processes with `path` open (those this user may look at)."""
    target = str(path.resolve())
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if any(f.path == target for f in proc.open_files()):
                found.append(proc.pid)
    return found
