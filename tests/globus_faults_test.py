"""A globus site through the faults of a facility and of the service: an endpoint
that crashes and comes back, refused submissions, the request limit to the byte,
an endpoint the service reports offline, lost result messages, and cancellation.

Real processes throughout, as in `globus_transport_test`: the SDK's executor, a
RabbitMQ broker, the stand-in web service and real endpoint processes; the
transport's waits are made short by its site settings, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from colmena_fx import serialize
from colmena_fx.configfiles import load_site
from colmena_fx.exceptions import PayloadTooLargeError
from colmena_fx.federation import Federation
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import ResourceRequirements
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.transports.globus import GlobusTransport
from colmena_fx.transports.health import Health
from colmena_fx.transports.health import HealthChange
from testing import tasks
from testing.gcservice.endpoint import EndpointProcess
from testing.gcservice.fixtures import EndpointFactory
from testing.gcservice.fixtures import write_globus_site
from testing.gcservice.service import ComputeServiceStandIn
from testing.sites import PROCESS_POOL
from testing.sites import write_federation
from testing.wait import wait_until

pytestmark = pytest.mark.usefixtures("globus_credentials")

#: Quick polls, and one request per task without the SDK's spacing of requests,
#: so a test decides which request carries which task.
QUICK = {"status_poll_s": 0.2, "lost_after_s": 60, "reconcile_after_s": 60}
ONE_PER_REQUEST = {"batch_size": 1, "api_burst_limit": 8, "api_burst_window_s": 1}


@pytest.fixture
def started() -> Iterator[list[GlobusTransport | Federation]]:
    running: list[GlobusTransport | Federation] = []
    yield running
    for item in running:
        item.stop()


def _transport(
    tmp_path: Path,
    service: ComputeServiceStandIn,
    endpoint: EndpointProcess,
    started: list[Any],
    listener: Callable[[HealthChange], None] | None = None,
    **link: Any,
) -> GlobusTransport:
    path = write_globus_site(tmp_path, "gc", service, endpoint, **{**QUICK, **link})
    transport = GlobusTransport(load_site(path), tmp_path / "run")
    transport.health.listener = listener  # as the federation does, before start
    started.append(transport)
    transport.start()
    return transport


def _submit(
    transport: GlobusTransport,
    function: Callable[..., Any],
    *args: Any,
    resources: ResourceRequirements | None = None,
) -> Future[Result]:
    result = Result(method=function.__name__, site=transport.site,
                    inputs=serialize.dumps((args, {}, None)),
                    resources=resources or ResourceRequirements())  # fmt: skip
    return transport.submit(result, function)


def _submitted(transport: GlobusTransport, function: Callable[..., Any],
               *args: Any) -> tuple[Future[Result], Result]:  # fmt: skip
    """A task and its result object, which carries the remote id once accepted."""
    result = Result(method=function.__name__, site=transport.site,
                    inputs=serialize.dumps((args, {}, None)))  # fmt: skip
    return transport.submit(result, function), result


def _outcome(result: Result) -> str:
    return "ok" if result.success else f"{result.failure}"


# -- A: an endpoint that crashes and restarts ---------------------------------------


def test_a_restarted_endpoint_loses_no_task(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    started: list[Any],
) -> None:
    """The crashed process had taken (and acknowledged) every queued task; the
    service keeps reporting them pending. Each one still completes: with its
    value, or as `endpoint_lost` for the federation to resend."""
    endpoint = start_endpoint("pool", PROCESS_POOL)
    transport = _transport(tmp_path, compute_service, endpoint, started)
    futures = [_submit(transport, tasks.sleep_then, 0.5, i) for i in range(30)]
    # Ten done take 2.5 s at least: the endpoint has taken the rest by then.
    wait_until(lambda: sum(f.done() for f in futures) >= 10, 60, "ten tasks done")
    endpoint.restart()
    wait_until(lambda: all(f.done() for f in futures), 60, "every task completing")
    results = [f.result() for f in futures]
    lost = [r for r in results if not r.success]
    assert lost, "the crash took no task: it came too late to test anything"
    for result in lost:
        assert result.failure is not None
        assert result.failure.kind is FailureKind.ENDPOINT_LOST, _outcome(result)
        assert "restarted after it had taken this task" in result.failure.message
    for i, result in enumerate(results):
        assert not result.success or result.value == i
    assert transport.status().in_flight == 0
    assert transport.health.health is Health.UP


def test_a_tasks_sent_just_before_the_crash_complete_or_fail_as_lost(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    started: list[Any],
) -> None:
    """Crashed right after the service accepted them, the endpoint may or may not
    have taken them: those the restarted process runs come back, and those not
    heard of for `reconcile_after_s` fail as lost."""
    endpoint = start_endpoint("pool", PROCESS_POOL)
    transport = _transport(tmp_path, compute_service, endpoint, started,
                           reconcile_after_s=2)  # fmt: skip
    sent = [_submitted(transport, tasks.sleep_then, 0.5, i) for i in range(10)]
    wait_until(lambda: all(r.remote_id for _, r in sent), 30, "the service accepting")
    endpoint.restart()
    wait_until(lambda: all(f.done() for f, _ in sent), 60, "every task completing")
    for i, (future, _) in enumerate(sent):
        result = future.result()
        if result.success:
            assert result.value == i
        else:
            assert result.failure is not None
            assert result.failure.kind is FailureKind.ENDPOINT_LOST, _outcome(result)
    assert transport.status().in_flight == 0


def test_a_federation_resends_what_a_restart_lost(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    started: list[Any],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    # Resent tasks go in many small requests: no spacing of them by the SDK.
    link = {**QUICK, "reconcile_after_s": 3, "api_burst_limit": 8,
            "api_burst_window_s": 1}  # fmt: skip
    site = write_globus_site(tmp_path, "gc", compute_service, endpoint, **link)
    methods = {"sleep_then": {"site": "gc", "function": "testing.tasks:sleep_then",
                              "max_retries": 3}}  # fmt: skip
    federation = Federation.from_file(write_federation(tmp_path, [site], methods))
    started.append(federation)
    federation.start()
    expected = {federation.submit("sleep_then", 0.5, i): i for i in range(20)}
    results = [federation.get_result(timeout=60) for _ in range(10)]
    endpoint.restart()
    results += [federation.get_result(timeout=90) for _ in range(10)]
    assert all(r is not None for r in results), "a task never came back"
    outcomes = {r.task_id: r.value if r.success else _outcome(r)
                for r in results if r is not None}  # fmt: skip
    assert outcomes == expected
    assert any(r.retries for r in results if r is not None), "nothing was resent"


# -- B: a refused submission fails only its own tasks --------------------------------


def test_b_a_batch_refused_as_too_large_fails_only_its_own_task(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    started: list[Any],
) -> None:
    """Accepted tasks keep running to their results, and tasks queued behind the
    refused request are sent after it."""
    endpoint = start_endpoint("pool", PROCESS_POOL)
    transport = _transport(tmp_path, compute_service, endpoint, started,
                           **ONE_PER_REQUEST)  # fmt: skip
    running = [_submitted(transport, tasks.sleep_then, 2, i) for i in range(2)]
    wait_until(
        lambda: all(r.remote_id for _, r in running), 30, "the service accepting"
    )
    compute_service.refuse_submissions(413, delay_s=0.5)  # the others queue meanwhile
    refused = _submit(transport, tasks.echo, "refused")
    queued = [_submit(transport, tasks.add, i, 1) for i in range(3)]
    failure = refused.result(timeout=30).failure
    assert failure is not None
    assert failure.kind is FailureKind.USER
    assert failure.exception_type == "SubmissionTooLargeError"
    assert "globus.submit_limit" in failure.message and "gc" in failure.message
    assert [f.result(timeout=30).value for f in queued] == [1, 2, 3]
    assert [f.result(timeout=30).value for f, _ in running] == [0, 1]
    assert _submit(transport, tasks.add, 2, 2).result(timeout=30).value == 4


def test_b_a_rate_limited_batch_fails_as_resendable_and_others_run_on(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    started: list[Any],
) -> None:
    """The SDK resends a 429 five times (after Retry-After); then the task fails
    as `endpoint_lost`, which the federation may resend, and nothing else does."""
    endpoint = start_endpoint("pool", PROCESS_POOL)
    transport = _transport(tmp_path, compute_service, endpoint, started,
                           **ONE_PER_REQUEST)  # fmt: skip
    future, running = _submitted(transport, tasks.sleep_then, 3, "ran on")
    wait_until(lambda: running.remote_id, 30, "the service accepting")
    compute_service.refuse_submissions(429, count=6)  # the request and 5 retries
    failure = _submit(transport, tasks.add, 1, 2).result(timeout=60).failure
    assert failure is not None
    assert failure.kind is FailureKind.ENDPOINT_LOST
    assert failure.exception_type == "RateLimitError"
    assert "never accepted" in failure.message
    assert future.result(timeout=30).value == "ran on"
    assert _submit(transport, tasks.add, 2, 2).result(timeout=30).value == 4


# -- C: the size check, to the byte --------------------------------------------------


def test_c_the_size_check_counts_the_request_to_the_byte(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    started: list[Any],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    transport = _transport(tmp_path, compute_service, endpoint, started)
    # Under the old count (base64 line breaks as one byte, JSON writes two) this
    # passed `submit` and the service then refused it.
    with pytest.raises(PayloadTooLargeError, match=r"site 'gc'.*'data\.stores'"):
        _submit(transport, tasks.echo, b"z" * 7_350_000)
    # From the first accepted batch on, every request names the task group.
    assert _submit(transport, tasks.add, 1, 2).result(timeout=30).value == 3
    payload = bytes(range(256)) * 400
    before = len(compute_service.submit_sizes)
    size = _submit(transport, tasks.echo, payload).result(timeout=30).sizes.request
    assert compute_service.submit_sizes[before:] == [size]  # what the service saw

    compute_service.submit_limit_bytes = transport.link.submit_limit = size
    result = _submit(transport, tasks.echo, payload).result(timeout=30)
    assert result.success and result.value == payload, _outcome(result)
    transport.link.submit_limit = size - 1
    with pytest.raises(PayloadTooLargeError, match=f"{size - 1:,} bytes"):
        _submit(transport, tasks.echo, payload)


def test_c_tasks_that_fit_alone_are_sent_in_requests_that_fit(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    started: list[Any],
) -> None:
    """Tasks each under the limit but over it together go in several requests
    (the SDK would put them in one, and the service refuse it)."""
    endpoint = start_endpoint("pool", PROCESS_POOL)
    transport = _transport(tmp_path, compute_service, endpoint, started,
                           api_burst_limit=8, api_burst_window_s=1)  # fmt: skip
    assert _submit(transport, tasks.add, 1, 2).result(timeout=30).value == 3
    payload = b"p" * 200_000
    size = _submit(transport, tasks.echo, payload).result(timeout=30).sizes.request
    limit = size + 1000
    compute_service.submit_limit_bytes = limit
    transport.link.submit_limit = limit
    before = len(compute_service.submit_sizes)
    futures = [_submit(transport, tasks.echo, payload) for _ in range(4)]
    results = [f.result(timeout=30) for f in futures]
    assert all(r.success for r in results), [_outcome(r) for r in results]
    assert all(s <= limit for s in compute_service.submit_sizes[before:])


# -- D: health ----------------------------------------------------------------------


def test_d_health_follows_the_endpoint_through_an_outage(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    started: list[Any],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    assert endpoint.endpoint_id is not None
    changes: list[HealthChange] = []
    transport = _transport(tmp_path, compute_service, endpoint, started,
                           listener=changes.append, lost_after_s=1.5)  # fmt: skip
    assert transport.health.health is Health.UP
    assert transport.status().capacity == PROCESS_POOL["max_workers"]
    in_flight = _submit(transport, tasks.sleep_then, 30, "never")

    compute_service.set_offline(endpoint.endpoint_id)
    wait_until(lambda: transport.health.health is Health.DEGRADED, 10, "degraded")
    wait_until(lambda: transport.health.health is Health.LOST, 10, "lost")
    failure = in_flight.result(timeout=10).failure
    assert failure is not None and failure.kind is FailureKind.ENDPOINT_LOST
    assert "offline" in failure.message
    refused = _submit(transport, tasks.add, 1, 1).result(timeout=1).failure
    assert refused is not None and refused.kind is FailureKind.ENDPOINT_LOST

    compute_service.set_offline(endpoint.endpoint_id, False)
    wait_until(lambda: transport.health.health is Health.UP, 10, "up again")
    assert _submit(transport, tasks.add, 1, 1).result(timeout=30).value == 2

    compute_service.status_error = 503
    wait_until(lambda: transport.health.health is Health.DEGRADED, 10, "degraded")
    assert transport.health.current.reason.startswith("status unknown: ")
    assert "503" in transport.health.current.reason
    compute_service.status_error = None
    wait_until(lambda: transport.health.health is Health.UP, 10, "up again")
    healths = [change.health for change in changes]
    assert healths == [Health.UP, Health.DEGRADED, Health.LOST, Health.UP,
                       Health.DEGRADED, Health.UP]  # fmt: skip
    status = transport.status()
    assert status.health is Health.UP and status.health_since is not None


# -- lost result messages, cancellation ---------------------------------------------


def test_results_the_result_queue_never_delivered_arrive_by_lookup(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    started: list[Any],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    transport = _transport(tmp_path, compute_service, endpoint, started,
                           reconcile_after_s=1)  # fmt: skip
    compute_service.forward_results = False
    done = _submit(transport, tasks.add, 2, 3)
    failed = _submit(transport, tasks.fail_with, "looked up")  # a failure, too
    result = done.result(timeout=30)
    assert result.value == 5, _outcome(result)
    names = {event.name for event in result.timeline.events}
    assert {Stamp.WORKER_STARTED, Stamp.COMPUTE_ENDED, Stamp.RECEIVED} <= names
    failure = failed.result(timeout=30).failure
    assert failure is not None and failure.kind is FailureKind.USER
    assert "looked up" in failure.traceback


def test_e_cancel_completes_the_task_once_and_drops_its_late_result(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    started: list[Any],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    transport = _transport(tmp_path, compute_service, endpoint, started)
    future, result = _submitted(transport, tasks.sleep_then, 1, "late")
    wait_until(lambda: result.remote_id, 30, "the service accepting")
    failure = Failure(kind=FailureKind.TIMEOUT, exception_type="TaskTimeoutError",
                      message="cancelled by the test")  # fmt: skip
    assert transport.cancel(result.task_id, failure) is True
    assert future.done() and future.result().failure == failure
    assert transport.cancel(result.task_id, failure) is False
    assert transport.cancel("no-such-task", failure) is False
    remote = compute_service.tasks[result.remote_id or ""]
    wait_until(lambda: remote.status == "success", 30, "the endpoint running it anyway")
    assert _submit(transport, tasks.add, 1, 1).result(timeout=30).value == 2
    assert future.result().failure == failure and future.result().value is None
    assert transport.status().in_flight == 0
