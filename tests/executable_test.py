"""Executable methods: real programs through real engines, their files kept."""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from colmena_fx.exceptions import ExecutableError
from colmena_fx.exceptions import UsageError
from colmena_fx.executable import STDERR
from colmena_fx.executable import STDIN
from colmena_fx.executable import STDOUT
from colmena_fx.executable import WORK_DIR_ENV
from colmena_fx.executable import ExecutableMethod
from colmena_fx.executable import launch_fields
from colmena_fx.federation import Federation
from colmena_fx.models import FailureKind
from colmena_fx.models import ResourceRequirements
from colmena_fx.models import Result
from colmena_fx.taskcontext import TaskContext
from colmena_fx.taskcontext import enter
from colmena_fx.taskcontext import leave
from colmena_fx.worker import TaskTimeoutError
from testing.executables import Doubler
from testing.executables import Program
from testing.executables import Script
from testing.executables import write_fake_launcher
from testing.sites import HTEX
from testing.sites import PROCESS_POOL
from testing.sites import THREAD_POOL
from testing.sites import collect
from testing.sites import write_federation
from testing.sites import write_site
from testing.wait import wait_until

#: Starts a one-site federation ("cpu") running the given method instances.
Start = Callable[..., Federation]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    started: list[Federation] = []

    def make(
        methods: list[ExecutableMethod],
        engine: dict[str, Any] = THREAD_POOL,
        routes: dict[str, Any] | None = None,
        functions: dict[str, str] | None = None,
        **site_settings: Any,
    ) -> Federation:
        """`routes`: settings of every method's route; `functions`: further
        methods by name, as `module:function`."""
        site = write_site(tmp_path, "cpu", engine, **site_settings)
        route = {"site": "cpu", **(routes or {})}
        table = {m.name: route for m in methods}
        for name, function in (functions or {}).items():
            table[name] = {**route, "function": function}
        path = write_federation(tmp_path, [site], table)
        federation = Federation.from_file(path, methods=methods)
        started.append(federation)
        return federation.start()

    yield make
    for federation in started:
        federation.stop()


def _site_dir(federation: Federation) -> Path:
    assert federation.run_dir is not None
    return federation.run_dir / "sites" / "cpu"


def _one(federation: Federation, timeout: float = 60) -> Result:
    return collect(federation, 1, timeout=timeout)[0]


@pytest.mark.parametrize(
    "engine", [THREAD_POOL, PROCESS_POOL], ids=["thread", "process"]
)
def test_a_program_runs_in_a_kept_directory_of_the_run(
    start: Start, engine: dict[str, Any]
) -> None:
    federation = start([Doubler()], engine)
    task_id = federation.submit("double", 21, kwargs={"label": "first"})
    result = _one(federation)
    assert result.success, result.failure
    value = result.value
    assert value["doubled"] == 42
    assert value["stdout"] == "label=first value=21 input=21\n"
    assert value["stderr"] == "a warning\n"
    # The engine's working directory (Globus Compute's `tasks_working_dir`) in
    # the site's run directory, one directory per method and task, kept.
    run_dir = _site_dir(federation) / "tasks_working_dir" / "double" / task_id
    assert value["run_dir"] == str(run_dir)
    assert (run_dir / STDOUT).read_text() == value["stdout"]
    assert (run_dir / STDERR).read_text() == "a warning\n"
    assert (run_dir / STDIN).read_text() == "first\n"
    assert (run_dir / "result.txt").read_text() == "42\n"


def test_an_instance_named_in_the_federation_file(tmp_path: Path) -> None:
    site = write_site(tmp_path, "cpu", PROCESS_POOL)
    routes = {"simulate": {"site": "cpu", "function": "testing.executables:DOUBLER"}}
    with Federation.from_file(write_federation(tmp_path, [site], routes)) as fed:
        task_id = fed.submit("simulate", 4)
        result = _one(fed)
        assert result.success, result.failure
        run_dir = _site_dir(fed) / "tasks_working_dir" / "simulate" / task_id
        assert result.value["doubled"] == 8
        assert result.value["run_dir"] == str(run_dir)


def test_a_nonzero_exit_fails_the_task_with_the_end_of_stderr(start: Start) -> None:
    script = (
        'echo "step 1 done"; echo "reading basis" >&2; echo "fatal: no basis" >&2; '
        "exit 3"
    )
    federation = start([Script(script, name="broken")])
    task_id = federation.submit("broken", "x")
    result = _one(federation)
    assert result.success is False and result.failure is not None
    failure = result.failure
    assert failure.kind is FailureKind.USER
    assert failure.exception_type == "ExecutableError"
    run_dir = _site_dir(federation) / "tasks_working_dir" / "broken" / task_id
    assert "exited with status 3" in failure.message
    assert f"in {run_dir}" in failure.message
    assert "/bin/sh -c" in failure.message and failure.message.endswith(
        "the end of colmena.stderr:\nreading basis\nfatal: no basis"
    )
    assert (run_dir / STDOUT).read_text() == "step 1 done\n"


