"""The compared ways of reading a run, each timed in a fresh subprocess.

Every path is one command run by a new interpreter, so that its peak resident
memory (`ru_maxrss` of that child alone, from `os.wait4`) is its own and not what
an earlier path left in this process; the wall time is the child's whole life,
start and imports included, as a user of the command meets it.

- `floor`: decode every line of the journal with `json.loads` and keep nothing:
  what any reader of the journal pays at least (the baseline).
- `summary`: `colmena-fx summary RUN_DIR` (with `--export`, its tables written
  too), output to /dev/null.
- `previous`: the same command run on another revision's `colmena_fx` (a
  `git archive` of it, `--previous REV`): the design this one replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

FLOOR = """
import json, sys
with open(sys.argv[1], encoding="utf-8") as stream:
    for line in stream:
        json.loads(line)
"""


@dataclass(frozen=True)
class Measured:
    wall_s: float
    peak_rss_mb: float


@dataclass(frozen=True)
class Command:
    """One command, and the PYTHONPATH it runs with."""

    name: str
    argv: list[str]
    pythonpath: str

    def run(self) -> Measured:
        env = dict(os.environ, PYTHONPATH=self.pythonpath, COLUMNS="160")
        started = time.perf_counter()
        child = subprocess.Popen(
            self.argv,
            env=env,
            # `python -m` puts its working directory first on sys.path: the tree's
            cwd=self.pythonpath or None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        errors = child.stderr.read().decode() if child.stderr else ""
        if child.stderr:
            child.stderr.close()
        if child.returncode != 0:
            raise RuntimeError(f"{self.name} exited {child.returncode}: {errors}")
        return Measured(wall, usage.ru_maxrss / 1024)  # kB on Linux


def floor(run_dir: Path) -> Command:
    journal = str(run_dir / "journal.jsonl")
    return Command("floor", [sys.executable, "-c", FLOOR, journal], "")


def summary(run_dir: Path, repo: Path, export: bool, name: str = "summary") -> Command:
    argv = [sys.executable, "-m", "colmena_fx.cli", "summary", str(run_dir)]
    return Command(name, argv + (["--export"] if export else []), str(repo))


def previous_tree(repo: Path, revision: str, into: Path) -> Path:
    """`colmena_fx` as of `revision`, unpacked under `into`."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", revision, "colmena_fx"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into
