"""Run directories, made before anything starts, or refused with a RunDirectoryError.

A bad `run_dir` (a file, a path under a file, a directory this user cannot write)
would otherwise surface later and elsewhere: as an endpoint log that cannot be
opened, a journal thread dying, a bare `NotADirectoryError`. Each error here names
the directory, what is in the way, and the fix.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from colmena_fx.exceptions import RunDirectoryError

#: What to do about a bad run directory of a federation (the run, probe, demo).
FEDERATION_FIX = (
    "point 'run_dir' (in the federation file, or the run_dir or --run-dir you "
    "passed) at a directory you can write"
)


def new_run_dir(parent: Path, name: str, fix: str = FEDERATION_FIX) -> Path:
    """A fresh `<parent>/<name>-<time>[-n]` directory, made with its parents."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in range(1000):
        path = Path(parent) / (f"{name}-{stamp}" + (f"-{suffix}" if suffix else ""))
        try:
            path.mkdir(parents=True)
        except FileExistsError as exc:
            if path.is_dir():
                continue  # another run started in the same second
            raise _refused(path, exc, fix) from None
        except OSError as exc:
            raise _refused(path, exc, fix) from None
        return _writable(path, fix)
    raise RunDirectoryError(f"cannot make a new run directory under {parent}: {fix}")


def make_run_dir(path: Path, fix: str = FEDERATION_FIX) -> Path:
    """`path` as a directory this process can write, made with its parents if need be.

    An existing read-only directory is refused too: the first file written into it
    would fail, after the endpoint or run had started.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _refused(path, exc, fix) from None
    return _writable(path, fix)


def _writable(path: Path, fix: str) -> Path:
    # os.access asks the kernel as this user: root passes, as root may write anyway.
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunDirectoryError(
            f"cannot write in the run directory {path}: permission denied; {fix}"
        )
    return path


def _refused(path: Path, exc: OSError, fix: str) -> RunDirectoryError:
    if isinstance(exc, NotADirectoryError | FileExistsError):
        why = f"{_file_in_the_way(path)} is a file, not a directory"
    else:
        why = f"{exc.strerror or exc} ({exc.filename or path})"
    return RunDirectoryError(f"cannot make the run directory {path}: {why}; {fix}")


def _file_in_the_way(path: Path) -> Path:
    """The first of `path` and its parents that exists as something but a directory."""
    for step in [*reversed(path.parents), path]:
        if step.exists() and not step.is_dir():
            return step
    return path
