"""The federation end to end on real endpoint processes: values, errors, losses."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from colmena_fx.exceptions import FederationNotRunningError
from colmena_fx.exceptions import SerializationError
from colmena_fx.exceptions import UnknownMethodError
from colmena_fx.federation import Federation
from colmena_fx.journal import final_records
from colmena_fx.journal import read_journal
from colmena_fx.latency.hops import CHAIN
from colmena_fx.models import FailureKind
from testing.sites import HTEX
from testing.sites import PROCESS_POOL
from testing.sites import THREAD_POOL
from testing.sites import FederationFactory


def test_values_round_trip_with_every_event_stamped(cpu_federation: Federation) -> None:
    array = np.arange(1000.0)
    task_id = cpu_federation.submit(
        "echo", {"x": array, "label": "é"}, topic="sims", task_info={"batch": 3}
    )
    result = cpu_federation.get_result("sims", timeout=60)
    assert result is not None
    assert result.success, result.failure
    assert result.task_id == task_id
    assert result.task_info == {"batch": 3}
    assert result.site == "cpu"
    np.testing.assert_array_equal(result.value["x"], array)
    assert result.value["label"] == "é"
    cpu_federation.processed(result)  # what a thinker's result processor does
    names = [event.name for event in result.timeline.events]
    for stamp in CHAIN:  # every stamp but those of values sent by reference
        assert stamp.value in names, f"{stamp} missing from {names}"
    assert result.sizes.inputs > 8000 and result.sizes.value > 8000
    assert cpu_federation.in_flight() == []


def test_kwargs_and_many_threads_submitting(cpu_federation: Federation) -> None:
    with ThreadPoolExecutor(8) as pool:
        ids = list(
            pool.map(
                lambda i: cpu_federation.submit("add", i, kwargs={"b": 1000}),
                range(200),
            )
        )
    results = [cpu_federation.get_result(timeout=60) for _ in ids]
    assert all(r is not None and r.success for r in results)
    assert sorted(r.value for r in results if r) == [i + 1000 for i in range(200)]
    assert {r.task_id for r in results if r} == set(ids)


def test_unknown_method_raises_in_caller(cpu_federation: Federation) -> None:
    with pytest.raises(UnknownMethodError, match=r"unknown method 'simulat'.*'echo'"):
        cpu_federation.submit("simulat", 1)
    assert cpu_federation.in_flight() == []


def test_unserializable_argument_raises_in_caller_thread(
    cpu_federation: Federation,
) -> None:
    with pytest.raises(SerializationError, match=r"argument of 'echo'.*generator"):
        cpu_federation.submit("echo", (i for i in range(3)))
    assert cpu_federation.in_flight() == []
    assert cpu_federation.get_result(timeout=0.2) is None


def test_submit_before_start_is_an_error(
    tmp_path, make_federation: FederationFactory
) -> None:
    federation = make_federation(
        {"echo": {"site": "cpu", "function": "testing.tasks:echo"}}
    )
    federation.stop()
    with pytest.raises(FederationNotRunningError):
        federation.submit("echo", 1)


def test_user_exception_arrives_with_remote_traceback(
    cpu_federation: Federation,
) -> None:
    cpu_federation.submit("fail_with", "bad input 42")
    result = cpu_federation.get_result(timeout=60)
    assert result is not None and result.success is False
    failure = result.failure
    assert failure is not None
    assert failure.kind is FailureKind.USER
    assert failure.exception_type == "ValueError"
    assert failure.message == "bad input 42"
    assert (
        "inner_helper" in failure.traceback and "testing/tasks.py" in failure.traceback
    )
    assert failure.host


def test_unserializable_return_value_is_a_failure(cpu_federation: Federation) -> None:
    cpu_federation.submit("return_unpicklable")
    result = cpu_federation.get_result(timeout=60)
    assert result is not None and result.success is False
    assert result.failure is not None
    assert (
        "cannot serialize the value returned by return_unpicklable"
        in result.failure.message
    )


def test_routes_per_topic(make_federation: FederationFactory) -> None:
    federation = make_federation(
        {
            "echo": {
                "site": "a",
                "function": "testing.tasks:echo",
                "topics": {"ml": "b"},
            }
        },
        sites={"a": PROCESS_POOL, "b": THREAD_POOL},
    )
    federation.submit("echo", 1)
    federation.submit("echo", 2, topic="ml")
    first = federation.get_result(timeout=60)
    second = federation.get_result("ml", timeout=60)
    assert first is not None and first.site == "a" and first.value == 1
    assert second is not None and second.site == "b" and second.value == 2


def test_journal_records_every_task(cpu_federation: Federation) -> None:
    ids = [cpu_federation.submit("add", i) for i in range(5)]
    ids.append(cpu_federation.submit("fail_with", "x"))
    for _ in ids:
        assert cpu_federation.get_result(timeout=60) is not None
    run_dir = cpu_federation.run_dir
    assert run_dir is not None
    cpu_federation.stop()
    events = list(read_journal(run_dir))
    for kind in ("submitted", "completed", "delivered"):
        assert {e["task"]["task_id"] for e in events if e["event"] == kind} == set(ids)
    records = final_records(run_dir)
    assert sum(1 for r in records if r["success"]) == 5
    failed = [r for r in records if not r["success"]]
    assert failed[0]["failure"]["exception_type"] == "ValueError"
    assert all(r["timeline"]["events"] for r in records)


def test_worker_death_gives_a_failure_not_a_hang(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(
        {
            "die": {"site": "hpc", "function": "testing.tasks:die"},
            "add": {"site": "hpc", "function": "testing.tasks:add"},
        },
        sites={"hpc": HTEX},
    )
    federation.submit("die")
    result = federation.get_result(timeout=90)
    assert result is not None and result.success is False
    assert result.failure is not None
    assert result.failure.kind is FailureKind.WORKER_LOST
    assert "WorkerLost" in result.failure.exception_type
    # The engine replaces the worker: the site keeps working.
    federation.submit("add", 2, 3)
    after = federation.get_result(timeout=90)
    assert after is not None and after.value == 5


def test_endpoint_death_fails_every_task_in_flight(cpu_federation: Federation) -> None:
    ids = {cpu_federation.submit("sleep_then", 60) for _ in range(5)}
    transport = cpu_federation.transports["cpu"]
    assert transport.status().in_flight == 5
    transport.process.kill()  # type: ignore[attr-defined]
    results = [cpu_federation.get_result(timeout=30) for _ in ids]
    assert {r.task_id for r in results if r} == ids
    for result in results:
        assert result is not None and result.success is False
        assert result.failure is not None
        assert result.failure.kind is FailureKind.ENDPOINT_LOST
        assert "site 'cpu'" in result.failure.message
    # The site is restarted (local.restart) and takes work again.
    cpu_federation.submit("add", 1, 2)
    late = cpu_federation.get_result(timeout=60)
    assert late is not None and late.success, late and late.failure
    assert late.value == 3
    assert cpu_federation.status()[0].health == "up"


def test_stop_delivers_tasks_in_flight_as_failures(cpu_federation: Federation) -> None:
    cpu_federation.submit("sleep_then", 60)
    cpu_federation.stop()
    result = cpu_federation.get_result(timeout=5)
    assert result is not None and result.success is False
    assert result.failure is not None and "stopped" in result.failure.message
