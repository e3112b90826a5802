"""The globus transport end to end: the real SDK Executor, a real RabbitMQ broker,
the stand-in web service and real endpoint processes running real engines."""

from __future__ import annotations

import pickle
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from globus_compute_sdk import Executor
from globus_compute_sdk.sdk.executor import _RESULT_WATCHERS

from colmena_fx.exceptions import AuthenticationError
from colmena_fx.exceptions import EndpointError
from colmena_fx.exceptions import PayloadTooLargeError
from colmena_fx.exceptions import ServiceError
from colmena_fx.exceptions import ServiceUnreachableError
from colmena_fx.exceptions import UnknownEndpointError
from colmena_fx.federation import Federation
from colmena_fx.journal import read_journal
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.transports.globus_service import ACCESS_TOKEN_ENV
from colmena_fx.transports.globus_service import make_client
from testing import tasks
from testing.delayproxy import DelayProxy
from testing.gcservice.endpoint import EndpointProcess
from testing.gcservice.fixtures import EndpointFactory
from testing.gcservice.fixtures import write_globus_site
from testing.gcservice.service import SUBMIT_LIMIT_BYTES
from testing.gcservice.service import ComputeServiceStandIn
from testing.links import free_port
from testing.sites import HTEX
from testing.sites import PROCESS_POOL
from testing.sites import write_federation
from testing.wait import wait_until

pytestmark = pytest.mark.usefixtures("globus_credentials")

TASKS = ["echo", "add", "fail_with", "sleep_then", "die", "make_bytes"]


def _federation(
    tmp_path: Path,
    service: ComputeServiceStandIn,
    endpoints: dict[str, EndpointProcess],
    methods: dict[str, dict[str, Any]],
    started: list[Federation],
    data: dict[str, Any] | None = None,
    **link: Any,
) -> Federation:
    sites = [
        write_globus_site(tmp_path, name, service, endpoint, **link)
        for name, endpoint in endpoints.items()
    ]
    settings = {"data": data} if data else {}
    path = write_federation(tmp_path, sites, methods, **settings)
    federation = Federation.from_file(path)
    started.append(federation)
    return federation.start()


def _one_site(
    tmp_path: Path,
    service: ComputeServiceStandIn,
    endpoint: EndpointProcess,
    started: list[Federation],
    data: dict[str, Any] | None = None,
    **link: Any,
) -> Federation:
    methods = {name: {"site": "gc", "function": f"testing.tasks:{name}"}
               for name in TASKS}  # fmt: skip
    return _federation(
        tmp_path, service, {"gc": endpoint}, methods, started, data, **link
    )


def _result(federation: Federation, timeout: float = 60) -> Result:
    result = federation.get_result(timeout=timeout)
    assert result is not None, "no result within the timeout"
    return result


