"""ResourceCounter: slots acquired, released and moved between pools."""

from __future__ import annotations

import threading
import time

import pytest

from colmena_fx.exceptions import UsageError
from colmena_fx.thinker import ResourceCounter


def test_slots_start_unallocated_and_move_between_pools() -> None:
    rec = ResourceCounter(4, ["sim", "ml"])
    assert rec.unallocated_slots == 4
    assert rec.reallocate(None, "sim", 3)
    assert rec.reallocate(None, "ml", 1)
    assert (rec.allocated_slots("sim"), rec.available_slots("sim")) == (3, 3)
    assert rec.acquire("sim", 2)
    assert rec.available_slots("sim") == 1
    rec.release("sim", 2)
    assert rec.available_slots("sim") == 3
    assert rec.unallocated_slots == 0


def test_acquire_waits_for_a_release() -> None:
    rec = ResourceCounter(1, ["sim"])
    rec.reallocate(None, "sim", 1)
    assert rec.acquire("sim", 1)
    threading.Timer(0.2, rec.release, args=("sim", 1)).start()
    start = time.monotonic()
    assert rec.acquire("sim", 1, timeout=5)
    assert 0.1 < time.monotonic() - start < 4


def test_acquire_times_out_and_cancels() -> None:
    rec = ResourceCounter(1, ["sim"])
    assert not rec.acquire("sim", 1, timeout=0.1)
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    assert not rec.acquire("sim", 1, cancel_if=cancel)


def test_reallocate_waits_until_slots_are_free() -> None:
    rec = ResourceCounter(2, ["sim", "ml"])
    rec.reallocate(None, "sim", 2)
    rec.acquire("sim", 2)
    assert not rec.reallocate("sim", "ml", 1, timeout=0.1)
    threading.Timer(0.1, rec.release, args=("sim", 1)).start()
    assert rec.reallocate("sim", "ml", 1, timeout=5)
    assert rec.allocated_slots("ml") == 1 and rec.allocated_slots("sim") == 1


def test_errors_name_the_pool() -> None:
    rec = ResourceCounter(2, ["sim"])
    with pytest.raises(UsageError, match="unknown task type 'simulation'"):
        rec.acquire("simulation", 1)
    with pytest.raises(UsageError, match="cannot release 1 slots of 'sim'"):
        rec.release("sim", 1)
    with pytest.raises(UsageError, match="cannot move 3 slots from None"):
        rec.reallocate(None, "sim", 3)
