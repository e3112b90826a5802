"""How long each stored value lives: who holds it, and when it goes.

One table of holds serves every lifetime (`data.lifetime`). With `task`, a stored
value is held by every task in flight that carries it and by every colmena-fx proxy
of it alive in the thinker's process, and is evicted when the last hold goes: a
one-shot argument when its task finishes, model weights that the thinker keeps and
forwards to many tasks when the thinker drops them. With `campaign` it stays until
`drain` (the federation stopping); with `keep` it is never tracked at all.

A proxy's hold is dropped by a `weakref.finalize` on its factory, which the garbage
collector may run on any thread at any moment; the finalizer only queues the key,
and a janitor thread does the releasing (and evicting) outside the collector.
"""

from __future__ import annotations

import gc
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

from colmena_fx.data.schemas import Lifetime
from colmena_fx.data.stores import DataFactory

#: Called with (store name, key) when a value's last hold goes.
Evict = Callable[[str, Any], None]


class Holds:
    """Counts of holds per stored value, and the janitor that releases dropped ones."""

    def __init__(self, evict: Evict) -> None:
        self._evict = evict
        #: Key -> [store name, holds], for values with lifetime `task`.
        self._holds: dict[Any, list[Any]] = {}
        #: Key -> store name, for values evicted when the federation stops.
        self._until_stop: dict[Any, str] = {}
        self._by_task: dict[str, list[Any]] = {}
        self._dropped: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._janitor: threading.Thread | None = None

    def start(self) -> None:
        self._janitor = threading.Thread(
            target=self._collect, name="cfx-data", daemon=True
        )
        self._janitor.start()

    def drain(self) -> list[tuple[str, Any]]:
        """Stop the janitor; every (store, key) still held or kept for the run."""
        if self._janitor is not None:
            self._dropped.put(None)
            self._janitor.join()
            self._janitor = None
        with self._lock:
            left = [(entry[0], key) for key, entry in self._holds.items()]
            left += [(store, key) for key, store in self._until_stop.items()]
            self._holds.clear()
            self._until_stop.clear()
            self._by_task.clear()
        return left

    # -- taking holds ----------------------------------------------------------------

    def track(self, key: Any, store: str, lifetime: Lifetime) -> bool:
        """Take the first hold on a value just stored; True if it is counted."""
        with self._lock:
            if lifetime == "task":
                entry = self._holds.setdefault(key, [store, 0])
                entry[1] += 1
                return True
            if lifetime == "campaign":
                self._until_stop[key] = store
            return False

    def hold(self, key: Any) -> bool:
        """One more hold on a counted value; False for a value not counted here."""
        with self._lock:
            entry = self._holds.get(key)
            if entry is None:
                return False
            entry[1] += 1
            return True

    def watch(self, factory: DataFactory) -> None:
        """The proxy of `factory` holds its value until the thinker lets go of it."""
        finalizer = weakref.finalize(factory, self._dropped.put, factory.key)
        finalizer.atexit = False

    def assign(self, task_id: str, keys: list[Any]) -> None:
        """The holds in `keys` belong to a task: released with `release_task`."""
        if keys:
            with self._lock:
                self._by_task[task_id] = keys

    # -- letting go ------------------------------------------------------------------

    def release_task(self, task_id: str) -> None:
        with self._lock:
            keys = self._by_task.pop(task_id, [])
        self.release(keys)

    def release(self, keys: list[Any]) -> None:
        """Drop one hold on each key; evict the values left with none."""
        gone = []
        with self._lock:
            for key in keys:
                entry = self._holds.get(key)
                if entry is None:
                    continue
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._holds[key]
                    gone.append((entry[0], key))
        for store, key in gone:
            self._evict(store, key)

    def _collect(self) -> None:
        """The janitor: release the holds of proxies the thinker dropped."""
        while True:
            item = self._dropped.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()  # a `settle` call: everything dropped before it is done
            else:
                self.release([item])

    def settle(self, timeout_s: float = 10.0) -> bool:
        """Release now what the thinker has dropped; False if that took too long."""
        if self._janitor is None:
            return True
        gc.collect()
        done = threading.Event()
        self._dropped.put(done)
        return done.wait(timeout_s)

    def counts(self) -> dict[str, int]:
        """Values held or kept for the run, per store."""
        counts: dict[str, int] = {}
        with self._lock:
            stores = [entry[0] for entry in self._holds.values()]
            stores += list(self._until_stop.values())
        for store in stores:
            counts[store] = counts.get(store, 0) + 1
        return counts
