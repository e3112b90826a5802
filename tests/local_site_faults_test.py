"""A local site that crashes, hangs, is cancelled or is sent garbage: real endpoints.

Waits are short by configuration (heartbeats every 0.2 s, restarts after 0.2 s) and
end as soon as what they wait for happens; gates (files the test creates) hold
workers where a test needs a task to stay running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
import zmq
from pydantic import ValidationError

from colmena_fx.endpoint import wire
from colmena_fx.endpoint.process import session_processes
from colmena_fx.federation import Federation
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.transports.health import Health
from colmena_fx.transports.local import LocalTransport
from colmena_fx.transports.local import backoff_delays
from colmena_fx.transports.local import heartbeat_health
from testing.faults import HealthLog
from testing.faults import gone
from testing.faults import raw_client
from testing.sites import HTEX
from testing.sites import FederationFactory
from testing.sites import write_site
from testing.wait import wait_until

#: Quick heartbeats and restarts; a generous timeout, so a busy machine is not lost.
FAST: dict[str, Any] = {
    "heartbeat_s": 0.2,
    "heartbeat_timeout_s": 10,
    "restart": {"backoff_initial_s": 0.2},
}
ONE_THREAD: dict[str, Any] = {"type": "ThreadPoolEngine", "max_workers": 1}


def _methods(site: str, *names: str) -> dict[str, dict[str, Any]]:
    module = {"hold": "testing.faults", "wait_for_file": "testing.faults"}
    return {
        name: {"site": site, "function": f"{module.get(name, 'testing.tasks')}:{name}"}
        for name in names
    }


def _local(federation: Federation, site: str) -> LocalTransport:
    transport = federation.transports[site]
    assert isinstance(transport, LocalTransport)
    return transport


def _value(federation: Federation, timeout: float = 60) -> Any:
    result = federation.get_result(timeout=timeout)
    assert result is not None, "no result arrived"
    assert result.success, result.failure
    return result.value


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


# -- decisions, without processes ------------------------------------------------------


@pytest.mark.parametrize(
    ("silence", "timeout", "health"),
    [
        (0.1, 1.5, Health.UP),
        (0.6, 1.5, Health.UP),  # three periods exactly: not yet late
        (0.7, 1.5, Health.DEGRADED),
        (1.6, 1.5, Health.LOST),
        (0.5, 0.4, Health.LOST),  # a timeout under three periods: never degraded
    ],
)
def test_heartbeat_health_by_silence(
    silence: float, timeout: float, health: Health
) -> None:
    assert heartbeat_health(silence, 0.2, timeout) is health


def test_restart_backoff_doubles_up_to_its_max() -> None:
    assert backoff_delays(5, 1, 60) == [1, 2, 4, 8, 16]
    assert backoff_delays(4, 10, 30) == [10, 20, 30, 30]
    assert backoff_delays(0, 1, 60) == []


def test_task_ids_on_the_wire_are_canonical_uuids() -> None:
    good = str(uuid.uuid4())
    assert wire.TaskHeader(task_id=good).task_id == good
    for bad in ["x", good.upper(), f"{{{good}}}", ""]:
        with pytest.raises(ValidationError, match="task_id must be"):
            wire.TaskHeader(task_id=bad)
        with pytest.raises(wire.WireError, match="bad cancel header"):
            wire.decode([b"cancel", json.dumps({"task_id": bad}).encode()])
    kind, header, _ = wire.decode(
        wire.encode(wire.Kind.CANCEL, wire.CancelHeader(task_id=good))
    )
    assert kind is wire.Kind.CANCEL and header.task_id == good


# -- an endpoint that died -------------------------------------------------------------


def test_killed_htex_endpoint_is_reaped_at_once_then_restarted(
    make_federation: FederationFactory,
) -> None:
    # Workers that would wait two minutes for their interchange before exiting.
    engine = {**HTEX, "heartbeat_threshold": 120}
    federation = make_federation(
        _methods("hpc", "add", "sleep_then"), sites={"hpc": engine}, local=FAST
    )
    transport = _local(federation, "hpc")
    federation.submit("add", 1, 2)
    assert _value(federation, 90) == 3  # the workers are up
    assert transport.status().capacity == 2  # max_workers_per_node, one block
    endpoint = transport.process.pid
    assert endpoint is not None and transport.process.info is not None
    left = [p for p in session_processes(endpoint) if p.pid != endpoint]
    commands = " ".join(" ".join(p.cmdline()) for p in left)
    assert "interchange" in commands and "process_worker_pool" in commands, commands
    socket_dir = Path(transport.process.info.address.removeprefix("ipc://")).parent
    assert socket_dir.name.startswith("cfx-") and socket_dir.is_dir()
    health = HealthLog(transport.health)

    task = federation.submit("sleep_then", 60)
    wait_until(lambda: transport.status().in_flight == 1, 10, "the task in flight")
    transport.process.kill()
    lost = federation.get_result(timeout=30)
    assert lost is not None and lost.task_id == task and lost.failure is not None
    assert lost.failure.kind is FailureKind.ENDPOINT_LOST
    wait_until(
        lambda: all(gone(p) for p in left),
        10,
        "the killed endpoint's interchange and workers exiting",
    )
    wait_until(lambda: not socket_dir.exists(), 10, "its socket directory removed")

    wait_until(lambda: transport.health.health is Health.UP, 90, "the site restarting")
    assert health.healths() == [Health.LOST, Health.RECOVERING, Health.UP]
    assert "exited (status -9)" in health.reasons(Health.LOST)[0]
    assert health.reasons(Health.RECOVERING) == [
        "restart 1 of 5 in 0.2 s",
        "restart 1 of 5: starting the endpoint",
    ]
    status = transport.status()
    assert status.state == "running" and status.capacity == 2
    assert transport.process.pid != endpoint
    federation.submit("add", 2, 3)
    assert _value(federation, 90) == 5


def test_restarts_that_all_fail_leave_the_site_lost_naming_its_log(
    make_federation: FederationFactory,
) -> None:
    local = {**FAST, "restart": {"attempts": 2, "backoff_initial_s": 0.2}}
    federation = make_federation(_methods("cpu", "add"), local=local)
    transport = _local(federation, "cpu")
    health = HealthLog(transport.health)
    # From now on the endpoint cannot start: its engine refuses its worker count.
    source = transport.config.source
    assert source is not None
    broken = {"type": "ProcessPoolEngine", "max_workers": -1}
    write_site(source.parent, source.stem, broken, local=local)
    transport.process.kill()

    wait_until(
        lambda: "did not restart" in transport.health.current.reason,
        60,
        "the site giving up its restarts",
    )
    assert health.healths() == [Health.LOST, Health.RECOVERING, Health.LOST]
    assert health.reasons(Health.RECOVERING) == [
        "restart 1 of 2 in 0.2 s",
        "restart 1 of 2: starting the endpoint",
        "restart 2 of 2 in 0.4 s",
        "restart 2 of 2: starting the endpoint",
    ]
    final = transport.health.current.reason
    assert "in 2 attempts" in final and str(transport.process.log_path) in final
    status = transport.status()
    assert status.state == "lost" and status.detail == final  # what submit says
    wait_until(lambda: not _threads("cfx-restart-cpu"), 10, "the restarter ending")


def test_no_restart_when_restart_attempts_is_zero(
    make_federation: FederationFactory,
) -> None:
    local = {**FAST, "restart": {"attempts": 0}}
    federation = make_federation(_methods("cpu", "add"), local=local)
    transport = _local(federation, "cpu")
    transport.process.kill()
    wait_until(lambda: not _threads("cfx-rx-cpu"), 10, "the receiver ending")
    assert not _threads("cfx-restart-cpu")
    assert transport.health.health is Health.LOST
    assert "local.restart.attempts is 0" in transport.health.current.reason
    assert transport.status().state == "lost"


def test_stop_during_a_restart_backoff_returns_and_leaves_nothing(
    make_federation: FederationFactory,
) -> None:
    local = {**FAST, "restart": {"backoff_initial_s": 600, "backoff_max_s": 600}}
    federation = make_federation(_methods("cpu", "add"), local=local)
    transport = _local(federation, "cpu")
    transport.process.kill()
    wait_until(
        lambda: transport.health.current.reason == "restart 1 of 5 in 600 s",
        10,
        "the restart waiting",
    )
    federation.stop()
    assert not _threads("cfx-restart-cpu")  # the wait was cut short, not outlived
    assert transport.status().state == "stopped"


def test_stop_while_a_restart_starts_the_endpoint_leaves_nothing(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(_methods("cpu", "add"), local=FAST)
    transport = _local(federation, "cpu")
    first = transport.process.pid
    transport.process.kill()
    wait_until(lambda: transport.process.pid != first, 30, "a new endpoint spawned")
    restarted = transport.process.pid
    assert restarted is not None
    os.kill(restarted, signal.SIGSTOP)  # now it never finishes starting
    federation.stop()
    assert not _threads("cfx-restart-cpu")
    with contextlib.suppress(psutil.NoSuchProcess):  # reaped: no such pid at all
        assert gone(psutil.Process(restarted))
    assert session_processes(restarted) == []


# -- an endpoint that went silent ------------------------------------------------------


def test_stopped_endpoint_is_lost_then_rejoins_when_continued(
    make_federation: FederationFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="colmena_fx.transports.local")
    local = {"heartbeat_s": 0.2, "heartbeat_timeout_s": 1.0}
    federation = make_federation(_methods("cpu", "add", "wait_for_file"), local=local)
    transport = _local(federation, "cpu")
    health = HealthLog(transport.health)
    endpoint = transport.process.pid
    assert endpoint is not None
    gate = tmp_path / "gate"
    task = federation.submit("wait_for_file", str(gate))
    wait_until(lambda: transport.status().in_flight == 1, 10, "the task in flight")

    os.kill(endpoint, signal.SIGSTOP)
    try:
        lost = federation.get_result(timeout=30)
        assert lost is not None and lost.task_id == task and lost.failure is not None
        assert lost.failure.kind is FailureKind.ENDPOINT_LOST
        assert "has not been heard from for 1 s" in lost.failure.message
        wait_until(lambda: transport.status().state == "lost", 10, "the site lost")
        gate.touch()  # the task finishes while its endpoint is stopped
    finally:
        os.kill(endpoint, signal.SIGCONT)

    wait_until(lambda: transport.health.health is Health.UP, 30, "the site rejoining")
    assert transport.process.pid == endpoint  # the same endpoint: no restart
    assert Health.LOST in health.healths() and Health.RECOVERING not in health.healths()
    assert transport.status().state == "running"
    federation.submit("add", 2, 3)
    assert _value(federation) == 5
    # The lost task's result still came, and was dropped: it had been failed.
    wait_until(
        lambda: f"returned task {task}, which is no longer in flight" in caplog.text,
        30,
        "the lost task's late result being dropped",
    )


def test_late_heartbeats_degrade_the_site_until_heard_again(
    make_federation: FederationFactory, tmp_path: Path
) -> None:
    local = {"heartbeat_s": 0.2, "heartbeat_timeout_s": 60}
    federation = make_federation(_methods("cpu", "wait_for_file"), local=local)
    transport = _local(federation, "cpu")
    health = HealthLog(transport.health)
    endpoint = transport.process.pid
    assert endpoint is not None
    gate = tmp_path / "gate"
    federation.submit("wait_for_file", str(gate))
    wait_until(lambda: transport.status().in_flight == 1, 10, "the task in flight")

    os.kill(endpoint, signal.SIGSTOP)
    try:
        wait_until(
            lambda: transport.health.health is Health.DEGRADED, 30, "the site degraded"
        )
        assert transport.health.usable  # late, but still given work
        assert transport.health.current.reason.startswith("heartbeats late: last heard")
    finally:
        os.kill(endpoint, signal.SIGCONT)
    wait_until(lambda: transport.health.health is Health.UP, 30, "the site up again")
    assert Health.LOST not in health.healths()
    gate.touch()
    assert _value(federation) == str(gate)  # its task in flight was never failed


# -- cancelling ------------------------------------------------------------------------


def test_cancel_completes_tasks_at_once_and_the_endpoint_drops_them(
    make_federation: FederationFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="colmena_fx.transports.local")
    federation = make_federation(
        _methods("one", "hold", "echo"), sites={"one": ONE_THREAD}, local=FAST
    )
    transport = _local(federation, "one")
    assert transport.status().capacity == 1
    gate, started = tmp_path / "gate", tmp_path / "started"
    running = federation.submit("hold", str(gate), str(started))
    wait_until(started.exists, 30, "the first task holding the only worker")
    queued = federation.submit("echo", "never run")
    failure = Failure(
        kind=FailureKind.TIMEOUT, exception_type="TaskTimeoutError", message="late"
    )

    assert transport.cancel(queued, failure)
    assert transport.cancel(running, failure)
    assert not transport.cancel(queued, failure)  # completed once, already
    results = [federation.get_result(timeout=5) for _ in range(2)]
    assert {r.task_id for r in results if r} == {queued, running}
    assert all(r and r.failure == failure for r in results)

    log = transport.process.log_path
    wait_until(
        lambda: f"task {queued} cancelled before it started" in log.read_text(),
        10,
        "the endpoint cancelling the queued task",
    )
    wait_until(
        lambda: f"task {running} cancelled after a worker took it" in log.read_text(),
        10,
        "the endpoint noting the running task",
    )
    gate.touch()
    wait_until(
        lambda: (
            f"task {running} was cancelled by the client: result dropped"
            in log.read_text()
        ),
        30,
        "the endpoint dropping the running task's result",
    )
    # One worker, in order: had the queued task run, its result would come first.
    federation.submit("echo", "after")
    assert _value(federation) == "after"
    assert "no longer in flight" not in caplog.text  # no result came for either


# -- garbage on the link ---------------------------------------------------------------


def test_malformed_messages_are_dropped_and_the_endpoint_serves_on(
    make_federation: FederationFactory,
) -> None:
    federation = make_federation(_methods("cpu", "add"), local=FAST)
    transport = _local(federation, "cpu")
    info, endpoint = transport.process.info, transport.process.pid
    assert info is not None
    task_id = str(uuid.uuid4())
    malformed = [
        [b"task", b'{"task_id": "not-a-uuid"}', b"payload"],
        [b"task", json.dumps({"task_id": task_id.upper()}).encode(), b"payload"],
        [b"task", json.dumps({"task_id": task_id}).encode()],  # no payload
        [b"task", json.dumps({"task_id": task_id, "x": 1}).encode(), b"payload"],
        [b"task", b"{not json", b"payload"],
        [b"cancel", b'{"task_id": "../../etc"}'],
        [b"bogus", b"{}"],
        [b"\xff\xfe", b"{}"],
        [b"hello"],  # one frame
    ]
    unexpected = wire.encode(
        wire.Kind.RESULT, wire.ResultHeader(results=[], sent_ns=0, host="me")
    )
    unknown = wire.encode(wire.Kind.CANCEL, wire.CancelHeader(task_id=task_id))
    log = transport.process.log_path
    ctx: zmq.Context[zmq.Socket[Any]] = zmq.Context()
    try:  # no HELLO: results stay the federation's
        sock = raw_client(ctx, info)
        for frames in [*malformed, unexpected, unknown]:
            sock.send_multipart(frames)
        wait_until(
            lambda: (
                log.read_text().count("dropped a malformed message") == len(malformed)
                and "dropped an unexpected result message" in log.read_text()
            ),
            30,
            "the endpoint dropping every malformed message",
        )
    finally:
        ctx.destroy(linger=0)
    assert transport.process.exit_code() is None and transport.process.pid == endpoint
    assert "Traceback" not in log.read_text()
    federation.submit("add", 2, 3)
    assert _value(federation) == 5
    assert transport.health.health is Health.UP
