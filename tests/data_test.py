"""Large values by reference through real stores: a file store and a real Redis.

Every test runs tasks on real endpoint processes; stores are checked directly (the
files in the directory, the keys in the Redis server), not through colmena-fx.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from proxystore.connectors.file import FileConnector
from proxystore.proxy import Proxy
from proxystore.proxy import is_resolved
from proxystore.store import Store

from colmena_fx.federation import Federation
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from testing.redis import RedisServer
from testing.sites import FederationFactory
from testing.wait import wait_until

TASKS = ["echo", "checksum", "make_array", "proxy_state"]
MB = 1_000_000


def _methods(**data: Any) -> dict[str, dict[str, Any]]:
    route = {"site": "cpu", **({"data": data} if data else {})}
    return {name: {**route, "function": f"testing.tasks:{name}"} for name in TASKS}


class StoreUnderTest:
    """A declared store and a way to count what it holds, from outside colmena-fx."""

    def __init__(self, declaration: dict[str, Any], count: Callable[[], int]) -> None:
        self.declaration = declaration
        self.count = count


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUnderTest:
    if request.param == "file":
        path = tmp_path / "store"
        return StoreUnderTest(
            {"type": "file", "path": str(path)},
            lambda: len(list(path.glob("*"))) if path.exists() else 0,
        )
    server: RedisServer = request.getfixturevalue("redis_server")
    return StoreUnderTest(
        {"type": "redis", "host": server.host, "port": server.port}, server.keys
    )


def _start(
    make_federation: FederationFactory,
    store: StoreUnderTest,
    threshold: str = "1 MB",
    **data: Any,
) -> Federation:
    config = {"stores": {"shared": store.declaration}, "threshold": threshold, **data}
    return make_federation(_methods(), federation={"data": config})


def _result(federation: Federation, timeout: float = 120) -> Result:
    result = federation.get_result(timeout=timeout)
    assert result is not None, "no result within the timeout"
    assert result.success, result.failure
    return result


def _wait_emptied(store: StoreUnderTest, timeout_s: float = 10) -> None:
    """Proxies dropped by the thinker are released by a background thread, once
    the garbage collector has run their finalizers: collect while waiting."""

    def emptied() -> bool:
        gc.collect()
        return store.count() == 0

    try:
        wait_until(emptied, timeout_s, "the store emptying")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: it kept {store.count()} values") from None


@pytest.mark.parametrize(
    "size", [1 * MB, 20 * MB, 200 * MB], ids=["1MB", "20MB", "200MB"]
)
def test_arrays_round_trip_by_reference(
    make_federation: FederationFactory, store: StoreUnderTest, size: int
) -> None:
    federation = _start(make_federation, store)
    array = np.random.default_rng(7).random(size // 8)
    federation.submit("echo", array)
    result = _result(federation)
    assert result.sizes.request < 100_000, "the array travelled with the task"
    assert isinstance(result.value, Proxy) and not is_resolved(result.value)
    np.testing.assert_array_equal(result.value, array)
    names = [event.name for event in result.timeline.events]
    for stamp in (Stamp.INPUT_PUT_ENDED, Stamp.INPUT_DATA_ENDED,
                  Stamp.RESULT_PUT_ENDED, Stamp.RESULT_DATA_ENDED):  # fmt: skip
        assert stamp.value in names, f"{stamp} missing from {names}"
    assert store.count() > 0, "the result should be held while the thinker has it"
    del result
    _wait_emptied(store)


def test_a_result_forwarded_by_the_thinker_and_echoed_back(
    make_federation: FederationFactory, store: StoreUnderTest
) -> None:
    """A model made on one task goes to the next by reference, never through the
    thinker; echoing a proxied input back works (it fails in Colmena 0.7.2)."""
    federation = _start(make_federation, store)
    federation.submit("make_array", 16 * MB)
    model = _result(federation).value
    federation.submit("echo", model)
    del model  # the task in flight still holds the value
    echoed = _result(federation).value
    assert echoed.shape == (2 * MB,) and echoed[-1] == 2 * MB - 1
    del echoed
    _wait_emptied(store)


def test_small_values_travel_with_the_task(
    make_federation: FederationFactory, store: StoreUnderTest
) -> None:
    federation = _start(make_federation, store)
    federation.submit("echo", np.ones(1000))
    result = _result(federation)
    assert not isinstance(result.value, Proxy)
    assert store.count() == 0
    assert Stamp.INPUT_PUT_STARTED.value not in {e.name for e in result.timeline.events}


def test_users_own_proxies_go_through_untouched(
    make_federation: FederationFactory, tmp_path: Path
) -> None:
    federation = make_federation(_methods())
    # Registered, so the echoed proxy resolves through this instance and closing
    # it unregisters it; unregistered, ProxyStore would register a copy of its own
    # on that resolve and leave it behind for the rest of the process.
    with Store("users-own", FileConnector(str(tmp_path / "own")), register=True) as own:
        proxy = own.proxy(np.ones(10), populate_target=False)
        federation.submit("proxy_state", proxy)
        assert _result(federation).value == ("Proxy", False)
        assert not is_resolved(proxy)
        federation.submit("echo", proxy)  # back as the user's proxy, still lazy
        echoed = _result(federation).value
        assert isinstance(echoed, Proxy) and not is_resolved(echoed)
        np.testing.assert_array_equal(echoed, np.ones(10))


def test_hundreds_of_large_tasks_leave_the_store_empty(
    make_federation: FederationFactory, store: StoreUnderTest
) -> None:
    """Arguments go when their task ends, results when the thinker drops them,
    without waiting for the federation to stop."""
    federation = _start(make_federation, store, threshold="100 kB")
    arrays = [np.full(25_000, float(i)) for i in range(300)]  # 200 kB each
    for array in arrays:
        federation.submit("echo", array)
    peak = 0
    for _ in arrays:
        result = _result(federation)
        peak = max(peak, store.count())
        assert result.value[0] == result.value[-1]
    del result
    assert peak > 0
    _wait_emptied(store)
    assert set(federation.data.held().values()) == {0}


def test_a_shared_value_lives_while_the_thinker_keeps_it(
    make_federation: FederationFactory, store: StoreUnderTest
) -> None:
    """Model weights sent to many tasks are stored once and not evicted after the
    first use; dropped by the thinker, they go."""
    federation = _start(make_federation, store)
    weights = federation.data.proxy(np.ones(MB))
    for _ in range(5):
        federation.submit("checksum", weights)
    assert [_result(federation).value for _ in range(5)] == [float(MB)] * 5
    assert store.count() > 0
    federation.submit("checksum", weights)
    assert _result(federation).value == float(MB)
    del weights
    _wait_emptied(store)


@pytest.mark.parametrize(
    ("lifetime", "left_after_stop"), [("campaign", 0), ("keep", 2)]
)
def test_lifetimes_beyond_the_task(
    make_federation: FederationFactory,
    store: StoreUnderTest,
    lifetime: str,
    left_after_stop: int,
) -> None:
    federation = _start(make_federation, store, lifetime=lifetime)
    federation.submit("checksum", np.ones(MB))
    federation.submit("make_array", 2 * MB)
    for _ in range(2):
        _result(federation)
    gc.collect()
    # File stores write a marker beside each value; count values, not files.
    per_value = 2 if store.declaration["type"] == "file" else 1
    assert store.count() == 2 * per_value
    federation.stop()
    assert store.count() == left_after_stop * per_value


def test_data_hops_in_the_latency_record_and_the_journal(
    make_federation: FederationFactory, store: StoreUnderTest
) -> None:
    """A result the thinker resolves after processing it still gets its
    `result_data` hop, live and when the run is read back."""
    federation = _start(make_federation, store)
    federation.submit("echo", np.ones(MB))
    result = _result(federation)
    federation.processed(result)
    time.sleep(0.01)
    float(result.value.sum())  # resolved late, after the result processor returned
    hops = {row.hop for row in federation.latency.summary()}
    assert {"input_put", "input_data", "result_put", "result_data"} <= hops
    federation.stop()
    assert federation.run_dir is not None
    replayed = LatencyRecorder.from_run(federation.run_dir)
    assert "result_data" in {row.hop for row in replayed.summary()}
    events = {event.name: event.time_ns for event in result.timeline.events}
    assert events[Stamp.RESULT_DATA_STARTED] > events[Stamp.PROCESSED]
