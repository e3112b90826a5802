"""Slots of compute shared between kinds of task, and moved between them at run time.

A thinker with 8 workers might give 6 to simulations and 2 to training, then move
them all to simulations while no model is being trained. Slots start unallocated
(the pool `None`); a pool's *allocated* slots are those assigned to it, its
*available* slots those not acquired by a running task.
"""

from __future__ import annotations

import threading
import time

from colmena_fx.exceptions import UsageError


class ResourceCounter:
    """Thread-safe counts of allocated and available slots per task type."""

    #: Longest wait between checks of a `cancel_if` event, in seconds.
    poll_s = 0.05

    def __init__(self, total_slots: int, task_types: list[str]) -> None:
        if total_slots < 0:
            raise UsageError(f"total_slots must be >= 0, got {total_slots}")
        self.total_slots = total_slots
        self.task_types = list(task_types)
        self._allocated: dict[str | None, int] = {None: total_slots}
        self._available: dict[str | None, int] = {None: total_slots}
        for task_type in self.task_types:
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
        n_slots: int,
        timeout: float | None,
        cancel_if: threading.Event | None,
    ) -> bool:
        """With the lock held: wait until `n_slots` are available in `task_type`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._available[task_type] < n_slots:
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
        cancel_if: threading.Event | None = None,
    ) -> bool:
        """Take `n_slots` of `task_type` for a task; False on timeout or cancel."""
        self._check(task_type)
        with self._changed:
            if not self._wait_for(task_type, n_slots, timeout, cancel_if):
                return False
            self._available[task_type] -= n_slots
            return True

    def release(self, task_type: str | None, n_slots: int) -> None:
        """Give back `n_slots` of `task_type` taken by `acquire`."""
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

    def reallocate(
        self,
        task_from: str | None,
        task_to: str | None,
        n_slots: int,
        timeout: float | None = None,
        cancel_if: threading.Event | None = None,
    ) -> bool:
        """Move `n_slots` from one pool to another once they are free in the first."""
        self._check(task_from)
        self._check(task_to)
        with self._changed:
            if n_slots > self._allocated[task_from]:
                raise UsageError(
                    f"cannot move {n_slots} slots from {task_from!r}: it has only "
                    f"{self._allocated[task_from]}"
                )
            if not self._wait_for(task_from, n_slots, timeout, cancel_if):
                return False
            self._allocated[task_from] -= n_slots
            self._available[task_from] -= n_slots
            self._allocated[task_to] += n_slots
            self._available[task_to] += n_slots
            self._changed.notify_all()
            return True
