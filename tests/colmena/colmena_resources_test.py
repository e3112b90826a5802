"""Colmena's `ResourceCounter` and `ReallocatorThread`
(colmena/thinker/tests/test_resources.py) from `colmena_fx.colmena.thinker`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from colmena_fx.colmena.thinker import ReallocatorThread as ThinkerReallocator
from colmena_fx.colmena.thinker.resources import ReallocatorThread
from colmena_fx.colmena.thinker.resources import ResourceCounter
from colmena_fx.exceptions import UsageError
from testing.wait import wait_until


@pytest.fixture
def rec() -> ResourceCounter:
    return ResourceCounter(8, ["ml", "sim"])


class Probe:
    """A `cancel_if` that is never set, and counts how often it was asked: the
    counter asks it while it waits, so a count > 0 means a call is waiting."""

    def __init__(self) -> None:
        self.asked = 0

    def is_set(self) -> bool:
        self.asked += 1
        return False


class Call(threading.Thread):
    """One blocking call of the counter, on a thread of its own."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.returned: Any = None
        self.start()

    def run(self) -> None:
        self.returned = self.call()

    def result(self) -> Any:
        self.join(timeout=10)
        assert not self.is_alive(), "the call is still waiting"
        return self.returned


def test_initialize(rec: ResourceCounter) -> None:
    assert rec.unallocated_slots == 8
    assert rec.available_slots(None) == 8


def test_without_task_types() -> None:
    rec = ResourceCounter(4)
    assert rec.unallocated_slots == 4
    assert rec.acquire(None, 4)
    assert rec.available_slots(None) == 0
    assert rec.release() is None  # Colmena's defaults: one slot of None
    assert rec.available_slots(None) == 1


def test_none_is_not_a_task_type() -> None:
    with pytest.raises(UsageError, match="None is the pool of unallocated"):
        ResourceCounter(4, [None, "sim"])  # type: ignore[list-item]


def test_allocations(rec: ResourceCounter) -> None:
    """Colmena's `test_allocations`, with events instead of sleeps."""
    # Move 8 nodes to the "ml" pool
    assert rec.reallocate(None, "ml", 8)
    assert rec.unallocated_slots == 0
    assert rec.available_slots("ml") == 8

    # Checkout all of them
    assert rec.acquire("ml", 8, timeout=1)
    assert rec.available_slots("ml") == 0
    assert rec.allocated_slots("ml") == 8

    # Request unavailable nodes to test a timeout
    assert not rec.acquire("ml", 1, timeout=0.02)

    # Release nodes
    assert rec.release("ml", 4, rerequest=False) is None
    assert rec.available_slots("ml") == 4

    # Release and re-request
    assert rec.release("ml", 4, rerequest=True, timeout=1)
    assert rec.available_slots("ml") == 4

    # Attempt a transfer that times out
    assert not rec.reallocate("ml", "sim", n_slots=5, timeout=0.01)
    assert rec.available_slots("ml") == 4

    # Attempt a transfer that completes
    assert rec.reallocate("ml", "sim", n_slots=4, timeout=4)
    assert rec.available_slots("sim") == 4
    assert rec.available_slots("ml") == 0
    assert rec.allocated_slots("sim") == 4
    assert rec.unallocated_slots == 0

    # Test out the "cancel if" events
    stop = threading.Event()
    stop.set()
    assert not rec.acquire("sim", n_slots=5, cancel_if=stop)
    assert rec.available_slots("sim") == 4

    stop.clear()
    waiting = Call(lambda: rec.acquire("sim", n_slots=5, cancel_if=stop))
    stop.set()
    assert waiting.result() is False
    assert rec.available_slots("sim") == 4

    # Test out reallocate all (4 of the 8 "ml" slots are still acquired)
    assert rec.reallocate("sim", "ml", "all")
    assert rec.allocated_slots("sim") == 0
    assert rec.allocated_slots("ml") == 8

    # Test out the non-blocking re-allocator: it cannot move 8 while 4 are taken
    trigger = threading.Event()
    assert rec.reallocate("ml", "sim", 8, block=False, callback=trigger.set)
    assert not trigger.is_set()
    assert rec.allocated_slots("ml") == 8

    rec.release("ml", 4)  # Release so that the reallocation can complete
    assert trigger.wait(timeout=10)
    assert rec.allocated_slots("sim") == 8


def test_acquire_waits_forever_with_timeout_minus_one() -> None:
    rec = ResourceCounter(1)
    assert rec.acquire(None, 1)
    probe = Probe()
    waiting = Call(lambda: rec.acquire(None, 1, timeout=-1, cancel_if=probe))
    # It waits through several of the counter's polls, where timeout=0 would
    # have given up at the first.
    wait_until(lambda: probe.asked >= 3, timeout=10, what="acquire waiting")
    assert waiting.is_alive()
    rec.release(None, 1)
    assert waiting.result() is True
    assert rec.available_slots(None) == 0


def test_release_and_rerequest() -> None:
    rec = ResourceCounter(2, ["sim"])
    rec.reallocate(None, "sim", 2)
    assert rec.acquire("sim", 2)
    assert rec.release("sim", 1, rerequest=True) is True
    assert rec.available_slots("sim") == 0
    with pytest.raises(UsageError, match="only 2 are acquired"):
        rec.release("sim", 3)


