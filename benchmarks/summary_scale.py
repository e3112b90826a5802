"""Time and peak memory of `colmena-fx summary` on a run of many tasks.

`summary` reads a run's journal (`journal.jsonl`: five to six lines per task, the
`delivered` one with the task's whole record) and prints its tables. A realistic
run of `--tasks` tasks (default 100k, about 200 MB of journal: two sites, one
remote clock seconds off, fastest routing with predictions, failures, a lost
site's tasks resent; `benchmarks/_summary/runs.py`) is written to a temporary
directory, or reused from `--run-dir`. Then, in `--rounds` alternating rounds
(A B A B ...), each path runs in a fresh interpreter so that its peak resident
memory is its own (`_summary/paths.py`):

A. the floor: every line decoded by `json.loads` and dropped, nothing kept, what
   any reader of the journal pays at least;
B. `colmena-fx summary RUN_DIR` (`--export`: with its CSV and parquet files);
P. with `--previous REV`, the same command on revision REV's `colmena_fx`
   (`git archive`), the design this one replaced; its round goes A B P.

Each round gives B's wall time over A's of the same round (and P's over B's),
reported as median [min-max] over the rounds with every round's value, beside
each path's wall time and peak RSS. Load that hits a round hits its paths alike.
The last line of standard output is one JSON object with all of it.

Run from the repository root: `python benchmarks/summary_scale.py [--tasks N]
[--rounds R] [--previous REV] [--export] [--run-dir DIR]`.
"""

# ruff: noqa: E402 -- the repository root goes on sys.path before the imports
# of `benchmarks`, for when this file runs as a script.

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse
import json
import tempfile
from typing import Any

from benchmarks._overhead.machine import machine_info
from benchmarks._stats import Spread
from benchmarks._stats import ratios
from benchmarks._summary.paths import Measured
from benchmarks._summary.paths import floor
from benchmarks._summary.paths import previous_tree
from benchmarks._summary.paths import summary
from benchmarks._summary.runs import write_run

#: The issue's targets at 100k tasks.
TARGET_S, TARGET_MB = 5.0, 400.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--previous", metavar="REV", help="also time `summary` as of this revision"
    )
    parser.add_argument(
        "--export", action="store_true", help="time `summary --export` instead"
    )
    parser.add_argument(
        "--run-dir", type=Path, help="write the run here, or reuse the one there"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cfx-summary-") as scratch:
        parent = args.run_dir or Path(scratch)
        run_dir = parent / f"bench-{args.tasks}"
        if not (run_dir / "journal.jsonl").exists():
            print(f"writing a run of {args.tasks} tasks to {run_dir}", flush=True)
            write_run(parent, args.tasks)
        size_mb = (run_dir / "journal.jsonl").stat().st_size / 1e6
        paths = [floor(run_dir), summary(run_dir, REPO, args.export)]
        if args.previous:
            tree = previous_tree(REPO, args.previous, Path(scratch) / "previous")
            paths.append(summary(run_dir, tree, args.export, name="previous"))
        runs: dict[str, list[Measured]] = {path.name: [] for path in paths}
        if args.export:  # the first export writes the files the later ones replace
            paths[1].run()
        for index in range(args.rounds):
            for path in paths:
                measured = path.run()
                runs[path.name].append(measured)
                print(f"round {index + 1}: {path.name:8} {measured.wall_s:6.2f} s "
                      f"{measured.peak_rss_mb:7.1f} MB", flush=True)  # fmt: skip
    result = report(args, size_mb, runs)
    print(json.dumps(result, separators=(",", ":")))
    return 0


def report(
    args: argparse.Namespace, size_mb: float, runs: dict[str, list[Measured]]
) -> dict[str, Any]:
    command = "summary --export" if args.export else "summary"
    print(f"\n{command} of {args.tasks} tasks ({size_mb:.0f} MB of journal), "
          f"{args.rounds} rounds, median [min-max]:")  # fmt: skip
    figures: dict[str, Any] = {}
    for name, measured in runs.items():
        wall = Spread.of([m.wall_s for m in measured])
        rss = Spread.of([m.peak_rss_mb for m in measured])
        print(f"  {name:8}  {wall.text(2, ' s'):24}  peak RSS {rss.text(0, ' MB')}")
        figures[name] = {"wall_s": wall.summary(3), "peak_rss_mb": rss.summary(1)}
    walls = {name: [m.wall_s for m in measured] for name, measured in runs.items()}
    ratio = Spread.of(ratios(walls["summary"], walls["floor"]))
    print(f"  summary / floor (time, within each round): {ratio.text(2)}")
    result: dict[str, Any] = {
        "tasks": args.tasks,
        "journal_mb": round(size_mb, 1),
        "export": args.export,
        "paths": figures,
        "ratios": {"summary_over_floor": ratio.summary(3)},
    }
    if "previous" in walls:
        speedup = Spread.of(ratios(walls["previous"], walls["summary"]))
        print(f"  previous ({args.previous}) / summary (time): {speedup.text(2)}")
        result["ratios"]["previous_over_summary"] = speedup.summary(3)
        result["previous"] = args.previous
    wall_s = figures["summary"]["wall_s"]["median"]
    rss_mb = figures["summary"]["peak_rss_mb"]["median"]
    print(f"  target at 100k tasks: under {TARGET_S:.0f} s and {TARGET_MB:.0f} MB; "
          f"here {wall_s:.2f} s and {rss_mb:.0f} MB")  # fmt: skip
    result["machine"] = machine_info()
    return result


if __name__ == "__main__":
    sys.exit(main())
