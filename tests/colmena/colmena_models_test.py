"""Colmena's `Result` and `ResourceRequirements` (colmena/tests/test_model.py),
as `colmena_fx.colmena.models` gives them: results of real tasks."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from colmena_fx.colmena.models import ResourceRequirements
from colmena_fx.colmena.models import Result
from colmena_fx.colmena.queue import PipeQueues
from colmena_fx.models import HOST
from colmena_fx.models import ResourceRequirements as NativeResources
from testing.colmena import COLMENA_FIELDS
from testing.colmena import COLMENA_SPANS
from testing.colmena import COLMENA_TIMESTAMPS


def run(queues: PipeQueues, *args: object, **options: object) -> Result:
    """Send one task and take its result."""
    queues.send_inputs(*args, **options)  # type: ignore[arg-type]
    return queues.get_result(str(options.get("topic", "default")), timeout=30)


def test_resources() -> None:
    res = ResourceRequirements(node_count=2, cpu_processes=4)
    assert res.total_ranks == 8
    native = res.to_native()
    assert (native.num_nodes, native.ranks_per_node, native.num_ranks) == (2, 4, 8)


def test_native_resources_refuse_colmena_names() -> None:
    with pytest.raises(ValidationError, match="'num_nodes'") as caught:
        NativeResources(node_count=2)  # type: ignore[call-arg]
    assert "node_count" in str(caught.value)
    with pytest.raises(ValidationError, match="'ranks_per_node'"):
        NativeResources.model_validate({"cpu_processes": 4})


def test_args_and_kwargs_kept_by_default(queues: PipeQueues) -> None:
    assert queues.keep_inputs
    result = run(queues, "ab", 3, method="record_call", input_kwargs={"x": 1})
    assert result.success, result.failure_info
    assert result.args == ("ab", 3)
    assert result.kwargs == {"x": 1}
    assert result.inputs == (("ab", 3), {"x": 1})
    assert result.keep_inputs
    assert result.value == (("ab", 3), {"x": 1})  # what the function received


def test_inputs_dropped_without_keep_inputs(queues: PipeQueues) -> None:
    result = run(queues, 1, method="record_call", keep_inputs=False)
    assert result.success
    assert (result.args, result.kwargs) == ((), {})
    assert not result.keep_inputs
    queues.keep_inputs = False  # the queues' default, as Colmena's test sets it
    assert run(queues, 1, method="record_call").args == ()
    assert run(queues, 1, method="record_call", keep_inputs=True).args == (1,)


def test_json_has_colmena_schema(queues: PipeQueues) -> None:
    result = run(queues, "x", method="record_call", task_info={"id": 7}, topic="a")
    data = json.loads(result.json())
    assert set(data) == COLMENA_FIELDS
    assert set(data["timestamp"]) == COLMENA_TIMESTAMPS
    assert set(data["time"]) == COLMENA_SPANS
    assert set(data["resources"]) == {"node_count", "cpu_processes", "cpu_threads"}
    assert data["inputs"] == [["x"], {}]
    assert data["value"] == [["x"], {}]
    assert (data["method"], data["topic"], data["task_info"]) == (
        "record_call", "a", {"id": 7},
    )  # fmt: skip
    assert data["worker_info"]["hostname"] == HOST


def test_json_excludes(queues: PipeQueues) -> None:
    result = run(queues, "x", method="echo")
    assert set(json.loads(result.json(exclude={"inputs", "value"}))) == (
        COLMENA_FIELDS - {"inputs", "value"}
    )
    data = json.loads(result.json(exclude={"value": True, "time": {"additional"}}))
    assert "value" not in data
    assert data["inputs"] == [["x"], {}]
    assert set(data["time"]) == COLMENA_SPANS - {"additional"}


def test_json_round_trip(queues: PipeQueues) -> None:
    result = run(queues, 4, method="record_call", input_kwargs={"b": [1, 2]})
    again = Result.model_validate_json(result.json())
    assert again.task_id == result.task_id
    assert (again.args, again.kwargs) == ((4,), {"b": [1, 2]})
    assert again.success and again.complete
    assert again.timestamp == result.timestamp
    assert again.worker_info == result.worker_info
    assert again.resources == result.resources
    assert again.message_sizes == result.message_sizes
    assert again.time.running == result.time.running


def test_timestamps_in_order_and_running_time(queues: PipeQueues) -> None:
    result = run(queues, 0.05, "done", method="sleep_then")
    assert result.value == "done"
    stamps = result.timestamp
    order = [
        stamps.created,
        stamps.start_task_submission,
        stamps.compute_started,
        stamps.compute_ended,
        stamps.task_received,
        stamps.result_received,
    ]
    assert order == sorted(order), stamps
    assert result.time.running == pytest.approx(
        stamps.compute_ended - stamps.compute_started
    )
    assert result.time.running >= 0.05 * 0.9  # the function slept 0.05 s
    assert result.worker_info is not None
    assert result.worker_info.hostname == HOST


def test_message_sizes(queues: PipeQueues) -> None:
    small = run(queues, "0", method="echo")
    large = run(queues, "0" * 10_000, method="echo")
    assert small.message_sizes["inputs"] > 0
    assert small.message_sizes["value"] > 0
    assert large.message_sizes["inputs"] >= 10_000
    assert large.message_sizes["value"] >= 10_000
    assert large.message_sizes["inputs"] > small.message_sizes["inputs"]


def test_complete_and_success(queues: PipeQueues) -> None:
    result = run(queues, 1, method="echo")
    assert result.success is True
    assert result.complete is True
    assert result.failure_info is None


def test_failure_information(queues: PipeQueues) -> None:
    result = run(queues, "it broke", method="fail_with")
    assert result.success is False
    assert result.complete is True
    assert result.failure_info is not None
    assert "ValueError" in result.failure_info.exception
    assert "it broke" in result.failure_info.exception
    assert result.failure_info.traceback is not None
    assert "inner_helper" in result.failure_info.traceback  # the remote frames


def test_resources_with_colmena_names(queues: PipeQueues) -> None:
    default = run(queues, 1, method="echo")
    assert default.resources.node_count == 1
    assert default.resources.total_ranks == 1
    # A thread pool runs no multi-node task: the result says so, and still
    # carries the resources the task was sent with, in Colmena's names.
    wide = run(queues, 1, method="echo", resources={"node_count": 2})
    assert wide.resources.node_count == 2
    assert wide.resources.cpu_processes == 1
    assert wide.resources.total_ranks == 2
    assert wide.native is not None
    assert wide.native.resources.num_nodes == 2
    sent = ResourceRequirements(node_count=2, cpu_processes=3)
    mpi = run(queues, 1, method="echo", resources=sent)
    assert mpi.resources == sent
    assert mpi.resources.total_ranks == 6


def test_from_args_and_kwargs() -> None:
    result = Result.from_args_and_kwargs([1, 2], {"c": 3}, method="m")
    assert (result.args, result.kwargs, result.method) == ((1, 2), {"c": 3}, "m")
    assert Result(((1,), {})).args == (1,)
