"""Functions the tests run on workers; importable there because the repo root is on
the endpoint's PYTHONPATH."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def echo(value: Any) -> Any:
    return value


def add(a: float, b: float = 0) -> float:
    return a + b


def fail_with(message: str) -> None:
    def inner_helper() -> None:
        raise ValueError(message)

    inner_helper()


def sleep_then(seconds: float, value: Any = None) -> Any:
    time.sleep(seconds)
    return value


def die() -> None:
    """Kill the worker process outright, as a segfault or the OOM killer would."""
    os._exit(17)


def host_pid() -> int:
    return os.getpid()


def getenv(name: str) -> str | None:
    """The worker's value of an environment variable."""
    return os.environ.get(name)


class _Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("this object refuses to be pickled")


def return_unpicklable() -> object:
    return _Unpicklable()


def make_bytes(size: int) -> bytes:
    """A result of `size` bytes, made on the worker."""
    return b"x" * size


def make_array(size: int) -> Any:
    """A float64 array of `size` bytes, made on the worker."""
    import numpy as np

    return np.arange(size // 8, dtype=np.float64)


def checksum(array: Any) -> float:
    """A number that depends on every element, so each byte must have arrived."""
    return float(array.sum())


def proxy_state(value: Any) -> tuple[str, bool]:
    """What the function was given: its class name and, for a proxy, if resolved."""
    from proxystore.proxy import Proxy
    from proxystore.proxy import is_resolved

    if isinstance(value, Proxy):
        return "Proxy", is_resolved(value)
    return type(value).__name__, True


def logged_run(log_path: str, index: int, seconds: float = 0.0) -> int:
    """Sleep, then append `index` to `log_path`: one line per run that finished.

    A task that ran twice shows as two lines, whichever site or client sent it.
    """
    time.sleep(seconds)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{index}\n".encode())
    finally:
        os.close(fd)
    return index


def task_context() -> Any:
    """What `current_task()` tells the function on its worker."""
    from colmena_fx.taskcontext import current_task

    return current_task()


def count_up(n: int, gate: str | None = None) -> Iterator[int]:
    """Yield 0 to n - 1 and return a summary; with `gate`, wait after the first
    item until that file exists (the test makes it once it has the item)."""
    from testing.wait import wait_until

    for i in range(n):
        yield i
        if i == 0 and gate is not None:
            wait_until(Path(gate).exists, 60, f"gate file {gate}")
    return f"counted {n}"


def count_then_fail(n: int, message: str) -> Iterator[int]:
    """Yield 0 to n - 1, then raise."""
    yield from range(n)
    raise ValueError(message)


def count_hidden(n: int, gate: str | None = None) -> Iterator[int]:
    """`count_up`, from a function that is no generator function itself (as a
    decorated generator is): only `stream: true` streams it live."""
    return count_up(n, gate)


def yield_bytes(*sizes: int) -> Iterator[bytes]:
    """One item of each size, made on the worker."""
    for size in sizes:
        yield b"x" * size
