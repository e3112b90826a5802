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

Each sample sends one float64 array of 1, 10 or 100 MiB to a function that sums
it (so every byte must have arrived) and waits for the small result: one task in
flight, the two modes alternating so that drift hits both alike. A round trip is
from `submit` to the result in hand. The result comes back small on purpose:
inline results over ~7.5 MiB exceed Globus Compute's 10 MiB result limit after
base64, so only arguments can be compared both ways.

Prints a table with each mode's median round trip, the ratio, and the median data
hops of the by-reference path; the last line of standard output is one JSON
object: round trips in ms keyed by size and mode, ratios, machine and settings.
Target: 10 MiB by reference under 0.5x inline. Run from the repository root:
`python benchmarks/payloads.py [--quick]`.
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
from typing import Any

import numpy as np
import yaml

from benchmarks._overhead.machine import machine_info
from benchmarks.overhead import prepare_environment
from colmena_fx.federation import Federation

MIB = 2**20
SIZES_MIB = (1, 10, 100)
MODES = ("inline", "by_reference")
TARGET_RATIO_10MIB = 0.5
DEFAULT_SITE = REPO / "endpoints" / "local-cpu.yaml"
#: Samples per size and mode: fewer for the sizes that take longer.
NORMAL = {1: 30, 10: 15, 100: 5}
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


def measure(
    federation: Federation, samples: dict[int, int]
) -> dict[int, dict[str, float]]:
    """Median round trip per size and mode, in ms, after one warm-up of each."""
    medians: dict[int, dict[str, float]] = {}
    rng = np.random.default_rng(3)
    for size in SIZES_MIB:
        array = rng.random(size * MIB // 8)
        for mode in MODES:
            round_trip_ms(federation, mode, array)  # warm-up: worker imports, caches
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for i in range(samples[size]):
            order = MODES if i % 2 == 0 else MODES[::-1]
            for mode in order:
                times[mode].append(round_trip_ms(federation, mode, array))
        medians[size] = {mode: statistics.median(times[mode]) for mode in MODES}
        progress(
            f"{size:>3} MiB: inline {medians[size]['inline']:8.1f} ms, by reference "
            f"{medians[size]['by_reference']:8.1f} ms ({samples[size]} samples each)"
        )
    return medians


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
    medians: dict[int, dict[str, float]], hops: dict[str, dict[str, dict[str, float]]]
) -> None:
    print()
    print("Round trip, one task in flight: submit an array, get its sum back (median)")
    print(f"  {'size':>8}  {'inline ms':>10}  {'by ref ms':>10}  {'ratio':>6}")
    for size, row in medians.items():
        ratio = row["by_reference"] / row["inline"]
        print(f"  {size:>4} MiB  {row['inline']:10.1f}  {row['by_reference']:10.1f}"
              f"  {ratio:5.2f}x")  # fmt: skip
    ratio = medians[10]["by_reference"] / medians[10]["inline"]
    verdict = "met" if ratio < TARGET_RATIO_10MIB else "MISSED"
    print(f"  target: 10 MiB by reference under {TARGET_RATIO_10MIB}x inline: "
          f"{ratio:.2f}x, {verdict}")  # fmt: skip
    print("Where the time goes: hops over 5% of the round trip, median ms")
    for size, by_mode in hops.items():
        for mode, row in by_mode.items():
            listed = ", ".join(f"{hop} {ms:.1f}" for hop, ms in row.items())
            print(f"  {size:>7} {mode:<12}  {listed}")


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
            medians = measure(federation, samples)
            hops = main_hops(federation)
    print_report(medians, hops)
    summary: dict[str, Any] = {
        "benchmark": "payloads",
        "round_trip_ms": {
            f"{size}MiB": {mode: round(ms, 2) for mode, ms in row.items()}
            for size, row in medians.items()
        },
        "ratio_by_reference": {
            f"{size}MiB": round(row["by_reference"] / row["inline"], 4)
            for size, row in medians.items()
        },
        "target_10MiB_ratio_max": TARGET_RATIO_10MIB,
        "hops_ms": hops,
        "samples": {f"{size}MiB": n for size, n in samples.items()},
        "machine": machine_info(),
        "wall_s": round(time.perf_counter() - wall, 1),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
