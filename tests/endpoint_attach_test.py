"""Endpoints that outlive the client: `local.attach`, one client at a time, results
kept until acknowledged and handed over to the same run, spilled past the buffer.

Real endpoints run as `python -m colmena_fx.endpoint` (one as `colmena-fx endpoint
start`); a client that dies is a real process killed with SIGKILL. Waits are short
by configuration (heartbeats every 0.2 s, a client silent for 2 s is gone).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq

from colmena_fx import serialize
from colmena_fx.configfiles import load_site
from colmena_fx.endpoint import wire
from colmena_fx.exceptions import ConfigError
from colmena_fx.exceptions import EndpointError
from colmena_fx.federation import Federation
from colmena_fx.models import HOST
from colmena_fx.models import Result
from colmena_fx.transports import gcformat
from colmena_fx.transports.local import LocalTransport
from testing.faults import raw_client
from testing.faults import wait_for_file
from testing.sites import THREAD_POOL
from testing.sites import FederationFactory
from testing.sites import write_site
from testing.wait import wait_until

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
#: Workers import `record` from this module, so the endpoint's path holds tests/.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
FAST: dict[str, Any] = {"heartbeat_s": 0.2, "heartbeat_timeout_s": 2}


def record(log: str, gate: str, value: int, size: int = 0) -> Any:
    """Run on a worker: note the run in `log`, hold until `gate`, note the end."""
    with open(log, "a") as stream:
        stream.write(f"ran {value}\n")
    wait_for_file(gate)
    with open(log, "a") as stream:
        stream.write(f"done {value}\n")
    return b"x" * size if size else value


def record_task(work: Path, value: int, size: int = 0) -> Result:
    """A `record` task as the federation packs one: (args, kwargs, policy, context)."""
    args = (str(work / "log"), str(work / "gate"), value, size)
    inputs = serialize.dumps((args, {}, None, None))
    return Result(method="record", site="cpu", inputs=inputs)


def lines(work: Path, word: str) -> list[str]:
    log = work / "log"
    text = log.read_text() if log.exists() else ""
    return sorted(line for line in text.splitlines() if line.startswith(word))


#: A client in a process of its own: attaches, sends `count` record tasks, writes
#: their ids, then waits to be killed.
CLIENT = """
import json, logging, sys, threading
logging.basicConfig(level=logging.INFO)
from pathlib import Path
from colmena_fx.configfiles import load_site
from colmena_fx.transports.local import LocalTransport
from endpoint_attach_test import record, record_task
site_file, run_dir, work, count, size = sys.argv[1:6]
transport = LocalTransport(load_site(site_file), Path(run_dir))
transport.start()
ids = []
for value in range(int(count)):
    task = record_task(Path(work), value, int(size))
    transport.submit(task, record)
    ids.append(task.task_id)
