"""Lend slots to one pool while something runs, then hand them on: Colmena's
`ReallocatorThread`, which `@event_responder(reallocate_resources=True)` uses."""

from __future__ import annotations

import logging
import threading

from colmena_fx.exceptions import UsageError
from colmena_fx.thinker.resources import ResourceCounter

log = logging.getLogger(__name__)


class ReallocatorThread(threading.Thread):
    """Moves slots from `gather_from` to `gather_to`, `slot_step` at a time, until
    `gather_to` holds `max_slots` (None: no cap) or `stop_event` is set; once it is
    set, moves every slot of `gather_to` to `disperse_to` (kept where it is if the
    two are the same pool).

    `cancel_if` (the thinker's `done`, for an event responder) abandons the
    gathering and the final move: a slot held by a task that will never release it
    must not keep a finished campaign waiting.
    """

    def __init__(
        self,
        resource_counter: ResourceCounter,
        gather_from: str | None,
        gather_to: str | None,
        disperse_to: str | None,
        max_slots: int | None = None,
        stop_event: threading.Event | None = None,
        slot_step: int = 1,
        logger_name: str | None = None,
        cancel_if: threading.Event | None = None,
    ) -> None:
        super().__init__(daemon=True, name="cfx-reallocate")
        if slot_step < 1:
            raise ValueError(f"slot_step must be >= 1, got {slot_step}")
        self.resource_counter = resource_counter
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.gather_from, self.gather_to = gather_from, gather_to
        self.disperse_to = disperse_to
        self.max_slots, self.slot_step = max_slots, slot_step
        self.cancel_if = cancel_if
        self.logger = log if logger_name is None else logging.getLogger(logger_name)
        #: Slots this thread moved into `gather_to`.
        self.gathered = 0
        self._either = _AnyOf(self.stop_event, cancel_if)

    def _cancelled(self) -> bool:
        return self.cancel_if is not None and self.cancel_if.is_set()

    def run(self) -> None:
        rec, step = self.resource_counter, self.slot_step
        self.logger.info(
            "gathering up to %s slots into %r from %r, %d at a time",
            self.max_slots, self.gather_to, self.gather_from, step,
        )  # fmt: skip
        while not self._either.is_set() and (
            self.max_slots is None
            or rec.allocated_slots(self.gather_to) < self.max_slots
        ):
            if rec.allocated_slots(self.gather_from) < step:  # nothing to take now
                self._either.wait(rec.poll_s)
                continue
            try:
                moved = rec.reallocate(
                    self.gather_from, self.gather_to, step, cancel_if=self._either
                )
            except UsageError:  # another thread took those slots meanwhile
                continue
            self.gathered += step if moved else 0
        while not self.stop_event.wait(rec.poll_s):
            if self._cancelled():
                return
        if self.gather_to != self.disperse_to and not self._cancelled():
            rec.reallocate(
                self.gather_to, self.disperse_to, "all", cancel_if=self.cancel_if
            )
            self.logger.info(
                "slots of %r moved to %r", self.gather_to, self.disperse_to
            )


class _AnyOf:
    """An event-like view that is set when either of two events is."""

    def __init__(self, first: threading.Event, second: threading.Event | None) -> None:
        self.first, self.second = first, second

    def is_set(self) -> bool:
        return self.first.is_set() or (self.second is not None and self.second.is_set())

    def wait(self, timeout: float) -> bool:
        if self.second is None:
            return self.first.wait(timeout)
        return self.first.wait(timeout / 2) or self.second.wait(timeout / 2)