def test_reallocate_to_itself_refused(rec: ResourceCounter) -> None:
    with pytest.raises(UsageError, match="to itself"):
        rec.reallocate("ml", "ml", 1)
    with pytest.raises(UsageError, match="to itself"):
        rec.reallocate(None, None, "all")


def test_reallocate_all_waits_for_every_slot(rec: ResourceCounter) -> None:
    rec.reallocate(None, "ml", 8)
    assert rec.acquire("ml", 3)
    moved = Call(lambda: rec.reallocate("ml", "sim", "all"))
    rec.release("ml", 3)
    assert moved.result() is True
    assert (rec.allocated_slots("ml"), rec.allocated_slots("sim")) == (0, 8)


def test_reallocate_all_while_another_mover_takes_some(rec: ResourceCounter) -> None:
    """'all' is what the pool holds once its slots are free, even if another
    thread moved some away meanwhile (two reallocators gathering from one pool)."""
    rec.reallocate(None, "ml", 4)
    assert rec.acquire("ml", 2)
    probe = Probe()
    moved = Call(
        lambda: rec.reallocate("ml", "sim", "all", timeout=10, cancel_if=probe)
    )
    wait_until(lambda: probe.asked > 0, timeout=10, what="the move waiting")
    assert rec.reallocate("ml", None, 2)  # the 2 free ones go elsewhere
    rec.release("ml", 2)
    assert moved.result() is True
    assert rec.allocated_slots("ml") == 0
    assert rec.allocated_slots("sim") == 2
    assert rec.unallocated_slots == 6


def test_reallocate_without_blocking_calls_back(rec: ResourceCounter) -> None:
    done = threading.Event()
    assert rec.reallocate(None, "sim", 5, block=False, callback=done.set)
    assert done.wait(timeout=10)
    assert rec.allocated_slots("sim") == 5


def test_reallocator_exported_where_colmena_has_it() -> None:
    assert ReallocatorThread is ThinkerReallocator


def test_reallocator(rec: ResourceCounter) -> None:
    """Colmena's `test_reallocator`: gather up to `max_slots`, then hand every
    gathered slot on once stopped."""
    rec.reallocate(None, "sim", 8)

    # Gather up to the maximum
    stop = threading.Event()
    alloc = ReallocatorThread(
        rec, stop_event=stop, gather_from="sim", gather_to="ml",
        disperse_to=None, max_slots=2,
    )  # fmt: skip
    alloc.start()
    wait_until(lambda: rec.allocated_slots("ml") == 2, 10, "gathering 2 slots")
    assert alloc.is_alive()

    # Once stopped, the gathered slots move to "unallocated"
    stop.set()
    alloc.join(timeout=10)
    assert not alloc.is_alive()
    assert alloc.gathered == 2
    assert rec.unallocated_slots == 2
    assert rec.allocated_slots("sim") == 6

    # Without a maximum, it takes all there is
    stop.clear()
    alloc = ReallocatorThread(
        rec, stop_event=stop, gather_from="sim", gather_to="ml", disperse_to=None
    )
    alloc.start()
    wait_until(lambda: rec.allocated_slots("sim") == 0, 10, "gathering all")
    assert alloc.is_alive()
    stop.set()
    alloc.join(timeout=10)
    assert not alloc.is_alive()
    assert rec.unallocated_slots == 8


def test_reallocator_in_steps(rec: ResourceCounter) -> None:
    rec.reallocate(None, "sim", 8)
    assert rec.acquire("sim", 3)  # 5 free: 2 steps of 2, and 1 left over
    alloc = ReallocatorThread(rec, "sim", "ml", "sim", slot_step=2)
    alloc.start()
    wait_until(lambda: rec.allocated_slots("ml") == 4, 10, "gathering 2 steps")
    rec.release("sim", 1)  # 2 free: one more step
    wait_until(lambda: rec.allocated_slots("ml") == 6, 10, "gathering a 3rd step")
    alloc.stop_event.set()
    alloc.join(timeout=10)
    assert not alloc.is_alive()
    assert alloc.gathered == 6
    assert rec.allocated_slots("sim") == 8  # dispersed back


def test_reallocator_deadlock(rec: ResourceCounter) -> None:
    """Colmena's issue 43: two reallocators pulling from each other's pools."""
    rec.reallocate(None, "sim", 8)
    ml_alloc = ReallocatorThread(
        rec, gather_from="sim", gather_to="ml", disperse_to="sim", max_slots=8
    )
    sim_alloc = ReallocatorThread(
        rec, gather_from="ml", gather_to="sim", disperse_to="ml", max_slots=8
    )

    # The ML allocator pulls everything from sim to ml
    ml_alloc.start()
    wait_until(lambda: rec.available_slots("ml") == 8, 10, "ml gathering all")
    assert rec.acquire("ml", 8)

    # The sim allocator asks for them back, while ml holds them all
    sim_alloc.start()
    assert rec.available_slots("ml") == 0

    # Stop the ML allocator and free its slots: both must get through
    ml_alloc.stop_event.set()
    rec.release("ml", 8)
    ml_alloc.join(timeout=10)
    assert not ml_alloc.is_alive()
    sim_alloc.stop_event.set()
    sim_alloc.join(timeout=10)
    assert not sim_alloc.is_alive()
    assert rec.allocated_slots("ml") + rec.allocated_slots("sim") == 8