Path(work, "ids.tmp").write_text(json.dumps(ids))
Path(work, "ids.tmp").replace(Path(work, "ids.json"))
threading.Event().wait()
"""


@dataclass
class Endpoint:
    proc: subprocess.Popen[bytes]
    site_file: Path
    run_dir: Path
    log: Path

    @property
    def connection_file(self) -> Path:
        return self.run_dir / "connection.json"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def spilled(self) -> list[Path]:
        return sorted((self.run_dir / "results").glob("*.result"))


@pytest.fixture
def start_endpoint(tmp_path: Path) -> Iterator[Any]:
    """Start endpoints as their own processes; each is stopped (SIGTERM) after."""
    started: list[Endpoint] = []

    def start(cli: bool = False, **local: Any) -> Endpoint:
        (tmp_path / "endpoint").mkdir(exist_ok=True)
        local = {**FAST, **local}
        site_file = write_site(tmp_path / "endpoint", "cpu", THREAD_POOL, local=local)
        run_dir = tmp_path / f"endpoint-run-{len(started)}"
        command = (
            [sys.executable, "-m", "colmena_fx.cli", "endpoint", "start"]
            if cli
            else [sys.executable, "-m", "colmena_fx.endpoint"]
        )
        log = tmp_path / f"endpoint-{len(started)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [*command, str(site_file), "--run-dir", str(run_dir)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=ENV,
                cwd=tmp_path,
            )
        endpoint = Endpoint(proc, site_file, run_dir, log)
        started.append(endpoint)

        def ready() -> bool:
            assert proc.poll() is None, endpoint.log_text()
            return "ready; connection file" in endpoint.log_text()

        wait_until(ready, 60, "the endpoint starting")
        return endpoint

    yield start
    for endpoint in started:
        if endpoint.proc.poll() is None:
            endpoint.proc.send_signal(signal.SIGTERM)
        try:
            endpoint.proc.wait(30)
        except subprocess.TimeoutExpired:
            endpoint.proc.kill()
            endpoint.proc.wait()


def client_site(tmp_path: Path, endpoint: Endpoint, name: str = "client") -> Path:
    """A site file of the client's own, naming the endpoint's connection file."""
    directory = tmp_path / name
    directory.mkdir(exist_ok=True)
    attach = os.path.relpath(endpoint.connection_file, directory)
    return write_site(directory, "cpu", THREAD_POOL, local={**FAST, "attach": attach})


def attached(site_file: Path, run: Path) -> LocalTransport:
    """A started transport of run `run` (its site run directory: run/sites/cpu)."""
    transport = LocalTransport(load_site(site_file), run / "sites" / "cpu")
    transport.start()
    return transport


@pytest.fixture
def client_process(tmp_path: Path) -> Iterator[Any]:
    """Start client processes (see CLIENT); each is killed and waited for after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(site_file: Path, run: Path, work: Path, count: int, size: int = 0) -> Any:
        work.mkdir(exist_ok=True)
        with open(work / "client.log", "wb") as out:
            run_dir = run / "sites" / "cpu"
            proc = subprocess.Popen(
                [sys.executable, "-c", CLIENT, str(site_file), str(run_dir),
                 str(work), str(count), str(size)],
                stdout=out, stderr=subprocess.STDOUT, env=ENV, cwd=tmp_path,
            )  # fmt: skip
        started.append(proc)

        def ids_written() -> bool:
            log = (work / "client.log").read_text(errors="replace")
            assert proc.poll() is None, log
            return (work / "ids.json").exists()

        wait_until(ids_written, 60, "the client sending its tasks")
        return proc, json.loads((work / "ids.json").read_text())

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _methods() -> dict[str, dict[str, Any]]:
    return {name: {"site": "cpu", "function": f"testing.tasks:{name}"}
            for name in ("add", "echo")}  # fmt: skip


def _value(federation: Federation) -> Any:
    result = federation.get_result(timeout=60)
    assert result is not None and result.success, result and result.failure
    return result.value


# -- attaching -------------------------------------------------------------------------


def test_a_federation_attaches_and_the_endpoint_outlives_it(
    start_endpoint: Any, make_federation: FederationFactory
) -> None:
    endpoint = start_endpoint()
    local = {**FAST, "attach": str(endpoint.connection_file)}
    federation = make_federation(_methods(), sites={"cpu": THREAD_POOL}, local=local)
    transport = federation.transports["cpu"]
    assert isinstance(transport, LocalTransport) and transport.process is None
    federation.submit("add", 1, 2)
    assert _value(federation) == 3
    assert transport.status().state == "running"
    assert transport.status().remote_host == HOST
    run = str(federation.run_dir)
    federation.stop()

    wait_until(
        lambda: "said goodbye" in endpoint.log_text(), 10, "the endpoint hearing BYE"
    )
    assert f"of run {run}" in endpoint.log_text()
    assert endpoint.proc.poll() is None and endpoint.connection_file.exists()
    # The first said BYE: a client of another run is taken at once.
    second = make_federation(_methods(), sites={"cpu": THREAD_POOL}, local=local)
    second.submit("echo", "again")
    assert _value(second) == "again"


def test_endpoint_start_says_how_to_attach(start_endpoint: Any, tmp_path: Path) -> None:
    endpoint = start_endpoint(cli=True)
    path = endpoint.connection_file.resolve()
    wait_until(
        lambda: f"local.attach: {path}" in endpoint.log_text(),
        10,
        "the command printing the site file line",
    )
    assert f"connection file: {path}" in endpoint.log_text()
    site_file = write_site(tmp_path, "cpu", THREAD_POOL, local={"attach": str(path)})
    transport = attached(site_file, tmp_path / "run")
    try:
        future = transport.submit(record_task(tmp_path, 7), record)
        (tmp_path / "gate").touch()
        assert future.result(timeout=30).value == 7
    finally:
        transport.stop()
    assert endpoint.proc.poll() is None


