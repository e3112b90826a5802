"""A campaign outlives its client: kill -9 of a real client process, then resume.

The client (`testing.resumable`) submits tasks that log each finished run to a
file, so a task run twice shows. It is killed between two results it took, and the
run is resumed here, in the test's process, from its run directory alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from colmena_fx.endpoint.process import session_processes
from colmena_fx.exceptions import RunDirectoryError
from colmena_fx.federation import Federation
from colmena_fx.journal import read_journal
from colmena_fx.latency.tasks import TaskState
from colmena_fx.latency.tasks import read_task_facts
from colmena_fx.models import Result
from colmena_fx.records import RecordFile
from colmena_fx.records import read_records
from colmena_fx.replay import read_run
from colmena_fx.report import write_report
from colmena_fx.taskstore import REQUESTS_NAME
from colmena_fx.transports.globus_service import ACCESS_TOKEN_ENV
from testing.gcservice.fixtures import EndpointFactory
from testing.gcservice.fixtures import write_globus_site
from testing.gcservice.service import ComputeServiceStandIn
from testing.resumable import Client
from testing.sites import PROCESS_POOL
from testing.sites import write_federation
from testing.sites import write_site
from testing.wait import wait_until

QUICK_LINK: dict[str, Any] = {"heartbeat_s": 0.2, "heartbeat_timeout_s": 2.0}
METHODS = {"logged_run": {"site": "cpu", "function": "testing.tasks:logged_run"}}
TASKS = 12
REPO = Path(__file__).resolve().parents[1]


def _runs(log: Path) -> Counter[int]:
    """How many times each task index finished a run."""
    if not log.exists():
        return Counter()
    return Counter(int(line) for line in log.read_text().split())


def _take_all(federation: Federation, count: int) -> list[Result]:
    results = []
    for _ in range(count):
        result = federation.get_result(timeout=60)
        assert result is not None, f"only {len(results)} of {count} results came"
        results.append(result)
    return results


def _endpoint_pid(run_dir: Path, site: str) -> int:
    path = run_dir / "sites" / site / "connection.json"
    wait_until(path.exists, 30, "the endpoint's connection file")
    return int(json.loads(path.read_text())["pid"])


def _check_whole(
    federation: Federation, before: list[int], after: list[Result]
) -> None:
    """Exactly one result per submitted task, across the two clients, and a report
    of the run that counts every task and the resume."""
    resumed = [r.task_info["index"] for r in federation.resumed]
    assert resumed == before  # what the killed client took, in its order
    indexes = resumed + [r.task_info["index"] for r in after]
    assert sorted(indexes) == list(range(TASKS))
    assert all(r.success for r in after), [r.failure for r in after]
    assert federation.run_dir is not None
    facts = read_task_facts(federation.run_dir)
    assert len(facts.tasks) == TASKS
    assert {row.state for row in facts.tasks} == {TaskState.SUCCEEDED}
    assert len(facts.lifecycle.resumes) == 1 and facts.lifecycle.clean
    page = write_report(federation.run_dir).read_text()
    assert "resumed" in page


# -- (c) an embedded endpoint dies with its client: its tasks are sent again ----------


def test_embedded_site_resends_what_its_dead_endpoint_had(tmp_path: Path) -> None:
    site = write_site(tmp_path, "cpu", PROCESS_POOL, local=QUICK_LINK)
    path = write_federation(tmp_path, [site], METHODS)
    log = tmp_path / "runs.log"
    client = Client(str(path), str(log), "--tasks", str(TASKS), "--seconds", "0.3")
    run_dir = client.run_dir
    endpoint = _endpoint_pid(run_dir, "cpu")
    client.wait_for("fourth result", lambda: len(client.delivered()) >= 4)
    client.kill()
    before = client.delivered()
    # The endpoint and everything it started end with their client.
    wait_until(lambda: not session_processes(endpoint), 30, "the endpoint's exit")
    finished_before = _runs(log)

    federation = Federation.resume(run_dir)
    with federation:
        after = _take_all(federation, len(federation.resumed_pending))
        assert len(federation.resumed_pending) == TASKS - len(before)
    _check_whole(federation, before, after)
    runs = _runs(log)
    # A task that had finished is never run again; those in flight run again, but
    # the dead endpoint ran none of what it had queued and not started.
    for index in before:
        assert runs[index] == 1
    # (At most the tasks running at the kill, and those started before the
    # endpoint noticed its client gone, a heartbeat later.)
    workers = PROCESS_POOL["max_workers"]
    assert sum(runs.values()) <= TASKS + 2 * workers, runs
    resent = [r for r in after if r.retries]
    assert resent and all(r.retries == 1 for r in resent)
    retried = [e["task"] for e in read_journal(run_dir) if e["event"] == "retried"]
    assert {line["reason"] for line in retried} == {"client_restart"}
    assert {line["task_id"] for line in retried} == {r.task_id for r in resent}
    assert all(runs[i] >= finished_before[i] for i in range(TASKS))
    lines = [e["task"] for e in read_journal(run_dir) if e["event"] == "resumed"]
    assert len(lines) == 1 and lines[0]["resent"] == len(resent)


def test_results_finished_but_never_taken_are_delivered_again(tmp_path: Path) -> None:
    site = write_site(tmp_path, "cpu", PROCESS_POOL, local=QUICK_LINK)
    path = write_federation(tmp_path, [site], METHODS)
    log = tmp_path / "runs.log"
    client = Client(str(path), str(log), "--tasks", str(TASKS), "--seconds", "0",
                    "--take", "3")  # fmt: skip
    run_dir = client.run_dir
    client.wait_for("the wait", lambda: "waiting" in client.lines)
    # Every task finishes while the client no longer takes results.
    wait_until(lambda: sum(_runs(log).values()) == TASKS, 30, "every run")
    wait_until(
        lambda: sum(h["kind"] == "result"
                    for h, _ in read_records(run_dir / "results.records")) == TASKS,
        30, "every result kept",
    )  # fmt: skip
    client.kill()
    federation = Federation.resume(run_dir)
    with federation:
        after = _take_all(federation, len(federation.resumed_pending))
    _check_whole(federation, client.delivered(), after)
    assert all(r.retries == 0 for r in after)  # redelivered, not sent again
    assert _runs(log) == Counter(range(TASKS))  # nothing ran twice


# -- (a) a globus site: the service kept the tasks; nothing runs twice --------------


def test_globus_site_reattaches_by_remote_id_and_runs_nothing_twice(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    globus_credentials: str,
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    site = write_globus_site(tmp_path, "cpu", compute_service, endpoint,
                             status_poll_s=0.2)  # fmt: skip
    path = write_federation(tmp_path, [site], METHODS)
    log = tmp_path / "runs.log"
    client = Client(str(path), str(log), "--tasks", str(TASKS), "--seconds", "0.3",
                    env={ACCESS_TOKEN_ENV: globus_credentials})  # fmt: skip
    run_dir = client.run_dir
    client.wait_for("fourth result", lambda: len(client.delivered()) >= 4)
    client.kill()
    before = client.delivered()

    federation = Federation.from_file(path, resume=run_dir)
    with federation:
        after = _take_all(federation, len(federation.resumed_pending))
    _check_whole(federation, before, after)
    assert _runs(log) == Counter(range(TASKS))  # every task ran exactly once
    resumed = [e["task"] for e in read_journal(run_dir) if e["event"] == "resumed"]
    reattached = resumed[0]["reattached"].get("cpu", 0)
    assert reattached + resumed[0]["resent"] + resumed[0]["redelivered"] == len(after)
    assert reattached > 0


# -- (b) an attached standalone endpoint kept the tasks and their results ----------


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Path]:
    """A site file attaching to a standalone endpoint (running until the test ends)."""
    run_dir = tmp_path / "endpoint-run"
    local = {**QUICK_LINK, "attach": str(run_dir / "connection.json")}
    site = write_site(tmp_path, "cpu", PROCESS_POOL, local=local)
    log = tmp_path / "endpoint.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # its workers import testing.tasks
    with open(log, "wb") as out:
        endpoint = subprocess.Popen(
            [sys.executable, "-m", "colmena_fx.endpoint", str(site),
             "--run-dir", str(run_dir)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )  # fmt: skip
    try:
        wait_until(lambda: "ready;" in log.read_text(), 60, "the endpoint starting")
        yield site
    finally:
        endpoint.send_signal(signal.SIGTERM)
        endpoint.wait(30)
    assert not session_processes(endpoint.pid)


def test_attached_endpoint_hands_over_what_finished_and_runs_nothing_twice(
    tmp_path: Path, standalone: Path
) -> None:
    path = write_federation(tmp_path, [standalone], METHODS)
    log = tmp_path / "runs.log"
    client = Client(str(path), str(log), "--tasks", str(TASKS), "--seconds", "0.3")
    run_dir = client.run_dir
    client.wait_for("fourth result", lambda: len(client.delivered()) >= 4)
    client.kill()
    before = client.delivered()
    # The endpoint goes on: every task finishes while no client is attached.
    wait_until(lambda: sum(_runs(log).values()) == TASKS, 60, "every run")

    federation = Federation.resume(run_dir)
    with federation:
        after = _take_all(federation, len(federation.resumed_pending))
    _check_whole(federation, before, after)
    assert _runs(log) == Counter(range(TASKS))  # every task ran exactly once
    resumed = [e["task"] for e in read_journal(run_dir) if e["event"] == "resumed"]
    assert resumed[0]["resent"] == 0
    assert resumed[0]["reattached"].get("cpu", 0) + resumed[0]["redelivered"] == len(
        after
    )


def test_tasks_a_clean_stop_failed_are_sent_again_on_resume(tmp_path: Path) -> None:
    """Ctrl-C stops the federation cleanly: what it failed in flight is not done."""
    site = write_site(tmp_path, "cpu", PROCESS_POOL, local=QUICK_LINK)
    path = write_federation(tmp_path, [site], METHODS)
    log = tmp_path / "runs.log"
    with Federation.from_file(path) as federation:
        for index in range(6):
            federation.submit("logged_run", str(log), index, 0.5,
                              task_info={"index": index})  # fmt: skip
        (first,) = _take_all(federation, 1)
    # Delivered as failed by the stop (but for any that finished meanwhile).
    stopped = _take_all(federation, 5)
    assert [r for r in stopped if not r.success]
    assert federation.run_dir is not None
    resumed = Federation.resume(federation.run_dir)
    with resumed:
        assert [r.task_id for r in resumed.resumed] == [first.task_id]
        after = _take_all(resumed, len(resumed.resumed_pending))
    assert sorted(r.task_info["index"] for r in [first, *after]) == list(range(6))
    assert all(r.success for r in after)


# -- the run directory -------------------------------------------------------------


def test_a_second_client_on_a_run_is_refused(tmp_path: Path) -> None:
    site = write_site(tmp_path, "cpu", PROCESS_POOL, local=QUICK_LINK)
    path = write_federation(tmp_path, [site], METHODS)
    log = tmp_path / "runs.log"
    first = Federation.from_file(path)
    with first:
        first.submit("logged_run", str(log), 0, task_info={"index": 0})
        assert first.run_dir is not None
        second = Federation.resume(first.run_dir)
        with pytest.raises(RunDirectoryError, match="steered by another client"):
            second.start()
        _take_all(first, 1)


def test_resuming_a_directory_without_a_run_says_so(tmp_path: Path) -> None:
    with pytest.raises(RunDirectoryError, match=r"federation\.json"):
        Federation.resume(tmp_path)


def test_a_torn_record_is_cut_off_and_the_file_goes_on(tmp_path: Path) -> None:
    records = RecordFile(tmp_path / REQUESTS_NAME)
    records.open()
    records.append({"kind": "x", "n": 1}, b"first")
    records.append({"kind": "x", "n": 2}, b"second")
    records.close()
    whole = (tmp_path / REQUESTS_NAME).read_bytes()
    (tmp_path / REQUESTS_NAME).write_bytes(whole[:-3])  # killed mid-write
    assert [h["n"] for h, _ in read_records(tmp_path / REQUESTS_NAME)] == [1]
    records = RecordFile(tmp_path / REQUESTS_NAME)
    records.open()
    records.append({"kind": "x", "n": 3}, b"third")
    records.close()
    read = list(read_records(tmp_path / REQUESTS_NAME))
    assert [(h["n"], p) for h, p in read] == [(1, b"first"), (3, b"third")]


def test_a_clean_run_replays_as_finished(tmp_path: Path) -> None:
    site = write_site(tmp_path, "cpu", PROCESS_POOL, local=QUICK_LINK)
    path = write_federation(tmp_path, [site], METHODS)
    log = tmp_path / "runs.log"
    with Federation.from_file(path) as federation:
        for index in range(3):
            federation.submit("logged_run", str(log), index, task_info={"i": index})
        taken = _take_all(federation, 3)
    assert federation.run_dir is not None
    replay = read_run(federation.run_dir)
    assert replay.stopped_cleanly
    assert [r.task_id for r in replay.delivered] == [r.task_id for r in taken]
    assert [r.value for r in replay.delivered] == [r.value for r in taken]
    assert replay.unfinished == [] and replay.undelivered == []
