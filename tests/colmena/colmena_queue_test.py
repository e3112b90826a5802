"""Colmena's queues (colmena/queue/tests/test_base.py, and the retry policy of
colmena/task_server/tests/test_retry.py) on `colmena_fx.colmena.queue`, bound to
a federation that runs the tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from colmena_fx.colmena.exceptions import TimeoutException
from colmena_fx.colmena.models import ResourceRequirements
from colmena_fx.colmena.models import SerializationMethod
from colmena_fx.colmena.queue import ColmenaQueues
from colmena_fx.colmena.queue import PipeQueues
from colmena_fx.colmena.queue import RedisQueues
from colmena_fx.colmena.task_server import FederationTaskServer
from colmena_fx.exceptions import UsageError
from testing.colmena_tasks import Box
from testing.wait import wait_until


def test_role() -> None:
    queues = PipeQueues(["a", "b"])
    assert queues.role == "any"
    queues.set_role("client")
    assert queues.role == "client"
    with pytest.raises(ValueError, match="asdf"):
        queues.set_role("asdf")


def test_send_before_the_task_server_started() -> None:
    queues = PipeQueues()
    with pytest.raises(UsageError, match=r"start the task server"):
        queues.send_inputs(1, method="echo")
    with pytest.raises(UsageError, match=r"FederationTaskServer"):
        queues.get_result(timeout=0)
    assert queues.active_count == 0


@pytest.mark.parametrize("queue_class", [PipeQueues, RedisQueues])
@pytest.mark.parametrize(
    "options", [{"proxystore_name": "store"}, {"proxystore_threshold": 1000}]
)
def test_proxystore_options_refused_with_the_fix(
    queue_class: type[ColmenaQueues], options: dict[str, object]
) -> None:
    with pytest.raises(UsageError, match=r"data\.stores.*threshold"):
        queue_class(topics=["a"], **options)  # type: ignore[arg-type]


def test_requests_with_every_option(queues: PipeQueues) -> None:
    """Colmena's `test_requests` and `test_task_info`: what `send_inputs` was
    given comes back on the result."""
    task_id = queues.send_inputs(
        "ab",
        method="record_call",
        topic="a",
        input_kwargs={"1": 1},
        keep_inputs=True,
        resources=ResourceRequirements(cpu_threads=2),
        task_info={"info": "important"},
        max_retries=2,
    )
    result = queues.get_result(topic="a", timeout=30)
    assert result.task_id == task_id
    assert result.success, result.failure_info
    assert result.serialization_method == queues.serialization_method
    assert result.keep_inputs == queues.keep_inputs
    assert result.topic == "a"
    assert result.args == ("ab",)
    assert result.kwargs == {"1": 1}
    assert result.value == (("ab",), {"1": 1})
    assert result.method == "record_call"
    assert result.task_info == {"info": "important"}
    assert result.resources.cpu_threads == 2
    assert result.max_retries == 2
    assert result.retries == 0

    # The queues' defaults can be changed per task
    queues.send_inputs("cd", method="record_call", keep_inputs=not queues.keep_inputs)
    result = queues.get_result(timeout=30)
    assert result.keep_inputs != queues.keep_inputs


def test_results_of_objects_json_cannot_hold(queues: PipeQueues) -> None:
    """Colmena's `test_serialization`: values are pickled both ways."""
    assert queues.serialization_method is SerializationMethod.PICKLE
    queues.send_inputs(Box(), 1, method="with_x", keep_inputs=True)
    result = queues.get_result(timeout=30)
    assert result.success, result.failure_info
    assert result.args[0].x is None
    assert isinstance(result.value, Box)
    assert result.value.x == 1


def test_method_needed_when_there_are_several(queues: PipeQueues) -> None:
    with pytest.raises(UsageError, match="method="):
        queues.send_inputs(1)


def test_get_result_times_out(queues: PipeQueues) -> None:
    assert issubclass(TimeoutException, Exception)  # Colmena's is a BaseException
    assert issubclass(TimeoutException, TimeoutError)
    with pytest.raises(TimeoutException, match="'b'"):
        queues.get_result(topic="b", timeout=0.01)
    with pytest.raises(Exception) as caught:  # a Colmena program's generic handler
        queues.get_result(timeout=0)
    assert caught.type is TimeoutException


