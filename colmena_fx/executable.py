"""Methods that run a program (NWChem, CP2K, a shell script) rather than Python code.

The successor of Colmena's `ExecutableMethod`, with its subclassing contract, so a
Colmena subclass ports by changing its import: `preprocess` turns a task's
arguments into command-line arguments and standard input, the program runs, and
`postprocess` reads what it wrote into the task's value. What differs, and why:

- Each task runs in a directory of its own that is kept,
  `<work root>/<method>/<task id>/`, with the program's standard streams in
  `colmena.stdout` and `colmena.stderr` (Colmena's names, which ported
  `postprocess` code reads): when a value looks wrong, its inputs and logs are
  there to look at.
- A nonzero exit status fails the task, naming the command, the status, the
  directory and the end of the program's output; Colmena ignored it, and the
  failure surfaced later as a confusing `postprocess` error.
- With `mpi=True` the launcher comes from the site's engine where it has one
  (`GlobusMPIEngine` sets `PARSL_MPI_PREFIX` for each task, naming the nodes it
  gave the task), else from `mpi_command_string`.
- Past its task's `timeout_s`, the program is killed with every process it started.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable
from collections.abc import Sequence
from contextlib import ExitStack
from contextlib import suppress
from pathlib import Path
from typing import IO
from typing import Any

from colmena_fx.exceptions import ExecutableError
from colmena_fx.exceptions import UsageError
from colmena_fx.models import HOST
from colmena_fx.models import ResourceRequirements
from colmena_fx.taskcontext import TaskContext
from colmena_fx.taskcontext import current_task
from colmena_fx.worker import TaskTimeoutError

#: The files of a task's directory that hold the program's standard streams.
STDOUT = "colmena.stdout"
STDERR = "colmena.stderr"
STDIN = "colmena.stdin"
#: Where task directories go when the method does not say (`work_dir`): a worker's
#: environment may set it (`worker_init`, a local site's `local.env`), e.g. to a
#: scratch file system; else the worker's working directory, which Globus Compute
#: sets to the engine's `working_dir` (on a local site, in the run directory).
WORK_DIR_ENV = "COLMENA_FX_WORK_DIR"
#: The launch prefix Parsl's MPI mode (`GlobusMPIEngine`) sets for each task.
MPI_PREFIX_ENV = "PARSL_MPI_PREFIX"

#: How many lines of the program's output a failure quotes.
_TAIL_LINES = 20
_TAIL_BYTES = 64 * 1024
#: How long a program asked to stop (SIGTERM) gets before it is killed: long
#: enough for an MPI launcher to pass the signal to its ranks.
_STOP_GRACE_S = 5.0


class ExecutableMethod:
    """A method that runs `executable` in a directory of its own for each task.

    Subclass it and implement `preprocess` and `postprocess`; pass an instance as a
    method (`Federation.from_file(path, methods=[NWChem(...)])`), under its `name`.
    Instances must pickle: they travel to the worker with each task.

    Args:
        executable: The program and its first arguments; `preprocess` adds the rest.
        name: The method's name in the federation file; by default the program's
            file name (Colmena used the whole `executable[0]`).
        mpi: Launch the program with MPI (see the module's notes).
        mpi_command_string: The launcher, as a `str.format` template, for sites
            whose engine sets none: `mpiexec -n {total_ranks} --ppn {ranks_per_node}`.
            Fields: `num_nodes`, `ranks_per_node`, `num_ranks` (or `total_ranks`),
            Colmena's `node_count`, `cpu_processes`, `cpu_threads`, and the keys
            of the task's `resources.extra`.
        work_dir: The root of the task directories (see `WORK_DIR_ENV`).
        ok_exit_codes: The exit statuses that mean success; None accepts any, as
            Colmena did, for programs whose status means nothing.
    """

    executable: list[str]
    name: str
    mpi: bool = False
    mpi_command_string: str | None = None
    work_dir: Path | None = None
    ok_exit_codes: frozenset[int] | None = frozenset({0})

    def __init__(
        self,
        executable: Sequence[str | os.PathLike[str]],
        name: str | None = None,
        mpi: bool = False,
        mpi_command_string: str | None = None,
        *,
        work_dir: str | os.PathLike[str] | None = None,
        ok_exit_codes: Iterable[int] | None = (0,),
    ) -> None:
        if not executable:
            raise UsageError("an ExecutableMethod needs a program: executable=[...]")
        self.executable = [os.fspath(part) for part in executable]
        self.name = name or Path(self.executable[0]).name
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise UsageError(
                f"method name {self.name!r} cannot name a directory: pass name=..."
            )
        self.mpi = mpi
        self.mpi_command_string = mpi_command_string
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.ok_exit_codes = None if ok_exit_codes is None else frozenset(ok_exit_codes)

    @property
    def __name__(self) -> str:
        """The method's name: the federation and Globus Compute name functions so."""
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.executable!r}, name={self.name!r})"

    # -- what a subclass implements ------------------------------------------------

    def preprocess(
        self, run_dir: Path, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[list[str], str | None]:
        """Write the program's input files into `run_dir`; return its further
        command-line arguments and its standard input (None for none)."""
        raise NotImplementedError(f"{type(self).__name__} must implement preprocess")

    def postprocess(self, run_dir: Path) -> Any:
        """The task's value, read from what the program left in `run_dir`
        (its output streams are `run_dir / STDOUT` and `run_dir / STDERR`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement postprocess")

    # -- running a task --------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run one task: what a worker calls with the task's arguments."""
        started = time.monotonic()
        task = current_task()
        run_dir = self.make_run_dir(task)
        cli_args, stdin = self.preprocess(run_dir, args, kwargs)
        timeout = None
        if task is not None and task.timeout_s:
            timeout = task.timeout_s - (time.monotonic() - started)
        resources = task.resources if task is not None else None
        self.execute(run_dir, cli_args, stdin, resources, timeout=timeout)
        return self.postprocess(run_dir)

    def work_root(self) -> Path:
        """Where this worker puts task directories: `work_dir`, else
        `$COLMENA_FX_WORK_DIR`, else the working directory."""
        root = self.work_dir or os.environ.get(WORK_DIR_ENV) or os.getcwd()
        return Path(root).absolute()

    def make_run_dir(self, task: TaskContext | None = None) -> Path:
        """A new directory for the task, `<work root>/<method>/<task id>/`.

        The method as the federation routes it (a file may route an instance under
        another name); outside a task, `name` and a new id. A retried task (the
        same id) gets `<task id>.2`, `.3`, ...: what an earlier attempt left is
        kept, and never mixed with the new attempt's files.
        """
        method = task.method if task is not None else self.name
        task_id = task.task_id if task is not None else str(uuid.uuid4())
        parent = self.work_root() / method
        parent.mkdir(parents=True, exist_ok=True)
        attempt = 1
        while True:
            run_dir = parent / (task_id if attempt == 1 else f"{task_id}.{attempt}")
            try:
                run_dir.mkdir()
            except FileExistsError:
                attempt += 1
                continue
            return run_dir

    def assemble_shell_cmd(
        self, arguments: list[str], resources: ResourceRequirements | None = None
    ) -> list[str]:
        """The command line: the MPI launcher when `mpi`, the program, `arguments`
        (each made a string, as Colmena's Parsl task server did)."""
        launcher = shlex.split(self._launcher(resources)) if self.mpi else []
        return [*launcher, *self.executable, *(str(arg) for arg in arguments)]

    def render_mpi_launch(self, resources: ResourceRequirements | None = None) -> str:
        """`mpi_command_string` filled in with the task's resources."""
        if self.mpi_command_string is None:
            raise UsageError(
                f"method {self.name!r} has mpi=True but its site's engine sets no MPI "
                f"launcher (${MPI_PREFIX_ENV}) and the method has no "
                f"mpi_command_string: set mpi_command_string='mpiexec -n "
                f"{{total_ranks}}' (your site's launcher), or run it on a site whose "
                f"engine is GlobusMPIEngine, with resources num_nodes and "
                f"ranks_per_node"
            )
        fields = launch_fields(resources)
        try:
            return self.mpi_command_string.format(**fields)
        except (KeyError, IndexError) as exc:
            raise UsageError(
                f"mpi_command_string {self.mpi_command_string!r} of method "
                f"{self.name!r} names {exc}, which is none of its fields: "
                f"{sorted(fields)}"
            ) from None

    def _launcher(self, resources: ResourceRequirements | None) -> str:
        """The engine's launch prefix first: it names the nodes the engine gave
        this task, which a template cannot know."""
        return os.environ.get(MPI_PREFIX_ENV) or self.render_mpi_launch(resources)

    def execute(
        self,
        run_dir: Path,
        arguments: list[str],
        stdin: str | None,
        resources: ResourceRequirements | None = None,
        timeout: float | None = None,
    ) -> float:
        """Run the program in `run_dir`, its streams to files there; the seconds it
        ran. Raises `ExecutableError` unless its exit status is in `ok_exit_codes`,
        and `TaskTimeoutError` after `timeout` seconds, with the program killed."""
        command = self.assemble_shell_cmd(arguments, resources)
        if timeout is not None and timeout <= 0:
            raise TaskTimeoutError(
                f"{self.name!r} had no time left of its timeout_s to start {command[0]}"
            )
        if stdin is not None:  # a file, not a pipe: it is kept, and cannot block us
            (run_dir / STDIN).write_text(stdin, encoding="utf-8")
        start = time.perf_counter()
        with ExitStack() as files:
            out = files.enter_context(open(run_dir / STDOUT, "wb"))
            err = files.enter_context(open(run_dir / STDERR, "wb"))
            source: IO[bytes] | int = subprocess.DEVNULL
            if stdin is not None:
                source = files.enter_context(open(run_dir / STDIN, "rb"))
            try:
                # Its own process group, to stop whatever it starts in one signal;
                # the same session, which a local endpoint reaps when it stops.
                process = subprocess.Popen(
                    command, stdin=source, stdout=out, stderr=err, cwd=run_dir,
                    process_group=0,
                )  # fmt: skip
            except OSError as exc:
                raise ExecutableError(
                    f"method {self.name!r} cannot start {command[0]!r} on {HOST}: "
                    f"{exc.strerror or exc} (check the path, or the PATH of the "
                    f"site's workers; command: {shlex.join(command)})",
                    command=command,
                    run_dir=str(run_dir),
                ) from None
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                raise TaskTimeoutError(
                    f"{self.name!r} was stopped on its worker after its timeout_s: "
                    f"{shlex.join(command)} ran too long in {run_dir}"
                ) from None
            finally:  # also when the worker's own timer interrupts the wait
                _stop_group(process)
        elapsed = time.perf_counter() - start
        if self.ok_exit_codes is not None and code not in self.ok_exit_codes:
            raise ExecutableError(
                f"method {self.name!r}: {shlex.join(command)} {_status(code)} in "
                f"{run_dir}; {_tail(run_dir)}",
                command=command,
                exit_code=code,
                run_dir=str(run_dir),
            )
        return elapsed


def launch_fields(resources: ResourceRequirements | None) -> dict[str, Any]:
    """The fields an `mpi_command_string` may name, in Parsl's names and Colmena's.

    Unset counts default as Colmena's did: one node, one rank per node, one thread.
    """
    spec = resources or ResourceRequirements()
    nodes = spec.num_nodes or 1
    per_node = spec.ranks_per_node or (
        math.ceil(spec.num_ranks / nodes) if spec.num_ranks else 1
    )
    ranks = spec.num_ranks or nodes * per_node
    threads = spec.extra.get("cpu_threads", 1)
    return {
        "launcher_options": "",
        **spec.extra,
        "num_nodes": nodes,
        "ranks_per_node": per_node,
        "num_ranks": ranks,
        "total_ranks": ranks,
        "node_count": nodes,
        "cpu_processes": per_node,
        "cpu_threads": threads,
    }


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the program's whole process group, and wait for the program.

    A program still running is asked to stop (SIGTERM: an MPI launcher passes it
    on to its ranks), then killed. Whatever it left running in the background is
    killed too, even after a normal exit: nobody would ever stop it.
    """
    try:
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                process.wait(_STOP_GRACE_S)
    finally:  # even when the worker's timer goes off during the grace period
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()


def _signal_group(group: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):  # nothing left in it
        os.killpg(group, signum)


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _tail(run_dir: Path) -> str:
    """The last lines of the program's stderr, or of its stdout when stderr is
    empty (NWChem, for one, reports its errors on stdout)."""
    for name in (STDERR, STDOUT):
        path = run_dir / name
        try:
            with open(path, "rb") as file:
                file.seek(max(0, path.stat().st_size - _TAIL_BYTES))
                text = file.read().decode(errors="replace")
        except OSError:
            continue
        lines = text.rstrip().splitlines()[-_TAIL_LINES:]
        if lines:
            return f"the end of {name}:\n" + "\n".join(lines)
    return f"{STDERR} and {STDOUT} are empty"
