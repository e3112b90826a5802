"""Executable methods the tests run on workers, and a stand-in MPI launcher.

Real programs (`/bin/sh` scripts), so that the tests exercise the files, streams,
exit statuses and processes of a command line, as NWChem would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from colmena_fx.executable import STDERR
from colmena_fx.executable import STDOUT
from colmena_fx.executable import ExecutableMethod

#: Reads a label on stdin and a number as $1, writes its double into a file.
_DOUBLE = """
read label
echo "label=$label value=$1 input=$(cat input.txt)"
echo "a warning" >&2
echo $(( $1 * 2 )) > result.txt
"""


class Doubler(ExecutableMethod):
    """An input file, an argument and stdin in; a result file and streams out."""

    def __init__(self, name: str = "double", **options: Any) -> None:
        super().__init__(["/bin/sh", "-c", _DOUBLE, "sh"], name=name, **options)

    def preprocess(
        self, run_dir: Path, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[list[str], str | None]:
        (run_dir / "input.txt").write_text(f"{args[0]}\n")
        return [str(args[0])], f"{kwargs.get('label', 'none')}\n"

    def postprocess(self, run_dir: Path) -> dict[str, Any]:
        return {
            "doubled": int((run_dir / "result.txt").read_text()),
            "stdout": (run_dir / STDOUT).read_text(),
            "stderr": (run_dir / STDERR).read_text(),
            "run_dir": str(run_dir),
        }


#: An instance a federation file can name: `function: testing.executables:DOUBLER`.
DOUBLER = Doubler()


class Script(ExecutableMethod):
    """Runs a shell script given as its one argument; the value is its stdout."""

    def __init__(self, script: str, name: str = "script", **options: Any) -> None:
        super().__init__(["/bin/sh", "-c", script, "sh"], name=name, **options)

    def preprocess(
        self, run_dir: Path, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[list[str], str | None]:
        return [str(arg) for arg in args], None

    def postprocess(self, run_dir: Path) -> dict[str, Any]:
        launched = run_dir / "launcher.args"
        return {
            "stdout": (run_dir / STDOUT).read_text(),
            "launcher": launched.read_text().splitlines() if launched.exists() else [],
            "run_dir": str(run_dir),
        }


class Program(ExecutableMethod):
    """Any program, without arguments; the value is its stdout."""

    def preprocess(
        self, run_dir: Path, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[list[str], str | None]:
        return [], None

    def postprocess(self, run_dir: Path) -> str:
        return (run_dir / STDOUT).read_text()


#: Records its arguments in `launcher.args` (one a line, in the task directory),
#: skips its options (each with one value, as `-n 4`) and runs the rest: what an
#: MPI launcher does, on one node and with one rank.
_LAUNCHER = """#!/bin/sh
printf '%s\\n' "$@" > launcher.args
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift 2; done
exec "$@"
"""


def write_fake_launcher(directory: Path, name: str = "mpiexec") -> Path:
    """A stand-in for `mpiexec` (or `srun`) in `directory`, executable."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(_LAUNCHER)
    os.chmod(path, 0o755)
    return path