def test_values_round_trip_with_worker_and_engine_stamps(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    federation = _one_site(tmp_path, compute_service, endpoint, federations)
    values = [{"a": [1, 2.5, None]}, "text", np.arange(1000.0)]
    ids = [federation.submit("echo", value) for value in values]
    results = {r.task_id: r for r in (_result(federation) for _ in ids)}
    for task_id, value in zip(ids, values, strict=True):
        result = results[task_id]
        assert result.success, result.failure
        np.testing.assert_equal(result.value, value)
        assert result.remote_id in compute_service.tasks
        names = [event.name for event in result.timeline.events]
        for stamp in (
            Stamp.SENT,
            Stamp.EXECUTION_STARTED,
            Stamp.WORKER_STARTED,
            Stamp.COMPUTE_ENDED,
            Stamp.EXECUTION_ENDED,
            Stamp.RECEIVED,
        ):
            assert stamp in names, f"{stamp} missing from {names}"  # fmt: skip
        started = result.timeline.get(Stamp.EXECUTION_STARTED)
        worker = result.timeline.get(Stamp.WORKER_STARTED)
        assert started is not None and worker is not None
        assert started.host == worker.host
        assert started.time_ns <= worker.time_ns
    federation.stop()
    assert federation.run_dir is not None
    accepted = {
        entry["task"]["task_id"]: entry["task"]["remote_id"]
        for entry in read_journal(federation.run_dir)
        if entry["event"] == "accepted"
    }
    assert accepted == {r.task_id: r.remote_id for r in results.values()}


@pytest.fixture
def plain_sdk_executor(
    compute_service: ComputeServiceStandIn, start_endpoint: EndpointFactory
) -> Iterator[Executor]:
    """A stock SDK executor that has run a task: it leaves a task group behind."""
    endpoint = start_endpoint("plain", PROCESS_POOL)
    executor = Executor(endpoint_id=endpoint.endpoint_id,
                        client=make_client(compute_service.url))  # fmt: skip
    try:
        assert executor.submit(tasks.add, 1, 2).result(timeout=60) == 3
        assert Executor._default_task_group_id is not None
        yield executor
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        # The SDK leaves the group's result watcher running (idle) after shutdown.
        watcher = _RESULT_WATCHERS.get(executor.task_group_id)
        if watcher is not None:
            watcher.shutdown(wait=True, cancel_futures=True)
        Executor._default_task_group_id = None  # the SDK's process-wide memory


def test_two_sites_each_get_their_own_results_beside_a_plain_executor(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
    plain_sdk_executor: Executor,
) -> None:
    """Each site has its own task group and one watcher, in federation after
    federation: none adopts another's group and reads its results."""
    sim = start_endpoint("sim", PROCESS_POOL)
    train = start_endpoint("train", PROCESS_POOL)
    endpoint_ids = {"sim": sim.endpoint_id, "train": train.endpoint_id}
    methods = {
        "add": {"site": "sim", "function": "testing.tasks:add"},
        "echo": {"site": "train", "function": "testing.tasks:echo"},
    }
    groups: dict[str, set[str]] = {}
    for round_ in range(3):
        federation = _federation(
            tmp_path / str(round_), compute_service,
            {"sim": sim, "train": train}, methods, federations,
        )  # fmt: skip
        expected = {federation.submit("add", i, 1): i + 1 for i in range(10)}
        expected |= {federation.submit("echo", f"hi {i}"): f"hi {i}" for i in range(10)}
        results = [_result(federation) for _ in expected]
        assert {r.task_id: r.value for r in results} == expected
        for result in results:
            remote = compute_service.tasks[result.remote_id or ""]
            assert remote.endpoint_id == endpoint_ids[result.site]
            groups.setdefault(f"{round_}:{result.site}", set()).add(
                remote.task_group_id
            )
            names = {event.name for event in result.timeline.events}
            assert Stamp.EXECUTION_STARTED in names, f"round {round_}: {result.site}"
        federation.stop()
    assert all(len(group) == 1 for group in groups.values()), groups
    distinct = {group.pop() for group in groups.values()}
    assert len(distinct) == 6
    assert str(plain_sdk_executor.task_group_id) not in distinct


def test_user_error_arrives_with_remote_traceback(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    federation = _one_site(tmp_path, compute_service, endpoint, federations)
    federation.submit("fail_with", "bad input")
    result = _result(federation)
    assert result.success is False and result.failure is not None
    assert result.failure.kind is FailureKind.USER
    assert result.failure.exception_type == "ValueError"
    assert "inner_helper" in result.failure.traceback


def test_oversize_input_refused_at_submit_and_oversize_result_fails(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    federation = _one_site(tmp_path, compute_service, endpoint, federations)
    with pytest.raises(PayloadTooLargeError, match=r"over Globus Compute's 10 MB"):
        federation.submit("echo", b"x" * 11_000_000)
    assert federation.in_flight() == []
    federation.submit("make_bytes", 11 * 2**20)
    result = _result(federation)
    assert result.failure is not None
    assert result.failure.exception_type == "PayloadTooLargeError"
    assert "11.5 MB" in result.failure.message  # the size, before base64
    assert "result limit of 10 MiB" in result.failure.message
    assert "'data.stores'" in result.failure.message  # how to fix it


def test_values_over_the_service_limits_go_by_reference(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    store = {"type": "file", "path": str(tmp_path / "store")}
    data = {"stores": {"shared": store}, "threshold": "1 MB"}
    federation = _one_site(tmp_path, compute_service, endpoint, federations, data=data)
    payload = b"x" * 30_000_000  # three times what the service accepts inline
    federation.submit("echo", payload)
    result = _result(federation)
    assert result.success, result.failure
    assert result.value == payload
    assert result.sizes.request < 100_000
    names = {event.name for event in result.timeline.events}
    assert {Stamp.INPUT_DATA_ENDED, Stamp.RESULT_PUT_ENDED} <= names


def test_submission_refused_by_the_service_fails_its_task_then_sending_recovers(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    """The service's own size check (a batch can pass ours task by task)."""
    endpoint = start_endpoint("pool", PROCESS_POOL)
    federation = _one_site(tmp_path, compute_service, endpoint, federations)
    compute_service.submit_limit_bytes = 1_000_000
    try:
        federation.submit("echo", b"y" * 2_000_000)
        failure = _result(federation).failure
    finally:
        compute_service.submit_limit_bytes = SUBMIT_LIMIT_BYTES
    assert failure is not None
    assert failure.exception_type == "SubmissionTooLargeError"
    assert "batch_size" in failure.message
    federation.submit("add", 1, 1)
    assert _result(federation).value == 2


def test_rate_limit_and_bad_token_are_named(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    federation = _one_site(tmp_path, compute_service, endpoint, federations)
    compute_service.rate_limited_for_s = 60
    try:
        federation.submit("add", 1, 2)
        result = _result(federation)
    finally:
        compute_service.rate_limited_for_s = None
    assert result.failure is not None
    assert result.failure.exception_type == "RateLimitError"
    assert "rate limit" in result.failure.message
    federation.submit("add", 1, 2)
    assert _result(federation).value == 3

    monkeypatch.setenv(ACCESS_TOKEN_ENV, "expired-token")
    with pytest.raises(AuthenticationError, match="colmena-fx login"):
        _one_site(tmp_path / "again", compute_service, endpoint, federations)


def test_unknown_endpoint_and_missing_login_fail_at_start(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    endpoint.endpoint_id = str(uuid.uuid4())  # a site file with someone else's id
    with pytest.raises(EndpointError, match="does not know it"):
        _one_site(tmp_path, compute_service, endpoint, federations)

    monkeypatch.delenv(ACCESS_TOKEN_ENV)
    monkeypatch.delenv("GLOBUS_COMPUTE_CLIENT_ID", raising=False)
    monkeypatch.delenv("GLOBUS_COMPUTE_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("GLOBUS_COMPUTE_USER_DIR", str(tmp_path / "no-tokens"))
    with pytest.raises(AuthenticationError, match="not logged in"):
        _one_site(tmp_path / "again", compute_service, endpoint, federations)


def test_killed_endpoint_fails_tasks_in_flight_as_lost(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    federation = _one_site(
        tmp_path, compute_service, endpoint, federations, lost_after_s=2
    )
    federation.submit("sleep_then", 60, "never")
    federation.submit("sleep_then", 60, "never")
    wait_until(
        lambda: all(r.remote_id for r in federation.in_flight()),
        30,
        "the service accepting the tasks",
    )
    endpoint.kill()
    results = [_result(federation, timeout=30) for _ in range(2)]
    for result in results:
        assert result.failure is not None
        assert result.failure.kind is FailureKind.ENDPOINT_LOST
        assert "offline" in result.failure.message


def test_resources_and_user_endpoint_config_reach_the_endpoint(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    methods = {"echo": {"site": "gc", "function": "testing.tasks:echo",
                        "resources": {"num_nodes": 2},
                        "user_endpoint_config": {"account": "proj-42"}}}  # fmt: skip
    # A site file without the endpoint's engine: the client cannot tell what the
    # engine accepts, so it sends the whole specification.
    site = write_globus_site(tmp_path, "gc", compute_service, endpoint,
                             user_endpoint_config={"queue": "debug"})  # fmt: skip
    body = yaml.safe_load(site.read_text())
    del body["engine"]
    site.write_text(yaml.safe_dump(body))
    federation = Federation.from_file(write_federation(tmp_path, [site], methods))
    federations.append(federation)
    federation.start()
    federation.submit("echo", 1)
    result = _result(federation)
    task = compute_service.tasks[result.remote_id or ""]
    assert task.resource_specification == {"num_nodes": 2}
    assert task.user_endpoint_config == {"queue": "debug", "account": "proj-42"}
    # The process pool refuses a specification: proof that it reached the engine.
    assert result.failure is not None
    assert "resource_specification is not supported" in result.failure.traceback


def test_an_engine_is_sent_only_the_resources_it_accepts(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    methods = {"context": {"site": "gc", "function": "testing.tasks:task_context",
                           "resources": {"num_nodes": 2}}}  # fmt: skip
    federation = _federation(tmp_path, compute_service, {"gc": endpoint}, methods,
                             federations)  # fmt: skip
    federation.submit("context")
    result = _result(federation)
    assert result.success, result.failure
    assert compute_service.tasks[result.remote_id or ""].resource_specification is None
    # The function still reads what the task asked for (to size a launch, say).
    assert result.value.resources.num_nodes == 2


def test_worker_death_on_a_parsl_endpoint_is_reported_lost(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("htex", HTEX)
    federation = _one_site(tmp_path, compute_service, endpoint, federations)
    federation.submit("die")
    result = _result(federation, timeout=90)
    assert result.failure is not None
    assert result.failure.kind is FailureKind.WORKER_LOST


def test_an_unreachable_service_is_named_with_its_address_not_as_a_login_problem(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnreachableError) as caught:
        _one_site(tmp_path, compute_service, endpoint, federations,
                  service_url=nowhere)  # fmt: skip
    assert caught.value.url == nowhere
    assert nowhere in str(caught.value) and "site 'gc'" in str(caught.value)
    assert "login" not in str(caught.value)
    elsewhere = f"{compute_service.url}/not-the-service"  # answers, with 404s
    with pytest.raises(ServiceError, match=r"globus\.service_url") as caught:
        _one_site(tmp_path / "again", compute_service, endpoint, federations,
                  service_url=elsewhere)  # fmt: skip
    assert caught.value.http_status == 404 and caught.value.url == elsewhere


def test_service_errors_keep_status_code_and_request_id(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    endpoint.endpoint_id = str(uuid.uuid4())
    with pytest.raises(UnknownEndpointError) as caught:
        _one_site(tmp_path, compute_service, endpoint, federations)
    error = caught.value
    assert isinstance(error, EndpointError)  # what a caller may already catch
    assert error.http_status == 404
    assert error.code == "ENDPOINT_NOT_FOUND"
    assert error.url == compute_service.url
    assert pickle.loads(pickle.dumps(error)).http_status == 404


def test_the_endpoint_watch_outlives_a_service_that_stops_answering(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    federations: list[Federation],
) -> None:
    """Status polls go through a forwarder that is then closed: the watch reports
    the address and keeps going, and the result still arrives over AMQP (the SDK's
    result watcher asks the service for its AMQP address once, when it starts:
    the first round trip makes sure it has)."""
    endpoint = start_endpoint("pool", PROCESS_POOL)
    host, port = compute_service.url.removeprefix("http://").split(":")
    forwarder = DelayProxy(host, int(port), delay_s=0).start()
    via = f"http://127.0.0.1:{forwarder.port}"
    try:
        federation = _one_site(tmp_path, compute_service, endpoint, federations,
                               service_url=via)  # fmt: skip
        federation.submit("add", 1, 2)
        assert _result(federation).value == 3  # the result watcher is connected
        federation.submit("sleep_then", 3, "done")
        wait_until(lambda: all(r.remote_id for r in federation.in_flight()),
                   timeout=30, what="the service accepting the task")  # fmt: skip
    finally:
        forwarder.stop()
    [status] = federation.status()
    wait_until(lambda: via in federation.status()[0].detail, timeout=10,
               what="the watch reporting the unreachable service")  # fmt: skip
    result = _result(federation)
    assert result.value == "done"
    watch = [t for t in threading.enumerate() if t.name == "cfx-globus-gc"]
    assert watch and watch[0].is_alive()
    assert status.state.value == "running"