def test_a_relative_attach_is_relative_to_the_site_file(tmp_path: Path) -> None:
    (tmp_path / "sites").mkdir()
    site_file = write_site(
        tmp_path / "sites",
        "cpu",
        THREAD_POOL,
        local={"attach": "../ep/connection.json"},
    )
    site = load_site(site_file)
    assert site.local.attach is not None
    assert site.local.attach == tmp_path / "ep" / "connection.json"  # normalized
    assert site.local.buffer_limit == 64 * 10**6
    transport = LocalTransport(site, tmp_path / "run" / "sites" / "cpu")
    with pytest.raises(EndpointError) as caught:
        transport.start()
    message = str(caught.value)
    assert f"no connection file {site.local.attach}" in message
    assert f"colmena-fx endpoint start {site_file}" in message


def test_buffer_limit_reads_sizes_and_names_a_bad_one(tmp_path: Path) -> None:
    site_file = write_site(tmp_path, "a", THREAD_POOL, local={"buffer_limit": "1 kB"})
    assert load_site(site_file).local.buffer_limit == 1000
    bad = write_site(tmp_path, "b", THREAD_POOL, local={"buffer_limit": "lots"})
    with pytest.raises(ConfigError, match=r"b.yaml: key 'local.buffer_limit'"):
        load_site(bad)


# -- one client at a time --------------------------------------------------------------


def test_a_second_live_client_is_refused_and_gets_nothing(
    start_endpoint: Any, tmp_path: Path
) -> None:
    endpoint = start_endpoint()
    site_file = client_site(tmp_path, endpoint)
    first = attached(site_file, tmp_path / "first")
    try:
        with pytest.raises(EndpointError) as caught:
            attached(site_file, tmp_path / "second")
        message = str(caught.value)
        assert f"cannot attach to {endpoint.connection_file}" in message
        assert (
            f"client pid {os.getpid()} on {HOST} of run {tmp_path / 'first'}" in message
        )
        assert "attached since" in message and "stop that client" in message

        # A peer with the key, of another session: refused, and its task never runs.
        info = wire.ConnectionInfo.read(endpoint.connection_file)
        ctx: zmq.Context[zmq.Socket[Any]] = zmq.Context()
        try:
            sock = raw_client(ctx, info)
            hello = wire.HelloHeader(
                client_host=HOST, session="other", role="rx", run="x", client_pid=1
            )
            sock.send_multipart(wire.encode(wire.Kind.HELLO, hello))
            task = record_task(tmp_path, 99)
            packed = gcformat.pack_task(
                task.task_id, gcformat.FunctionCache().buffer(record), task.inputs
            )
            header = wire.TaskHeader(task_id=task.task_id)
            sock.send_multipart(wire.encode(wire.Kind.TASK, header, packed))
            (tmp_path / "gate").touch()
            future = first.submit(record_task(tmp_path, 1), record)
            assert future.result(timeout=30).value == 1  # the attached one is served
            sock.send_multipart(wire.encode(wire.Kind.PING, wire.PingHeader(time_ns=0)))
            kinds = []
            while len(kinds) < 3:  # HELLO, TASK, PING: in order on this socket
                assert sock.poll(10_000), f"only {kinds} arrived"
                kinds.append(wire.decode(sock.recv_multipart())[0])
            assert kinds == [wire.Kind.REFUSED] * 3
        finally:
            ctx.destroy(linger=0)
        assert lines(tmp_path, "ran") == ["ran 1"]  # task 99 was dropped
    finally:
        first.stop()


def test_a_silent_client_is_replaced_and_refused_when_it_wakes(
    start_endpoint: Any, client_process: Any, tmp_path: Path
) -> None:
    endpoint = start_endpoint()
    site_file = client_site(tmp_path, endpoint)
    sleeper, _ = client_process(site_file, tmp_path / "first", tmp_path / "w1", 0)
    os.kill(sleeper.pid, signal.SIGSTOP)
    taken: list[LocalTransport] = []
    refusals: list[str] = []

    def take_over() -> bool:
        try:
            taken.append(attached(site_file, tmp_path / "second"))
        except EndpointError as exc:
            refusals.append(str(exc))
            return False
        return True

    try:
        wait_until(take_over, 30, "a second client attaching once the first is silent")
        assert all("last heard" in refusal for refusal in refusals), refusals
        assert "silent for" in endpoint.log_text()
        os.kill(sleeper.pid, signal.SIGCONT)
        sleeper_log = tmp_path / "w1" / "client.log"
        wait_until(
            lambda: "took another client" in sleeper_log.read_text(),
            30,
            "the woken client learning it was replaced",
        )
        (tmp_path / "gate").touch()
        future = taken[0].submit(record_task(tmp_path, 5), record)
        assert future.result(timeout=30).value == 5
    finally:
        os.kill(sleeper.pid, signal.SIGCONT)
        for transport in taken:
            transport.stop()


