"""Models, serialization and hop arithmetic: the parts with no processes."""

from __future__ import annotations

import numpy as np
import pytest

from colmena_fx import serialize
from colmena_fx.exceptions import SerializationError
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.worker import execute
from testing.tasks import add
from testing.tasks import fail_with


def test_serialize_round_trips_data_and_lambdas() -> None:
    value = {"a": np.ones(3), "f": lambda x: x + 1}
    back = serialize.loads(serialize.dumps(value))
    np.testing.assert_array_equal(back["a"], np.ones(3))
    assert back["f"](1) == 2


def test_serialize_names_what_failed() -> None:
    with pytest.raises(
        SerializationError, match="argument 2 of simulate of type generator"
    ):
        serialize.dumps((i for i in range(2)), what="argument 2 of simulate")


def test_result_record_omits_payloads() -> None:
    result = Result(method="m", inputs=b"x" * 100, value=np.zeros(10))
    result.stamp(Stamp.CREATED)
    record = result.journal_record()
    assert "inputs" not in record and "value" not in record
    assert record["timeline"]["events"][0][0] == "created"


def test_worker_shim_stamps_in_order_and_captures_failures() -> None:
    reply = execute(add, serialize.dumps(((2,), {"b": 3}, None)))
    assert reply.success and serialize.loads(reply.value) == 5
    names = [name for name, _, _ in reply.events]
    assert names == [
        "worker_started",
        "compute_started",
        "compute_ended",
        "worker_ended",
    ]
    times = [t for _, t, _ in reply.events]
    assert times == sorted(times)

    failed = execute(fail_with, serialize.dumps((("boom",), {}, None)))
    assert not failed.success and failed.failure is not None
    assert failed.failure["exception_type"] == "ValueError"
    assert "inner_helper" in failed.failure["traceback"]


def test_engine_transitions_take_the_workers_host_and_may_be_absent() -> None:
    from globus_compute_common.messagepack.message_types import TaskTransition
    from globus_compute_common.tasks import ActorName
    from globus_compute_common.tasks import TaskState

    from colmena_fx.transports.gcformat import stamp_transitions

    result = Result(method="m", site="far")
    stamp_transitions(None, result)  # an older endpoint sends none: nothing stamped
    assert result.timeline.events == []
    result.stamp(Stamp.WORKER_STARTED, host="node7", time_ns=20)
    transitions = [
        TaskTransition(timestamp=10, state=TaskState.EXEC_START,
                       actor=ActorName.WORKER),
        TaskTransition(timestamp=30, state=TaskState.EXEC_END,
                       actor=ActorName.WORKER),
        TaskTransition(timestamp=5, state=TaskState.RUNNING,
                       actor=ActorName.MANAGER),
    ]  # fmt: skip
    stamp_transitions(transitions, result)
    started = result.timeline.get(Stamp.EXECUTION_STARTED)
    ended = result.timeline.get(Stamp.EXECUTION_ENDED)
    assert started == (Stamp.EXECUTION_STARTED, 10, "node7")
    assert ended == (Stamp.EXECUTION_ENDED, 30, "node7")
    assert len(result.timeline.events) == 3