def test_unknown_topic_refused(queues: PipeQueues) -> None:
    with pytest.raises(UsageError, match=r"unknown topic 'c'.*topics="):
        queues.send_inputs(1, method="echo", topic="c")
    with pytest.raises(UsageError, match=r"unknown topic 'c'"):
        queues.get_result(topic="c", timeout=0)
    assert queues.active_count == 0


def test_event_count(queues: PipeQueues, gate: Path) -> None:
    """Colmena's `test_event_count`: `active_count` and `wait_until_done` follow
    the tasks sent and the results taken."""
    task_id = queues.send_inputs(str(gate), 1, method="wait_for_file")
    assert queues.active_count == 1
    assert not queues.wait_until_done(timeout=0.05)  # the task waits for its gate

    gate.touch()
    result = queues.get_result(timeout=30)
    assert result.task_id == task_id
    assert queues.active_count == 0
    assert queues.wait_until_done(timeout=0)

    # Another task, and the queues are busy again
    gate.unlink()
    queues.send_inputs(str(gate), 2, method="wait_for_file")
    assert queues.active_count == 1
    assert not queues.wait_until_done(timeout=0)
    gate.touch()
    assert queues.get_result(timeout=30).value == 2
    assert queues.wait_until_done(timeout=0)


def test_flush_drops_the_results_waiting(queues: PipeQueues) -> None:
    for value in range(3):
        queues.send_inputs(value, method="echo", topic="b")
    assert queues.active_count == 3

    def flushed() -> bool:
        queues.flush()
        return queues.active_count == 0

    wait_until(flushed, timeout=30, what="flush taking all 3 results")
    with pytest.raises(TimeoutException):
        queues.get_result(topic="b", timeout=0)
    assert queues.wait_until_done(timeout=0)


def test_failure_is_not_retried_without_max_retries(
    queues: PipeQueues, tmp_path: Path
) -> None:
    """Colmena's `test_retry_policy_max_retries_zero`: a task that fails every
    other time, sent without retries."""
    for i in range(4):
        counter = tmp_path / f"runs-{i // 2}"  # fails once, then succeeds
        queues.send_inputs(str(counter), 1, method="fail_until", max_retries=0)
        result = queues.get_result(timeout=30)
        if i % 2:
            assert result.success, result.failure_info
            assert result.value is True
            assert result.failure_info is None
        else:
            assert not result.success
            assert result.failure_info is not None
            assert "Retry" in result.failure_info.exception
        assert result.retries == 0
    assert int(counter.read_text()) == 2


@pytest.mark.parametrize(("failures", "max_retries"), [(0, 0), (1, 1), (4, 10)])
def test_retry_policy_max_retries(
    queues: PipeQueues, tmp_path: Path, failures: int, max_retries: int
) -> None:
    """Colmena's `test_retry_policy_max_retries`: a function that raised is
    retried, whatever it raised."""
    counter = tmp_path / "runs"
    queues.send_inputs(
        str(counter), failures, method="fail_until", max_retries=max_retries
    )
    result = queues.get_result(timeout=30)
    assert result.success, result.failure_info
    assert result.value is True
    assert result.failure_info is None
    assert result.retries == failures
    assert result.max_retries == max_retries
    assert int(counter.read_text()) == failures + 1


def test_retries_run_out(queues: PipeQueues, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    queues.send_inputs(str(counter), 5, method="fail_until", max_retries=2)
    result = queues.get_result(timeout=30)
    assert not result.success
    assert result.failure_info is not None
    assert "Retry" in result.failure_info.exception
    assert result.retries == 2
    assert int(counter.read_text()) == 3


def test_native_submit_passes_a_topic_keyword_to_the_function(
    queues: PipeQueues, server: FederationTaskServer
) -> None:
    federation = server.federation
    federation.submit("tagged", 1, kwargs={"topic": "mine"}, topic="a")
    result = federation.get_result("a", timeout=30)
    assert result is not None
    assert result.success, result.failure
    assert result.topic == "a"
    assert result.value == (1, "mine")
    # Colmena's queues pass it as input_kwargs, to the same effect
    queues.send_inputs(2, method="tagged", input_kwargs={"topic": "theirs"})
    assert queues.get_result(timeout=30).value == (2, "theirs")