# -- results kept for a client that is away --------------------------------------------


def test_a_killed_clients_results_wait_for_its_run_and_run_once(
    start_endpoint: Any, client_process: Any, tmp_path: Path
) -> None:
    endpoint = start_endpoint()
    site_file = client_site(tmp_path, endpoint)
    work, run = tmp_path / "work", tmp_path / "campaign"
    client, ids = client_process(site_file, run, work, 3)
    wait_until(lambda: len(lines(work, "ran")) == 3, 30, "all three tasks running")
    client.kill()  # SIGKILL: no BYE, no goodbye of any kind
    client.wait()
    (work / "gate").touch()
    wait_until(lambda: len(lines(work, "done")) == 3, 30, "the tasks finishing")
    assert endpoint.proc.poll() is None

    # A client of another run is served, but never gets this run's results.
    other = attached(site_file, tmp_path / "other")
    try:
        assert other.reattach([record_task(work, 0)]) == {}
        wait_until(
            lambda: f"3 results of run {run} are kept" in endpoint.log_text(),
            10,
            "the endpoint keeping the results for their run",
        )
    finally:
        other.stop()

    transport = attached(site_file, run)
    try:
        asked = [Result(task_id=i, method="record", site="cpu") for i in ids]
        never_sent = Result(method="record", site="cpu")
        futures = transport.reattach([*asked, never_sent])
        assert set(futures) == set(ids)
        done = [futures[i].result(timeout=30) for i in ids]
        assert [r.value for r in done] == [0, 1, 2]
        assert all(r.success and r.timeline.get("endpoint_received") for r in done)
        future = transport.submit(record_task(work, 3), record)
        assert future.result(timeout=30).value == 3
    finally:
        transport.stop()
    assert lines(work, "ran") == ["ran 0", "ran 1", "ran 2", "ran 3"]  # each once


def test_results_past_the_buffer_limit_spill_to_files_until_acknowledged(
    start_endpoint: Any, client_process: Any, tmp_path: Path
) -> None:
    # Each result packs to about 13.7 kB: two fit in 30 kB, the third spills.
    endpoint = start_endpoint(buffer_limit="30 kB")
    site_file = client_site(tmp_path, endpoint)
    work, run = tmp_path / "work", tmp_path / "campaign"
    client, ids = client_process(site_file, run, work, 3, 10_000)
    wait_until(lambda: len(lines(work, "ran")) == 3, 30, "all three tasks running")
    client.kill()
    client.wait()
    (work / "gate").touch()
    wait_until(lambda: len(endpoint.spilled()) == 1, 30, "one result spilled")
    assert endpoint.spilled()[0].stem in ids

    transport = attached(site_file, run)
    try:
        asked = [Result(task_id=i, method="record", site="cpu") for i in ids]
        futures = transport.reattach(asked)
        assert all(futures[i].result(timeout=30).value == b"x" * 10_000 for i in ids)
        wait_until(lambda: not endpoint.spilled(), 10, "the acknowledged file removed")
    finally:
        transport.stop()


# -- one endpoint per run directory ----------------------------------------------------


def test_a_second_endpoint_on_the_same_run_directory_exits_2(
    start_endpoint: Any, tmp_path: Path
) -> None:
    endpoint = start_endpoint()
    before = endpoint.connection_file.read_bytes()
    second = subprocess.run(
        [sys.executable, "-m", "colmena_fx.endpoint", str(endpoint.site_file),
         "--run-dir", str(endpoint.run_dir)],
        capture_output=True, text=True, env=ENV, timeout=60,
    )  # fmt: skip
    assert second.returncode == 2, second.stderr
    error = second.stderr.strip().splitlines()[-1]
    assert error.startswith("error: another endpoint")
    assert f"pid {endpoint.proc.pid}" in error and str(endpoint.run_dir) in error
    assert endpoint.connection_file.read_bytes() == before
    assert (endpoint.run_dir / "endpoint.lock").read_text().strip() == str(
        endpoint.proc.pid
    )
    transport = attached(client_site(tmp_path, endpoint), tmp_path / "run")
    transport.stop()  # the first still serves
