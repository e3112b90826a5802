"""Slots of compute shared between kinds of task, and moved between them at run time.

A thinker with 8 workers might give 6 to simulations and 2 to training, then move
them all to simulations while no model is being trained. Slots start unallocated
(the pool `None`); a pool's *allocated* slots are those assigned to it, its
*available* slots those not acquired by a running task.

The calls keep Colmena's names and defaults (`ResourceCounter(8)`, `release()`,
`reallocate(a, b, "all")`), but a timeout is `None` to wait forever: Colmena's
`-1` is refused with that fix rather than read as "forever" by one call and as
"already past" by another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any
from typing import Literal
from typing import Protocol

from colmena_fx.exceptions import UsageError


class CancelFlag(Protocol):
    """What `cancel_if` needs: a `threading.Event`, or anything with `is_set`."""

    def is_set(self) -> bool: ...


#: `reallocate`'s count: a number of slots, or every slot allocated to the pool.
SlotCount = int | Literal["all"]


class ResourceCounter:
    """Thread-safe counts of allocated and available slots per task type."""

    #: Longest wait between checks of a `cancel_if` event, in seconds.
    poll_s = 0.05

    def __init__(self, total_slots: int, task_types: Iterable[str] = ()) -> None:
        if total_slots < 0:
            raise UsageError(f"total_slots must be >= 0, got {total_slots}")
        names = list(task_types)
        if None in names:
            raise UsageError(
                "None is the pool of unallocated slots, not a task type: list only "
                "the named task types"
            )
        if len(set(names)) != len(names):
            raise UsageError(f"task_types lists a name twice: {names}")
        self.total_slots = total_slots
        self.task_types: list[str] = names
        self._allocated: dict[str | None, int] = {None: total_slots}
        self._available: dict[str | None, int] = {None: total_slots}
        for task_type in names:
            self._allocated[task_type] = 0
            self._available[task_type] = 0
        self._changed = threading.Condition()

    def _check(self, task_type: str | None) -> None:
        if task_type not in self._allocated:
            raise UsageError(
                f"unknown task type {task_type!r}: the pools are {self.task_types} "
                f"and None (unallocated)"
            )

    @property
    def unallocated_slots(self) -> int:
        with self._changed:
            return self._allocated[None]

    def allocated_slots(self, task_type: str | None) -> int:
        self._check(task_type)
        with self._changed:
            return self._allocated[task_type]

    def available_slots(self, task_type: str | None) -> int:
        self._check(task_type)
        with self._changed:
            return self._available[task_type]

    def _wait_for(
        self,
        task_type: str | None,
        n_slots: int | None,
        timeout: float | None,
        cancel_if: CancelFlag | None,
    ) -> bool:
        """With the lock held: wait until `n_slots` are available in `task_type`
        (None: every slot allocated to it, however many that is by then)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._available[task_type] < (
            self._allocated[task_type] if n_slots is None else n_slots
        ):
            if cancel_if is not None and cancel_if.is_set():
                return False
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            wait = self.poll_s if cancel_if is not None else remaining
            if remaining is not None and wait is not None:
                wait = min(wait, remaining)
            self._changed.wait(wait)
        return True

    def acquire(
        self,
        task_type: str | None,
        n_slots: int,
        timeout: float | None = None,
        cancel_if: CancelFlag | None = None,
    ) -> bool:
        """Take `n_slots` of `task_type` for a task; False on timeout or cancel."""
        self._check(task_type)
        _check_timeout(timeout)
        with self._changed:
            if not self._wait_for(task_type, n_slots, timeout, cancel_if):
                return False
            self._available[task_type] -= n_slots
            return True

    def release(
        self,
        task_type: str | None = None,
        n_slots: int = 1,
        rerequest: bool = False,
        timeout: float | None = None,
    ) -> bool | None:
        """Give back `n_slots` of `task_type` taken by `acquire`.

        With `rerequest`, take them again at once (as `acquire` would, so another
        waiting thread may get them first) and return whether that succeeded.
        """
        self._check(task_type)
        with self._changed:
            in_use = self._allocated[task_type] - self._available[task_type]
            if n_slots > in_use:
                raise UsageError(
                    f"cannot release {n_slots} slots of {task_type!r}: only {in_use} "
                    f"are acquired"
                )
            self._available[task_type] += n_slots
            self._changed.notify_all()
        return self.acquire(task_type, n_slots, timeout=timeout) if rerequest else None

    def reallocate(
        self,
        task_from: str | None,
        task_to: str | None,
        n_slots: SlotCount,
        timeout: float | None = None,
        cancel_if: CancelFlag | None = None,
        block: bool = True,
        callback: Callable[[], Any] | None = None,
    ) -> bool:
        """Move `n_slots` (or `"all"` allocated) from one pool to another, once
        they are free in the first. `"all"` counts the slots the pool holds
        once they are all free: another thread may move some away meanwhile.

        With `block=False` the move happens on a thread of its own, which then
        calls `callback`; the call returns True at once.
        """
        self._check(task_from)
        self._check(task_to)
        _check_timeout(timeout)
        if task_from == task_to:
            raise UsageError(
                f"cannot move slots from {task_from!r} to itself: name two pools"
            )
        if n_slots != "all" and (not isinstance(n_slots, int) or n_slots < 0):
            raise UsageError(f"n_slots must be a count >= 0 or 'all', not {n_slots!r}")
        if not block:
            threading.Thread(
                target=self._reallocate_then,
                args=(task_from, task_to, n_slots, timeout, cancel_if, callback),
                name="cfx-reallocate",
                daemon=True,
            ).start()
            return True
        with self._changed:
            wanted = None if n_slots == "all" else n_slots
            if wanted is not None and wanted > self._allocated[task_from]:
                raise UsageError(
                    f"cannot move {wanted} slots from {task_from!r}: it has only "
                    f"{self._allocated[task_from]}"
                )
            if not self._wait_for(task_from, wanted, timeout, cancel_if):
                return False
            count = self._allocated[task_from] if wanted is None else wanted
            self._allocated[task_from] -= count
            self._available[task_from] -= count
            self._allocated[task_to] += count
            self._available[task_to] += count
            self._changed.notify_all()
            return True

    def _reallocate_then(
        self,
        task_from: str | None,
        task_to: str | None,
        n_slots: SlotCount,
        timeout: float | None,
        cancel_if: CancelFlag | None,
        callback: Callable[[], Any] | None,
    ) -> None:
        self.reallocate(
            task_from, task_to, n_slots, timeout=timeout, cancel_if=cancel_if
        )
        if callback is not None:
            callback()


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise UsageError(
            f"timeout must be None (wait forever) or >= 0 seconds, not {timeout!r}"
        )
