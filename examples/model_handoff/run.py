"""Train a model of tens of MB on one site and use it on another, by reference.

`python -m examples.model_handoff.run` runs a small active-learning campaign on the
federation in `federation.yaml`. Each round the training site fits a model (32 MiB
of weights) to every point simulated so far; the thinker never downloads it: it
forwards the model's proxy to screening tasks on the simulation site, each of which
fetches the weights from the shared data store, ranks a batch of random candidates,
and returns the best few, which are then simulated. At the end it prints where the
time went, the data hops included, and checks that the store is empty again. Run
from the repository root: the sites' workers import the functions from there.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from colmena_fx.exceptions import ColmenaFXError
from colmena_fx.federation import Federation
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import Result
from examples.interleaved_optimizer.functions import BOUND

FEDERATION = Path(__file__).with_name("federation.yaml")
DIM = 4


def _wait(federation: Federation, count: int) -> list[Result]:
    """`count` results, in order of arrival; a failed task ends the campaign."""
    results = []
    for _ in range(count):
        result = federation.get_result(timeout=600)
        if result is None:
            raise ColmenaFXError("no result within 10 minutes")
        if not result.success:
            raise ColmenaFXError(f"{result.method} failed: {result.failure}")
        federation.processed(result)
        results.append(result)
    return results


def _candidates(
    rng: np.random.Generator, best: np.ndarray, spread: float
) -> np.ndarray:
    """Half anywhere in the box, half around the best point so far."""
    anywhere = rng.uniform(-BOUND, BOUND, size=(500, DIM))
    near = best + rng.normal(scale=spread, size=(500, DIM))
    return np.clip(np.vstack([anywhere, near]), -BOUND, BOUND)


def campaign(federation: Federation, rounds: int, batches: int, seed: int) -> None:
    console = Console(stderr=True)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-BOUND, BOUND, size=(16, DIM))
    for point in x:
        federation.submit("simulate", point)
    y = np.array([r.value for r in _wait(federation, len(x))])
    for round_ in range(1, rounds + 1):
        federation.submit("train", x, y, kwargs={"seed": round_})
        model = _wait(federation, 1)[0].value  # a proxy: the weights stay stored
        best = x[np.argmin(y)]
        for _ in range(batches):
            candidates = _candidates(rng, best, spread=BOUND / (2 * round_))
            federation.submit("screen", model, candidates, kwargs={"keep": 2})
        del model  # the screening tasks in flight still hold it
        picks = np.vstack([r.value for r in _wait(federation, batches)])
        for point in picks:
            federation.submit("simulate", point)
        values = [r.value for r in _wait(federation, len(picks))]
        x, y = np.vstack([x, picks]), np.concatenate([y, values])
        console.print(
            f"round {round_}: best so far {y.min():.3f} after {len(y)} simulations"
        )


DATA_HOPS = ("input_put", "input_data", "result_put", "result_data")


def data_table(latency: LatencyRecorder) -> Table:
    """Per method: tasks, median round trip and the median of each data hop."""
    table = Table(
        title="Where the data went (median ms; - where nothing was stored)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("method", "tasks", "round_trip", *DATA_HOPS):
        table.add_column(
            column,
            justify="left" if column == "method" else "right",
            min_width=len(column),
        )
    rows: dict[str, dict[str, Any]] = {}
    for row in latency.summary(by=("method",)):
        rows.setdefault(row.method, {})[row.hop] = row
    for method, hops in sorted(rows.items()):
        trip = hops["round_trip"]
        cells = [
            f"{hops[h].median_s * 1e3:.1f}" if h in hops else "-" for h in DATA_HOPS
        ]
        table.add_row(method, str(trip.count), f"{trip.median_s * 1e3:.1f}", *cells)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.model_handoff.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--federation", type=Path, default=FEDERATION)
    parser.add_argument("--rounds", type=int, default=3, help="default: %(default)s")
    parser.add_argument(
        "--batches", type=int, default=4,
        help="screening tasks per round, each given the model (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    console = Console()
    try:
        with Federation.from_file(args.federation) as federation:
            campaign(federation, args.rounds, args.batches, args.seed)
            federation.data.settle()
            held = federation.data.held()
    except ColmenaFXError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    console.print(data_table(federation.latency))
    console.print(f"values still held in the data stores after the campaign: {held}")
    console.print(f"run directory: {federation.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
