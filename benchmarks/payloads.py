"""Large arguments inline versus by reference, on the same engine, in one run.

One federation, two sites built from the same site file (by default
`endpoints/local-cpu.yaml`: Parsl's HighThroughputExecutor with local workers):

- `inline`: no data store reaches it, so an argument travels inside its task,
  as it would without any `data:` block (the previous design): serialized, framed
  in base64 as Globus Compute sends it, through the endpoint and the engine's
  interchange to the worker.
- `by_reference`: a file store under the run directory reaches it; an argument at
  or over 1 MB is written to the store, the task carries a proxy, and the worker
  shim reads the value back before the function starts.

Both sites are started (by `Federation.from_file`) before the first sample and
stay alive to the last. For each size, after one warm-up of each mode, the run
goes in rounds: a round is one round trip of each mode, back to back, inline
first in even rounds and by reference first in odd ones, so that load hitting a
round hits both modes alike and neither always goes first. Each sample sends one
float64 array of 1, 10 or 100 MiB to a function that sums it (so every byte
must have arrived) and waits for the small result, one task in flight; a round
trip is from `submit` to the result in hand. The result comes back small on
purpose: inline results over ~7.5 MiB exceed Globus Compute's 10 MiB result
limit after base64, so only arguments can be compared both ways. While one mode
runs, the other site idles beside it (its interchange polls every 10 ms, about
1-2% of one core; see `overhead.py --idle-check`), the same for both modes.

Prints, per size, each mode's median and p95 round trip, the ratio by reference
/ inline taken within each round and summarised as median [min-max] over the
rounds, the ratio of the p95s (a round has one sample per mode, so no p95 of its
own), and the median data hops; the last line of standard output is one JSON
object: round trips in ms keyed by size and mode (median, p95, every round),
ratios (median, range, every round, p95), machine and settings. Target: 10 MiB
by reference under 0.5x inline (median over rounds). Run from the repository
root: `python benchmarks/payloads.py [--quick]`.
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
import datetime
import json
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np
import yaml

from benchmarks._overhead.machine import machine_info
from benchmarks._stats import Spread
from benchmarks._stats import p95
from benchmarks._stats import ratios
from benchmarks.overhead import prepare_environment
from colmena_fx.federation import Federation

MIB = 2**20
SIZES_MIB = (1, 10, 100)
MODES = ("inline", "by_reference")
TARGET_RATIO_10MIB = 0.5
DEFAULT_SITE = REPO / "endpoints" / "local-cpu.yaml"
#: Rounds per size (one round trip of each mode per round): fewer for the
#: sizes that take longer.
NORMAL = {1: 60, 10: 30, 100: 10}
QUICK = {1: 5, 10: 3, 100: 2}


def progress(message: str) -> None:
    print(f"[payloads] {message}", file=sys.stderr, flush=True)


def write_federation(directory: Path, site_file: Path) -> Path:
    """The two-site federation file, its sites copied from `site_file`."""
    engine_site = yaml.safe_load(site_file.read_text())
    sites = []
    for mode in MODES:
        path = directory / f"{mode}.yaml"
        path.write_text(yaml.safe_dump({**engine_site, "name": mode}))
        sites.append(path.name)
    function = "benchmarks._tasks:checksum"
    federation = {
        "name": "payloads",
        "sites": sites,
        "methods": {mode: {"site": mode, "function": function} for mode in MODES},
        "data": {
            "stores": {
                "scratch": {
                    "type": "file",
                    "path": "store",
                    "sites": ["client", "by_reference"],
                },
            },
            "threshold": "1 MB",
        },
        "run_dir": "runs",
    }
    path = directory / "federation.yaml"
    path.write_text(yaml.safe_dump(federation))
    return path


def round_trip_ms(federation: Federation, method: str, array: np.ndarray) -> float:
    """One round trip; the topic names the size, to split the hops by it later."""
    topic = f"{array.nbytes // MIB}MiB"
    started = time.perf_counter()
    federation.submit(method, array, topic=topic)
    result = federation.get_result(topic, timeout=600)
    elapsed = (time.perf_counter() - started) * 1e3
    if result is None or not result.success:
        raise RuntimeError(
            f"{method} failed: {result.failure if result else 'timeout'}"
        )
    if result.value != float(array.sum()):
        raise RuntimeError(f"{method} returned a wrong checksum")
    federation.processed(result)
    return elapsed


@dataclass
class SizeFigures:
    """The round trips of one array size, round by round.

    A round is one round trip of each mode, the modes in alternating order
    (inline first in even rounds), so both modes of a round run back to back and
    any load that hits the round hits both. `ms[mode][i]` is round i's.
    """

    size_mib: int
    ms: dict[str, list[float]] = field(
        default_factory=lambda: {mode: [] for mode in MODES}
    )

    def median(self, mode: str) -> float:
        return statistics.median(self.ms[mode])

    def p95(self, mode: str) -> float:
        return p95(self.ms[mode])

    def spread(self, mode: str) -> Spread:
        return Spread.of(self.ms[mode])

    @property
    def ratio(self) -> Spread:
        """By reference over inline, per round: median [min-max] over rounds."""
        return Spread.of(ratios(self.ms["by_reference"], self.ms["inline"]))

    @property
    def p95_ratio(self) -> float:
        """The p95s' ratio. A round has one sample per mode, hence no p95 of its
        own; the samples are paired in time, so drift still moves both alike."""
        return self.p95("by_reference") / self.p95("inline")


def measure(federation: Federation, samples: dict[int, int]) -> list[SizeFigures]:
    """Per size: one warm-up of each mode, then `samples[size]` rounds."""
    figures = []
    rng = np.random.default_rng(3)
    for size in SIZES_MIB:
        array = rng.random(size * MIB // 8)
        for mode in MODES:
            round_trip_ms(federation, mode, array)  # warm-up: worker imports, caches
        size_figures = SizeFigures(size)
        for i in range(samples[size]):
            order = MODES if i % 2 == 0 else MODES[::-1]
            for mode in order:
                size_figures.ms[mode].append(round_trip_ms(federation, mode, array))
        figures.append(size_figures)
        progress(
            f"{size:>3} MiB: inline {size_figures.median('inline'):8.1f} ms, by "
            f"reference {size_figures.median('by_reference'):8.1f} ms, ratio "
            f"{size_figures.ratio.text(3, 'x')} ({samples[size]} rounds)"
        )
    return figures


def main_hops(federation: Federation) -> dict[str, dict[str, dict[str, float]]]:
    """Per size and mode, the median of each hop worth 5% of the round trip, in ms.

    Warm-ups included; chain hops and data spans alike (a data span lies inside a
    chain hop: `input_put` in `serialize`, `input_data` in `input_resolve`).
    """
    rows = federation.latency.summary(by=("method", "topic"))  # method "mode/size"
    trips = {r.method: r.median_s for r in rows if r.hop == "round_trip"}
    hops: dict[str, dict[str, dict[str, float]]] = {}
    for row in rows:
        trip = trips.get(row.method)
        if trip and row.hop not in ("round_trip", "total") and row.median_s > trip / 20:
            mode, _, size = row.method.partition("/")
            by_mode = hops.setdefault(size, {}).setdefault(mode, {})
            by_mode[row.hop] = round(row.median_s * 1e3, 2)
    return hops


def print_report(
    figures: list[SizeFigures], hops: dict[str, dict[str, dict[str, float]]]
) -> None:
    print()
    print("Round trip, one task in flight: submit an array, get its sum back; ms,")
    print("median and p95 over rounds; ratio by reference / inline within each")
    print("round, median [min-max] over rounds, and the p95s' ratio")
    print(f"  {'size':>8}  {'inline':>17}  {'by reference':>17}  "
          f"{'ratio':>22}  {'p95 ratio':>9}")  # fmt: skip
    for row in figures:
        inline = f"{row.median('inline'):.1f} / {row.p95('inline'):.1f}"
        by_ref = f"{row.median('by_reference'):.1f} / {row.p95('by_reference'):.1f}"
        print(f"  {row.size_mib:>4} MiB  {inline:>17}  {by_ref:>17}  "
              f"{row.ratio.text(3, 'x'):>22}  {row.p95_ratio:8.3f}x")  # fmt: skip
    ratio = _size(figures, 10).ratio
    verdict = "met" if ratio.median < TARGET_RATIO_10MIB else "MISSED"
    print(f"  target: 10 MiB by reference under {TARGET_RATIO_10MIB}x inline "
          f"(median over rounds): {ratio.median:.3f}x, {verdict}")  # fmt: skip
    print("Where the time goes: hops over 5% of the round trip, median ms")
    for size, by_mode in hops.items():
        for mode, mode_hops in by_mode.items():
            listed = ", ".join(f"{hop} {ms:.1f}" for hop, ms in mode_hops.items())
            print(f"  {size:>7} {mode:<12}  {listed}")


def _size(figures: list[SizeFigures], size_mib: int) -> SizeFigures:
    return next(row for row in figures if row.size_mib == size_mib)


def summarize(
    figures: list[SizeFigures],
    hops: dict[str, dict[str, dict[str, float]]],
    samples: dict[int, int],
    wall_s: float,
) -> dict[str, Any]:
    """The JSON line. `round_trip_ms` and `ratio_by_reference` keep their names:
    medians over rounds, the ratio now the median of the per-round ratios."""
    by_size = {f"{row.size_mib}MiB": row for row in figures}
    return {
        "benchmark": "payloads",
        "method": "alternating rounds, both sites alive; ratios per round",
        "round_trip_ms": {
            size: {mode: round(row.median(mode), 2) for mode in MODES}
            for size, row in by_size.items()
        },
        "round_trip_p95_ms": {
            size: {mode: round(row.p95(mode), 2) for mode in MODES}
            for size, row in by_size.items()
        },
        "round_trip_ms_rounds": {
            size: {mode: row.spread(mode).summary(2) for mode in MODES}
            for size, row in by_size.items()
        },
        "ratio_by_reference": {
            size: round(row.ratio.median, 4) for size, row in by_size.items()
        },
        "ratio_by_reference_rounds": {
            size: row.ratio.summary(4) for size, row in by_size.items()
        },
        "ratio_by_reference_p95": {
            size: round(row.p95_ratio, 4) for size, row in by_size.items()
        },
        "target_10MiB_ratio_max": TARGET_RATIO_10MIB,
        "target_met": by_size["10MiB"].ratio.median < TARGET_RATIO_10MIB,
        "hops_ms": hops,
        "samples": {f"{size}MiB": n for size, n in samples.items()},
        "machine": machine_info(),
        "wall_s": round(wall_s, 1),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument(
        "--site", type=Path, default=DEFAULT_SITE,
        help="site file whose engine both sites run (default %(default)s)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    prepare_environment()
    samples = QUICK if args.quick else NORMAL
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cfx-payloads-") as tmp:
        path = write_federation(Path(tmp), args.site.resolve())
        progress("starting two sites from " + str(args.site))
        with Federation.from_file(path) as federation:
            figures = measure(federation, samples)
            hops = main_hops(federation)
    print_report(figures, hops)
    summary = summarize(figures, hops, samples, time.perf_counter() - wall)
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
