"""A hook around every thread started inside a block.

Path B's thinker runs its agents in threads that live for one measurement only,
so neither a before/after sample of this process's threads nor a profiler enabled
in the main thread sees them. Wrapping `threading.Thread.run` while the block runs
does: the CPU accounting clocks them and `--profile` profiles them this way.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager

#: Called in the new thread as `hook(thread, run)`; it must call `run()`.
Hook = Callable[[threading.Thread, Callable[[], None]], None]


@contextmanager
def hooked_threads(hook: Hook) -> Iterator[None]:
    """Run every thread that starts inside the block through `hook`.

    Threads that override `run` (a subclass of `Thread`) are not hooked; those
    started with a `target`, as the thinker's agents are, are.
    """
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        hook(self, functools.partial(original, self))

    threading.Thread.run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        threading.Thread.run = original  # type: ignore[method-assign]
