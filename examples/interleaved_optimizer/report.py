"""The end-of-campaign report: where the time went, what was found, how busy it was.

It is printed after the federation has stopped, because only then is the journal
complete; the latency table is read back from the journal rather than from the
thinker's memory, so it shows exactly what `colmena-fx summary RUN_DIR` would.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
from rich.console import Console

from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.latency.table import run_tables
from examples.interleaved_optimizer.thinker import InterleavedOptimizer

#: The campaign's own record, written beside the journal in the run directory.
HISTORY_NAME = "optimizer.json"


def write_history(thinker: InterleavedOptimizer, path: Path) -> None:
    """Every simulated point and value, in the order they came back, and the best.

    The journal holds the tasks but not their values; this file holds the science,
    for plotting or for starting the next campaign from the best points.
    """
    busy = thinker.busy.report()
    history = {
        "settings": asdict(thinker.settings),
        "points": [x.tolist() for x in thinker.xs],
        "values": list(thinker.ys),
        "best": {
            "value": thinker.best_y if math.isfinite(thinker.best_y) else None,
            "x": None if thinker.best_x is None else thinker.best_x.tolist(),
        },
        "simulations": {
            "finished": thinker.finished,
            "failed": thinker.failed,
            "chosen_by_surrogate": thinker.from_model,
        },
        "retrainings": [asdict(r) for r in thinker.retrainings],
        "workers_busy_fraction": busy.fraction,
        "slot_idle_s": thinker.idle.idle_s,
    }
    path.write_text(json.dumps(history, indent=1))


def _point(x: np.ndarray | None) -> str:
    if x is None:
        return "-"
    return "[" + ", ".join(f"{value:+.3f}" for value in x) + "]"


def print_report(
    console: Console,
    thinker: InterleavedOptimizer,
    run_dir: Path,
    elapsed_s: float,
) -> None:
    """Print the latency table, the best point, utilization and the run directory."""
    console.print()
    for table in run_tables(LatencyRecorder.from_run(run_dir)):
        console.print(table)
    console.print()

    if math.isfinite(thinker.best_y):
        first = thinker.ys[0] if thinker.ys else math.nan
        found_at = thinker.ys.index(thinker.best_y) + 1
        console.print(
            f"[bold]Best value {thinker.best_y:.4f}[/] at x = {_point(thinker.best_x)} "
            f"(result {found_at} of {len(thinker.ys)}; the first, a random point, "
            f"scored {first:.4f}; the global minimum is 0 at the origin)",
            highlight=False,
        )
    else:
        console.print("[red]No simulation succeeded: no best value.[/]")
    if thinker.failed:
        console.print(
            f"[yellow]{thinker.failed} of {thinker.finished} simulations failed[/] "
            "(see the warnings above and the journal)."
        )

    busy = thinker.busy.report()
    if busy.tasks:
        # Same host, same clock: the thinker's and the workers' stamps compare.
        wait_s = (busy.first_start_ns - thinker.started_ns) / 1e9
        console.print(
            f"The first simulation started computing {wait_s:.1f} s after the "
            "campaign began: the time the engine took to start its workers.",
            highlight=False,
        )
    console.print(
        f"Simulation workers busy {busy.fraction:.1%} of the campaign: "
        f"{busy.busy_s:.1f} s of compute on {busy.workers} workers over "
        f"{busy.window_s:.1f} s from the first simulation's start to the last one's "
        f"end; the thinker left slots free for {thinker.idle.idle_s * 1e3:.0f} ms in "
        "all.",
        highlight=False,
    )
    retrainings = thinker.retrainings
    if retrainings:
        train_ms = np.median([r.train_s for r in retrainings]) * 1e3
        infer_ms = np.median([r.infer_s for r in retrainings]) * 1e3
        console.print(
            f"Surrogate retrained {len(retrainings)} times (median {train_ms:.0f} ms "
            f"to train, {infer_ms:.0f} ms to score {thinker.settings.n_candidates} "
            f"candidates, round trips included); {thinker.from_model} of "
            f"{len(thinker.ys)} simulated points were chosen by the surrogate.",
            highlight=False,
        )
    else:
        console.print("The surrogate was never retrained (budget too small).")
    console.print(
        f"Campaign took {elapsed_s:.1f} s including site start-up and shutdown.",
        highlight=False,
    )
    console.print(
        f"Run directory: {run_dir} (journal.jsonl, {HISTORY_NAME}, "
        "sites/*/endpoint.log)",
        highlight=False,
        soft_wrap=True,
    )
