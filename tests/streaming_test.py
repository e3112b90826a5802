"""Generator methods: their items reach the thinker as intermediate results, live
on local sites and together at the end on globus sites, before the final result."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from proxystore.proxy import Proxy

from colmena_fx import serialize
from colmena_fx import worker
from colmena_fx.federation import Federation
from colmena_fx.journal import read_journal
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.taskcontext import TaskContext
from colmena_fx.transports.stream import YIELDED
from testing import tasks
from testing.gcservice.endpoint import EndpointProcess
from testing.gcservice.fixtures import EndpointFactory
from testing.gcservice.fixtures import write_globus_site
from testing.gcservice.service import ComputeServiceStandIn
from testing.sites import HTEX
from testing.sites import PROCESS_POOL
from testing.sites import THREAD_POOL
from testing.sites import FederationFactory
from testing.sites import collect
from testing.sites import write_federation

TASKS = ["count_up", "count_then_fail", "count_hidden", "yield_bytes"]


def _methods(**routes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    methods = {name: {"site": "cpu", "function": f"testing.tasks:{name}"}
               for name in TASKS}  # fmt: skip
    for name, route in routes.items():
        methods[name] = {"site": "cpu", **route}
    return methods


def _next(federation: Federation) -> Result:
    result = federation.get_result(timeout=60)
    assert result is not None, "no result within the timeout"
    return result


def _check_stream(results: list[Result], task_id: str, values: list[Any]) -> Result:
    """The intermediates of `task_id`, in order, then its final result (returned)."""
    *items, final = results
    assert [r.task_id for r in results] == [task_id] * len(results)
    assert [(r.complete, r.index, r.value) for r in items] == [
        (False, i, value) for i, value in enumerate(values)
    ]
    assert all(r.success for r in items)
    assert final.complete
    assert final.index is None
    return final


@pytest.mark.parametrize(
    "engine", [PROCESS_POOL, THREAD_POOL, HTEX], ids=["process", "thread", "htex"]
)
def test_items_reach_the_thinker_while_the_generator_runs(
    make_federation: FederationFactory, tmp_path: Path, engine: dict[str, Any]
) -> None:
    federation = make_federation(_methods(), sites={"cpu": engine})
    gate = tmp_path / "gate"
    task_id = federation.submit("count_up", 5, str(gate))
    # The generator cannot go past its first item until the gate exists, and the
    # gate is made only once that item is here: it came while the task ran.
    first = _next(federation)
    assert (first.task_id, first.complete, first.index, first.value) == (
        task_id, False, 0, 0,
    )  # fmt: skip
    assert [r.task_id for r in federation.in_flight()] == [task_id]
    names = [event.name for event in first.timeline.events]
    assert names == [YIELDED, "received"]
    gate.touch()
    final = _check_stream([first, *collect(federation, 5)], task_id, [0, 1, 2, 3, 4])
    assert final.success, final.failure
    assert final.value == "counted 5"
    assert federation.in_flight() == []


def test_a_streamed_task_is_journaled_and_timed_once(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(_methods())
    task_id = federation.submit("count_up", 5)
    results = collect(federation, 6)
    for result in results:
        federation.processed(result)  # as a thinker's result processor does
    _check_stream(results, task_id, [0, 1, 2, 3, 4])
    (activity,) = federation.latency.activity()
    assert (activity.done, activity.failed) == (1, 0)
    federation.stop()
    assert federation.run_dir is not None
    events = [
        (entry["event"], entry["task"].get("index"))
        for entry in read_journal(federation.run_dir)
        if entry["task"].get("task_id") == task_id
    ]
    streamed = [index for event, index in events if event == "streamed"]
    assert streamed == [0, 1, 2, 3, 4]
    for event in ("submitted", "completed", "delivered"):
        assert [e for e, _ in events].count(event) == 1, event
    processed = [
        entry
        for entry in read_journal(federation.run_dir)
        if entry["event"] == "stamped" and entry["task"]["name"] == "processed"
    ]
    assert len(processed) == 1
    replayed = LatencyRecorder.from_run(federation.run_dir)
    assert [(c.succeeded, c.failed) for c in replayed.counts()] == [(1, 0)]


def test_items_before_an_error_arrive_then_the_failure(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(_methods())
    task_id = federation.submit("count_then_fail", 3, "stopped midway")
    final = _check_stream(collect(federation, 4), task_id, [0, 1, 2])
    assert not final.success
    assert final.failure is not None
    assert final.failure.kind is FailureKind.USER
    assert final.failure.exception_type == "ValueError"
    assert "stopped midway" in final.failure.traceback
    assert "count_then_fail" in final.failure.traceback
    # Items are held to the result limit too: one too large fails the task.
    federation.submit("yield_bytes", 10, 11 * 2**20)
    first, failed = collect(federation, 2)
    assert (first.complete, first.value) == (False, b"x" * 10)
    assert failed.failure is not None
    assert failed.failure.exception_type == "PayloadTooLargeError"
    assert "item 1 yielded by 'yield_bytes'" in failed.failure.message


def test_stream_false_collects_the_items_into_the_value(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(
        _methods(listed={"function": "testing.tasks:count_up", "stream": False})
    )
    federation.submit("listed", 4)
    (result,) = collect(federation, 1)
    assert result.complete
    assert result.success, result.failure
    assert result.value == [0, 1, 2, 3]
    assert federation.get_result(timeout=0) is None


def test_a_function_that_returns_a_generator_streams_live_with_stream_true(
    make_federation: FederationFactory, tmp_path: Path
) -> None:
    federation = make_federation(
        _methods(live={"function": "testing.tasks:count_hidden", "stream": True})
    )
    # Unset, the client cannot tell it will stream: its items come in its reply.
    task_id = federation.submit("count_hidden", 3)
    final = _check_stream(collect(federation, 4), task_id, [0, 1, 2])
    assert final.value == "counted 3"
    gate = tmp_path / "gate"
    task_id = federation.submit("live", 3, str(gate))
    first = _next(federation)
    assert (first.complete, first.value) == (False, 0)
    gate.touch()
    final = _check_stream([first, *collect(federation, 3)], task_id, [0, 1, 2])
    assert final.value == "counted 3"


def test_large_items_go_by_reference(
    make_federation: FederationFactory, tmp_path: Path
) -> None:
    store = {"type": "file", "path": str(tmp_path / "store")}
    federation = make_federation(
        _methods(),
        federation={"data": {"stores": {"shared": store}, "threshold": "100 kB"}},
    )
    task_id = federation.submit("yield_bytes", 10, 200_000)
    small, large, final = collect(federation, 3)
    assert (small.value, small.index) == (b"x" * 10, 0)
    assert isinstance(large.value, Proxy)
    assert large.sizes.value < 10_000  # the reference, not the bytes
    assert bytes(large.value) == b"x" * 200_000
    assert final.task_id == task_id and final.success, final.failure


def test_a_worker_keeps_the_items_its_client_does_not_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream nobody reads (a client that crashed) never blocks the worker: it
    keeps the items in its reply once a send has waited its timeout."""
    monkeypatch.setattr(worker, "STREAM_SEND_TIMEOUT_MS", 50)
    with tempfile.TemporaryDirectory(prefix="cfx-") as directory:
        stale = Path(directory) / "stream.sock"
        stale.touch()  # a socket file that no process listens on
        context = TaskContext("task", "count_up", stream_to=f"ipc://{stale}")
        request = serialize.dumps(((3,), {}, None, context))
        reply = worker.execute(tasks.count_up, request)
    assert reply.success, reply.failure
    assert serialize.loads(reply.value) == "counted 3"
    assert reply.yields is not None
    assert reply.yields.streamed == 0
    kept = [(item.position, serialize.loads(item.data)) for item in reply.yields.kept]
    assert kept == [(0, 0), (1, 1), (2, 2)]


@pytest.mark.usefixtures("globus_credentials")
def test_on_a_globus_site_items_arrive_together_before_the_final_result(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint: EndpointProcess = start_endpoint("pool", PROCESS_POOL)
    site = write_globus_site(tmp_path, "gc", compute_service, endpoint)
    methods = {name: {"site": "gc", "function": f"testing.tasks:{name}"}
               for name in ("count_up", "count_then_fail")}  # fmt: skip
    federation = Federation.from_file(write_federation(tmp_path, [site], methods))
    federations.append(federation)
    federation.start()
    task_id = federation.submit("count_up", 5)
    final = _check_stream(collect(federation, 6), task_id, [0, 1, 2, 3, 4])
    assert final.success, final.failure
    assert final.value == "counted 5"
    task_id = federation.submit("count_then_fail", 2, "midway")
    final = _check_stream(collect(federation, 3), task_id, [0, 1])
    assert final.failure is not None and "midway" in final.failure.traceback