def test_a_missing_program_is_a_clear_failure(start: Start) -> None:
    federation = start([Program(["/nonexistent/bin/nwchem"])])
    federation.submit("nwchem")
    result = _one(federation)
    assert result.failure is not None
    assert result.failure.exception_type == "ExecutableError"
    assert (
        "method 'nwchem' cannot start '/nonexistent/bin/nwchem' on "
        in result.failure.message
    )
    assert "No such file or directory" in result.failure.message


def test_exit_codes_can_be_accepted_as_colmena_did(tmp_path: Path) -> None:
    method = Script("echo done; exit 1", work_dir=tmp_path, ok_exit_codes=(0, 1))
    assert method()["stdout"] == "done\n"
    anything = Script("exit 7", work_dir=tmp_path, ok_exit_codes=None)
    assert anything()["stdout"] == ""
    with pytest.raises(ExecutableError, match="was killed by SIGKILL") as caught:
        Script("kill -9 $$", work_dir=tmp_path)()
    assert caught.value.exit_code == -9


def test_work_root_from_the_method_then_the_environment_then_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(WORK_DIR_ENV, raising=False)
    assert Script("true").work_root() == tmp_path
    monkeypatch.setenv(WORK_DIR_ENV, str(tmp_path / "scratch"))
    assert Script("true").work_root() == tmp_path / "scratch"
    assert Script("true", work_dir=tmp_path / "mine").work_root() == tmp_path / "mine"


def test_a_retried_task_gets_a_directory_of_its_own(tmp_path: Path) -> None:
    method = Script("echo $0", work_dir=tmp_path)
    task = TaskContext("task-1", "simulate")
    first = method.make_run_dir(task)
    second = method.make_run_dir(task)
    assert first == tmp_path / "simulate" / "task-1"
    assert second == tmp_path / "simulate" / "task-1.2"
    assert method.make_run_dir().parent == tmp_path / "script"  # outside a task


