"""Colmena's `colmena.thinker.resources`: `ResourceCounter` with its argument
order and `timeout=-1` for forever, and `ReallocatorThread`.

colmena-fx's counter takes `None` for "wait forever" and refuses negative
timeouts; Colmena's calls pass `-1` (and treat any timeout <= 0 as forever), and
`reallocate` takes `block` and `callback` before `timeout`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from colmena_fx.thinker.reallocator import ReallocatorThread
from colmena_fx.thinker.resources import CancelFlag
from colmena_fx.thinker.resources import ResourceCounter as NativeCounter
from colmena_fx.thinker.resources import SlotCount

__all__ = ["ReallocatorThread", "ResourceCounter"]


def _forever(timeout: float | None) -> float | None:
    return None if timeout is None or timeout <= 0 else timeout


class ResourceCounter(NativeCounter):
    """`colmena.thinker.resources.ResourceCounter`'s signatures."""

    def acquire(
        self,
        task_type: str | None,
        n_slots: int,
        timeout: float | None = -1.0,
        cancel_if: CancelFlag | None = None,
    ) -> bool:
        return super().acquire(task_type, n_slots, _forever(timeout), cancel_if)

    def release(
        self,
        task_type: str | None = None,
        n_slots: int = 1,
        rerequest: bool = False,
        timeout: float | None = -1,
    ) -> bool | None:
        return super().release(task_type, n_slots, rerequest, _forever(timeout))

    def reallocate(  # type: ignore[override]
        self,
        task_from: str | None,
        task_to: str | None,
        n_slots: SlotCount,
        block: bool = True,
        callback: Callable[[], Any] | None = None,
        timeout: float | None = -1,
        cancel_if: CancelFlag | None = None,
    ) -> bool:
        return super().reallocate(
            task_from, task_to, n_slots, _forever(timeout), cancel_if,
            block=block, callback=callback,
        )  # fmt: skip
