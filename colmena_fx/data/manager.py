"""Large values by reference: the client's side of the data stores.

At submit, each argument whose serialized size reaches the method's threshold is
written to the method's store and replaced by a proxy, so the task itself stays
small; the worker shim fetches it before the user function starts. A large return
value takes the opposite path: the worker stores it and the thinker receives a
proxy, which fetches the value the first time it is used (or never, when the
thinker only forwards it to another task). How long stored values live is
`data.holds`' business; this module says when holds are taken and let go.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from proxystore.proxy import Proxy
from proxystore.store import Store

from colmena_fx import serialize
from colmena_fx.config import FederationConfig
from colmena_fx.data.holds import Holds
from colmena_fx.data.policy import DataPolicy
from colmena_fx.data.policy import argument_name
from colmena_fx.data.schemas import Lifetime
from colmena_fx.data.stores import DataFactory
from colmena_fx.data.stores import close_store
from colmena_fx.data.stores import factory_of
from colmena_fx.data.stores import open_store
from colmena_fx.data.stores import own_proxies
from colmena_fx.data.stores import put_serialized
from colmena_fx.exceptions import DataStoreError
from colmena_fx.exceptions import FederationNotRunningError
from colmena_fx.exceptions import UsageError
from colmena_fx.limits import RESULT_LIMIT_BYTES
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.models import Timeline
from colmena_fx.taskcontext import TaskContext
from colmena_fx.units import format_size

log = logging.getLogger(__name__)

#: Values never worth measuring for the threshold.
_SMALL = (int, float, complex, bool, type(None))
#: Called with (task_id, stamp name, time_ns) for stamps made after delivery.
LateStamp = Callable[[str, str, int], None]


class DataManager:
    """The stores of one federation run, and the holds on what they store."""

    def __init__(self, config: FederationConfig, base_dir: Path) -> None:
        self.config = config
        self.base_dir = base_dir
        self.stores: dict[str, Store[Any]] = {}
        self.holds = Holds(self._evict)
        self._policies: dict[tuple[str, str], DataPolicy | None] = {}
        #: Result key -> (task id, timeline) until the thinker first resolves it.
        self._unresolved: dict[Any, tuple[str, Timeline]] = {}
        self._lock = threading.Lock()
        self._on_stamp: LateStamp | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self, run_id: str, on_stamp: LateStamp | None = None) -> None:
        """Open every declared store; raises `DataStoreError` for one that is down."""
        try:
            for name, declaration in self.config.data.stores.items():
                self.stores[name] = open_store(name, declaration, self.base_dir, run_id)
        except BaseException:
            self._close_stores()
            raise
        self._policies.clear()  # they name the stores of the previous run
        self._on_stamp = on_stamp
        DataFactory.listeners.append(self._on_resolved)
        self.holds.start()

    def stop(self) -> None:
        """Evict everything not kept (lifetime `keep`) and close the stores."""
        if self._on_resolved in DataFactory.listeners:
            DataFactory.listeners.remove(self._on_resolved)
        leftovers = self.holds.drain()
        for store, key in leftovers:
            self._evict(store, key)
        if leftovers:
            log.info("evicted %d stored values at the end of the run", len(leftovers))
        with self._lock:
            self._unresolved.clear()
        self._close_stores()

    def _close_stores(self) -> None:
        for store in self.stores.values():
            close_store(store)
        self.stores.clear()

    # -- the client's side of a task -------------------------------------------------

    def policy(self, method: str, site: str) -> DataPolicy | None:
        """What the worker needs to return `method`'s large values by reference.

        None without a `data:` block: the shim then only checks the engine's limit.
        """
        try:
            return self._policies[method, site]
        except KeyError:
            pass
        name = self.config.store_for(method, site)
        store = self.stores.get(name) if name else None
        policy = None
        if self.stores:
            policy = DataPolicy(
                store=store.config() if store is not None else None,
                store_name=name or "",
                threshold=self._threshold(method),
                result_limit=RESULT_LIMIT_BYTES,
            )
        self._policies[method, site] = policy
        return policy

    def pack(
        self,
        result: Result,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        context: TaskContext | None = None,
    ) -> bytes:
        """The task's request: arguments, large ones by reference, its policy and
        the context its function may read (`taskcontext.current_task`).

        Stamps the `input_put` hop when something was stored.
        """
        assert result.site is not None
        method = result.method
        policy = self.policy(method, result.site)
        held = self._hold_forwarded(method, result.site, args, kwargs)
        store = self.stores.get(policy.store_name) if policy else None
        started = ended = None
        try:
            if store is not None and policy is not None:
                positional, kwargs = list(args), dict(kwargs)
                lifetime = self._lifetime(method)
                for container, where, value in _items(positional, kwargs):
                    # Proxy first: checking any other class would resolve it.
                    if isinstance(value, (Proxy, *_SMALL)):
                        continue  # a user's own proxy goes through untouched
                    if _known_size(value) < policy.threshold:
                        continue  # no need to serialize it twice to find out
                    began = time.time_ns()
                    what = argument_name(where, method)
                    data = serialize.dumps(value, what=what)
                    if len(data) < policy.threshold:
                        continue
                    proxy = self._put(store, policy.store_name, data, what)
                    container[where] = proxy
                    key = _key(proxy)
                    if self.holds.track(key, policy.store_name, lifetime):
                        held.append(key)
                    started, ended = started or began, time.time_ns()
                args = tuple(positional)
            request = serialize.dumps(
                (args, kwargs, policy, context), what=f"an argument of {method!r}"
            )
        except BaseException:
            self.holds.release(held)
            raise
        if started is not None:
            result.stamp(Stamp.INPUT_PUT_STARTED, time_ns=started)
            result.stamp(Stamp.INPUT_PUT_ENDED, time_ns=ended)
        self.holds.assign(result.task_id, held)
        return request

    def _put(self, store: Store[Any], name: str, data: bytes, what: str) -> Any:
        try:
            return put_serialized(store, data, name)
        except Exception as exc:
            raise DataStoreError(
                f"cannot store {what} ({format_size(len(data))}) in data store "
                f"{name!r}: {type(exc).__name__}: {exc}",
                store=name,
            ) from exc

    def _hold_forwarded(
        self, method: str, site: str, args: Any, kwargs: Any
    ) -> list[Any]:
        """Hold the stored values that the thinker forwards, for this task's life."""
        held: list[Any] = []
        for where, factory in itertools.chain(own_proxies(args), own_proxies(kwargs)):
            name = factory.store_name
            declared = self.config.data.stores.get(name)
            if declared is not None and not declared.reaches(site):
                self.holds.release(held)
                raise DataStoreError(
                    f"{argument_name(where, method)} is stored in data store "
                    f"{name!r}, which site {site!r} cannot reach (its 'sites' are "
                    f"{declared.sites}): route the method that made it through a "
                    f"store both reach (methods.<name>.data.store in the federation "
                    f"file)",
                    store=name,
                    key=factory.key,
                )
            if self.holds.hold(factory.key):
                held.append(factory.key)
        return held

    def abandoned(self, result: Result) -> None:
        """A task that never left: let go of what it held."""
        self.holds.release_task(result.task_id)

    def completed(self, result: Result) -> None:
        """A task finished for good: release its arguments, adopt its result."""
        self.holds.release_task(result.task_id)
        factory = self.adopt(result)
        if factory is not None:
            with self._lock:
                self._unresolved[factory.key] = (result.task_id, result.timeline)

    def adopt(self, result: Result) -> DataFactory | None:
        """Hold the stored value `result` carries for its lifetime; its factory.

        Also for a generator's intermediate items, whose resolution is not timed:
        the task's `result_data` hop is its final value's.
        """
        factory = factory_of(result.value)
        if factory is None or factory.store_name not in self.stores:
            return None
        lifetime = self._lifetime(result.method)
        if self.holds.track(factory.key, factory.store_name, lifetime):
            self.holds.watch(factory)
        return factory

    def proxy(
        self, value: Any, store: str | None = None, lifetime: Lifetime = "task"
    ) -> Any:
        """A reference to `value` for the thinker to pass to many tasks.

        Stored once, resolved on each worker that uses it; with lifetime `task` it
        lives while this proxy does or a task carrying it is in flight.
        """
        if not self.stores:
            raise FederationNotRunningError(
                "no data store is open: declare one under 'data.stores' in the "
                "federation file and start the federation"
            )
        name = store or next(iter(self.stores))
        if name not in self.stores:
            raise UsageError(
                f"unknown data store {name!r}; the federation has {sorted(self.stores)}"
            )
        data = serialize.dumps(value, what="the value to share")
        proxy = self._put(self.stores[name], name, data, "the value to share")
        factory = factory_of(proxy)
        assert factory is not None
        if self.holds.track(factory.key, name, lifetime):
            self.holds.watch(factory)
        return proxy

    def held(self) -> dict[str, int]:
        """How many stored values each store holds for this run, right now."""
        return {**dict.fromkeys(self.stores, 0), **self.holds.counts()}

    def settle(self, timeout_s: float = 10.0) -> bool:
        """Release now what the thinker has dropped; False if that took too long.

        Releases happen on a background thread as proxies are garbage collected;
        this collects garbage and waits for that thread to catch up.
        """
        return self.holds.settle(timeout_s)

    def _evict(self, store: str, key: Any) -> None:
        with self._lock:
            self._unresolved.pop(key, None)
        target = self.stores.get(store)
        if target is None:
            return
        try:
            target.evict(key)
        except Exception as exc:  # a store gone down must not stop the campaign
            log.warning("cannot evict %s from data store %r: %s", key, store, exc)

    # -- timing ----------------------------------------------------------------------

    def _on_resolved(self, factory: DataFactory, started: int, ended: int) -> None:
        """A result's proxy was resolved in this process: its `result_data` hop."""
        with self._lock:
            entry = self._unresolved.pop(factory.key, None)
        if entry is None:
            return
        task_id, timeline = entry
        for stamp, time_ns in (
            (Stamp.RESULT_DATA_STARTED, started),
            (Stamp.RESULT_DATA_ENDED, ended),
        ):
            timeline.stamp(stamp, time_ns=time_ns)
            if self._on_stamp is not None:
                self._on_stamp(task_id, stamp.value, time_ns)

    # -- settings --------------------------------------------------------------------

    def _threshold(self, method: str) -> int:
        own = self.config.methods[method].data.threshold
        return self.config.data.threshold if own is None else own

    def _lifetime(self, method: str) -> Lifetime:
        return self.config.methods[method].data.lifetime or self.config.data.lifetime


def _key(proxy: Any) -> Any:
    factory = factory_of(proxy)
    assert factory is not None
    return factory.key


def _known_size(value: Any) -> float:
    """The bytes of `value` serialized, near enough, where its type tells cheaply.

    Infinity when it does not: the value is then serialized to find out.
    """
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value.nbytes
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, str):
        return len(value)  # UTF-8 takes at least a byte a character
    return float("inf")


def _items(args: list[Any], kwargs: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    """(container, index, value) for every argument, positional then keyword."""
    return [(args, i, v) for i, v in enumerate(args)] + [
        (kwargs, k, v) for k, v in kwargs.items()
    ]
