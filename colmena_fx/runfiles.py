"""The files that make a run directory resumable besides its tasks.

- `federation.json`: the federation and site settings the run started with, so that
  `Federation.resume(run_dir)` needs nothing but the directory;
- `client.lock`: held (an exclusive POSIX record lock, which forked children do
  not share) by the one client steering the run. A
  second client on the same directory would send every unfinished task again and
  split the results between the two; it is refused instead, naming the first.
  The kernel drops the lock when its holder dies, however it dies.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

from colmena_fx.config import FederationConfig
from colmena_fx.config import SiteConfig
from colmena_fx.exceptions import RunDirectoryError
from colmena_fx.models import HOST

SNAPSHOT_NAME = "federation.json"
LOCK_NAME = "client.lock"


def write_snapshot(
    run_dir: Path, config: FederationConfig, sites: dict[str, SiteConfig]
) -> None:
    """Keep the settings of the run, and the files they were read from."""
    snapshot = {
        "federation": {
            "source": _absolute(config.source),
            "config": config.model_dump(mode="json"),
        },
        "sites": {
            name: {
                "source": _absolute(site.source),
                "config": site.model_dump(mode="json"),
            }
            for name, site in sites.items()
        },
    }
    path = Path(run_dir) / SNAPSHOT_NAME
    path.write_text(json.dumps(snapshot, indent=1))


def read_snapshot(run_dir: Path) -> tuple[FederationConfig, dict[str, SiteConfig]]:
    """The settings a run started with; `RunDirectoryError` if it kept none."""
    path = Path(run_dir) / SNAPSHOT_NAME
    try:
        snapshot = json.loads(path.read_text())
    except FileNotFoundError:
        raise RunDirectoryError(
            f"cannot resume {run_dir}: it has no {SNAPSHOT_NAME}; pass the run "
            f"directory of a campaign, or resume with Federation.from_file(FILE, "
            f"resume=RUN_DIR) to take the settings from the federation file"
        ) from None
    config = FederationConfig.model_validate(snapshot["federation"]["config"])
    config.source = _path(snapshot["federation"]["source"])
    sites: dict[str, SiteConfig] = {}
    for name, entry in snapshot["sites"].items():
        site = SiteConfig.model_validate(entry["config"])
        site.source = _path(entry["source"])
        sites[name] = site
    return config, sites


def _absolute(path: Path | None) -> str | None:
    """As an absolute path: a run may be resumed from another directory."""
    return str(Path(path).resolve()) if path else None


def _path(value: Any) -> Path | None:
    return Path(value) if value else None


#: Run directories locked by this process: a record lock does not exclude its own
#: process, so a second federation here on the same run is refused by this set.
_HELD: set[Path] = set()
_HELD_LOCK = threading.Lock()


class ClientLock:
    """The exclusive claim of one client on a run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir).resolve() / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise `RunDirectoryError` naming its holder."""
        with _HELD_LOCK:
            if self.path in _HELD:
                raise self._taken(f"pid {os.getpid()} on {HOST}: this process")
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # EAGAIN or EACCES: another process holds it
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                os.close(fd)
                raise self._taken(holder or "unknown") from None
            _HELD.add(self.path)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {HOST}\n".encode(), 0)
        self._fd = fd

    def _taken(self, holder: str) -> RunDirectoryError:
        return RunDirectoryError(
            f"the run {self.path.parent} is steered by another client ({holder}): "
            f"stop it first, or resume a run no client holds"
        )

    def release(self) -> None:
        if self._fd is not None:
            with _HELD_LOCK:
                os.close(self._fd)  # closing drops the lock
                _HELD.discard(self.path)
            self._fd = None