def test_the_environments_work_root_reaches_the_workers(
    start: Start, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    federation = start(
        [Doubler()], PROCESS_POOL, local={"env": {WORK_DIR_ENV: str(scratch)}}
    )
    task_id = federation.submit("double", 1)
    result = _one(federation)
    assert result.success, result.failure
    assert result.value["run_dir"] == str(scratch / "double" / task_id)


def test_names_and_pickling_as_a_federation_needs_them() -> None:
    import pickle

    method = Program(["/usr/bin/nwchem", "-v"])
    assert method.name == method.__name__ == "nwchem"
    assert type(method).__qualname__ == "Program"
    copy = pickle.loads(pickle.dumps(method))
    assert copy.executable == ["/usr/bin/nwchem", "-v"] and copy.name == "nwchem"
    with pytest.raises(UsageError, match="cannot name a directory"):
        Program(["nwchem"], name="a/b")
    with pytest.raises(UsageError, match="needs a program"):
        Program([])


# -- MPI -----------------------------------------------------------------------------


def test_mpi_command_string_is_rendered_with_the_tasks_resources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARSL_MPI_PREFIX", raising=False)
    launcher = write_fake_launcher(tmp_path / "bin")
    template = (
        f"{launcher} -n {{total_ranks}} --ppn {{cpu_processes}} "
        "--nodes {node_count} --depth {cpu_threads}"
    )
    method = Script('echo "ran $1"', name="mpi", mpi=True,
                    mpi_command_string=template, work_dir=tmp_path)  # fmt: skip
    asked = ResourceRequirements(num_nodes=2, ranks_per_node=4,
                                 extra={"cpu_threads": 8})  # fmt: skip
    token = enter(TaskContext("task-1", "mpi", None, asked))
    try:
        value = method("x")
    finally:
        leave(token)
    assert value["launcher"] == [
        "-n", "8", "--ppn", "4", "--nodes", "2", "--depth", "8",
        "/bin/sh", "-c", 'echo "ran $1"', "sh", "x",
    ]  # fmt: skip
    assert value["stdout"] == "ran x\n"
    assert value["run_dir"] == str(tmp_path / "mpi" / "task-1")


def test_a_process_pool_site_runs_a_template_sized_by_the_tasks_resources(
    start: Start, tmp_path: Path
) -> None:
    """The pool is sent no resource specification (it refuses any); the method
    still sizes its launch from what the task asked for."""
    launcher = write_fake_launcher(tmp_path / "bin")
    method = Script('echo "ran $1"', name="mpi", mpi=True,
                    mpi_command_string=f"{launcher} -n {{total_ranks}}")  # fmt: skip
    federation = start([method], PROCESS_POOL)
    federation.submit("mpi", "x", resources={"num_nodes": 2, "ranks_per_node": 3})
    result = _one(federation)
    assert result.success, result.failure
    assert result.value["launcher"][:2] == ["-n", "6"]


def test_launch_fields_in_parsls_names_and_colmenas() -> None:
    fields = launch_fields(ResourceRequirements(num_ranks=6, num_nodes=2))
    assert fields["num_nodes"] == fields["node_count"] == 2
    assert fields["ranks_per_node"] == fields["cpu_processes"] == 3
    assert fields["num_ranks"] == fields["total_ranks"] == 6
    assert fields["cpu_threads"] == 1 and fields["launcher_options"] == ""
    defaults = launch_fields(None)
    assert (defaults["num_nodes"], defaults["ranks_per_node"]) == (1, 1)
    assert defaults["total_ranks"] == 1


def test_the_engines_mpi_prefix_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher = write_fake_launcher(tmp_path / "bin")
    # As Parsl's MPI mode composes it (`mpi_prefix_composer`), options last.
    monkeypatch.setenv("PARSL_MPI_PREFIX", f"{launcher} -n 4 -ppn 2 -hosts node1 ")
    method = Script("echo ok", name="mpi", mpi=True, work_dir=tmp_path,
                    mpi_command_string="never-used -n {total_ranks}")  # fmt: skip
    assert method()["launcher"] == [
        "-n", "4", "-ppn", "2", "-hosts", "node1", "/bin/sh", "-c", "echo ok", "sh",
    ]  # fmt: skip


def test_mpi_without_a_launcher_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARSL_MPI_PREFIX", raising=False)
    method = Script("true", name="mpi", mpi=True, work_dir=tmp_path)
    with pytest.raises(UsageError, match=r"set mpi_command_string=.*GlobusMPIEngine"):
        method()
    typo = Script("true", name="mpi", mpi=True, work_dir=tmp_path,
                  mpi_command_string="mpiexec -n {ranks}")  # fmt: skip
    with pytest.raises(UsageError, match=r"names 'ranks'.*'total_ranks'"):
        typo()


# -- timeouts ------------------------------------------------------------------------

#: Writes its own pid and that of a background child (`pid` last, and whole by a
#: rename), then waits for the child.
_SLEEPER = "sleep 600 & echo $! > child.pid; echo $$ > pid.tmp; mv pid.tmp pid; wait"


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize(
    "engine", [THREAD_POOL, PROCESS_POOL], ids=["thread", "process"]
)
def test_a_timeout_kills_the_program_and_what_it_started(
    start: Start, engine: dict[str, Any]
) -> None:
    federation = start([Script(_SLEEPER, name="sleeper")], engine)
    task_id = federation.submit("sleeper", timeout_s=5)
    run_dir = _site_dir(federation) / "tasks_working_dir" / "sleeper" / task_id
    wait_until(lambda: (run_dir / "pid").exists(), 30, "the program started")
    pids = [int((run_dir / name).read_text()) for name in ("pid", "child.pid")]
    result = _one(federation)
    assert result.failure is not None and result.failure.kind is FailureKind.TIMEOUT
    wait_until(lambda: all(_gone(pid) for pid in pids), 30, "the program killed")


def test_a_timeout_on_the_worker_raises_task_timeout(tmp_path: Path) -> None:
    method = Script(_SLEEPER, name="sleeper", work_dir=tmp_path)
    token = enter(TaskContext("task-1", "sleeper", 2.0))
    try:
        with pytest.raises(TaskTimeoutError, match="stopped on its worker"):
            method()
    finally:
        leave(token)
    run_dir = tmp_path / "sleeper" / "task-1"
    pids = [int((run_dir / name).read_text()) for name in ("pid", "child.pid")]
    wait_until(lambda: all(_gone(pid) for pid in pids), 30, "the program killed")


# -- an MPI engine -------------------------------------------------------------------


def test_through_globus_mpi_engine_with_its_launch_prefix(
    start: Start, tmp_path: Path
) -> None:
    """Parsl's MPI mode on this machine: a PBS node file naming it, and a stand-in
    `mpiexec` on the workers' PATH. The task's resources reach the engine (which
    composes the prefix from them) and the function (`current_task`)."""
    bin_dir = tmp_path / "bin"
    write_fake_launcher(bin_dir, "mpiexec")
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\n")
    engine = {
        **{k: v for k, v in HTEX.items() if k != "max_workers_per_node"},
        "type": "GlobusMPIEngine",
        "mpi_launcher": "mpiexec",
        "max_workers_per_block": 1,
        "provider": {**HTEX["provider"], "launcher": {"type": "SimpleLauncher"}},
    }
    env = {"PBS_NODEFILE": str(nodefile), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    federation = start(
        [Script('echo "rank program $1"', name="mpi", mpi=True)],
        engine,
        routes={"resources": {"num_nodes": 1, "ranks_per_node": 2}},
        functions={"context": "testing.tasks:task_context"},
        local={"env": env},
    )
    federation.submit("context")
    context = _one(federation, timeout=120)
    assert context.success, context.failure
    assert context.value.method == "context"
    assert context.value.resources == ResourceRequirements(
        num_nodes=1, ranks_per_node=2
    )
    task_id = federation.submit("mpi", "x")
    result = _one(federation, timeout=120)
    assert result.success, result.failure
    launched = result.value["launcher"]
    assert launched[:6] == ["-n", "2", "-ppn", "2", "-hosts", "localhost"]
    assert result.value["stdout"] == "rank program x\n"
    # Parsl's workers too run tasks in the engine's working directory.
    run_dir = _site_dir(federation) / "tasks_working_dir" / "mpi" / task_id
    assert result.value["run_dir"] == str(run_dir)
