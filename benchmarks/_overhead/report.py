"""The human-readable tables on stdout; the JSON line is `overhead.py`'s.

The ratios B/A are colmena-fx's price over driving the engine by hand, taken
within each round and shown as median [min-max] over the rounds, so a reader
sees how much one round differs from the next. The targets are for a 2-core
machine (Colmena 0.7.2 reaches about 0.55x plain Parsl's throughput and 1.7x
its round trip) and apply to the median over rounds.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks._overhead.cpu import ROLES
from benchmarks._overhead.figures import Figures
from benchmarks._overhead.figures import Ratios
from benchmarks._overhead.measure import Settings
from benchmarks._overhead.paths import BACK
from benchmarks._overhead.paths import OUT
from benchmarks._overhead.paths import WORKER
from benchmarks._overhead.storecalls import CALLS
from benchmarks._overhead.storecalls import FSYNC_S
from benchmarks._overhead.storecalls import MIN_LOOP_S
from benchmarks._overhead.storecalls import NO_THREAD
from benchmarks._overhead.storecalls import over_no_thread
from benchmarks._overhead.taskstore import StoreRounds
from benchmarks._stats import Spread
from benchmarks._stats import p95
from colmena_fx.journal import SYNC_S
from colmena_fx.latency import HOP_NAMES

TARGET_THROUGHPUT_RATIO = 0.9
TARGET_RTT_RATIO = 1.3


def targets_met(ratios: Ratios) -> tuple[bool, bool]:
    """Whether the median over rounds meets each target: throughput, round trip."""
    return (
        ratios.throughput.median >= TARGET_THROUGHPUT_RATIO,
        ratios.rtt_median.median <= TARGET_RTT_RATIO,
    )


def print_report(raw: Figures, fed: Figures, settings: Settings) -> None:
    ratios = Ratios.of(raw, fed)
    print()
    print(
        f"No-op overhead: {settings.rounds} alternating rounds (order "
        f"{settings.order} within each), {settings.tasks} tasks per burst and "
        f"{settings.rtt_samples} round trips per path and round; engine from "
        f"{settings.site.name}"
    )
    print("median [min-max] over rounds; the ratios are B/A within each round")
    header = (
        f"{'path':<26} {'throughput (tasks/s)':>24} {'round trip median (ms)':>24} "
        f"{'round trip p95 (ms)':>24}"
    )
    print(header)
    print("-" * len(header))
    for figures in (raw, fed):
        print(
            f"{figures.label:<26} {figures.throughput_spread.text(0):>24} "
            f"{figures.rtt_median_spread.text(3):>24} "
            f"{figures.rtt_p95_spread.text(3):>24}"
        )
    print(
        f"{'ratio B/A':<26} {ratios.throughput.text(3, 'x'):>24} "
        f"{ratios.rtt_median.text(3, 'x'):>24} {ratios.rtt_p95.text(3, 'x'):>24}"
    )
    throughput_ok, rtt_ok = targets_met(ratios)
    print(
        f"targets (median): throughput >= {TARGET_THROUGHPUT_RATIO}x "
        f"{'met' if throughput_ok else 'MISSED'}, round trip <= {TARGET_RTT_RATIO}x "
        f"{'met' if rtt_ok else 'MISSED'}"
    )
    print("per round (throughput, round trip median, p95):")
    rows = zip(
        ratios.throughput.values,
        ratios.rtt_median.values,
        ratios.rtt_p95.values,
        strict=True,
    )
    for index, (throughput, median, tail) in enumerate(rows, start=1):
        print(f"  {index:>3}  {throughput:.3f}x  {median:.3f}x  {tail:.3f}x")
    print(f"path B driven by: {fed.driver}")
    _print_segments(raw, fed)
    _print_cpu(raw, fed)


def _print_segments(raw: Figures, fed: Figures) -> None:
    print()
    print("Round trip, median of each part (us; medians do not add up exactly):")
    raw_parts, fed_parts = raw.segments_us(), fed.segments_us()
    print(f"  {'part':<42} {'A':>9} {'B':>9} {'B-A':>9}")
    for part in (OUT, WORKER, BACK):
        a, b = raw_parts[part], fed_parts[part]
        print(f"  {part:<42} {a:9.1f} {b:9.1f} {b - a:9.1f}")
    print("  path B's hops (colmena_fx.latency.HOP_NAMES; raw, one host):")
    for hop in HOP_NAMES:
        if hop in fed_parts:
            print(f"    {hop:<40} {'':>9} {fed_parts[hop]:9.1f}")


def _print_cpu(raw: Figures, fed: Figures) -> None:
    print()
    print("CPU per task during the bursts (us), by process:")
    raw_roles = raw.cpu.per_task_us(raw.cpu.roles)
    fed_roles = fed.cpu.per_task_us(fed.cpu.roles)
    print(f"  {'process':<30} {'A':>9} {'B':>9} {'B-A':>9}")
    for role in ROLES:
        a, b = raw_roles.get(role, 0.0), fed_roles.get(role, 0.0)
        if a or b:
            name = "client (and the engine in A)" if role == "client" else role
            print(f"  {name:<30} {a:9.1f} {b:9.1f} {b - a:9.1f}")
    total_a, total_b = sum(raw_roles.values()), sum(fed_roles.values())
    print(f"  {'total':<30} {total_a:9.1f} {total_b:9.1f} {total_b - total_a:9.1f}")
    print("CPU per task during the bursts (us), by thread of this client process:")
    for figures in (raw, fed):
        busy = figures.cpu.busy_threads_us()
        listed = ", ".join(f"{name} {us:.1f}" for name, us in busy.items())
        print(f"  {figures.label}: {listed}")


def print_profile(report: dict[str, Any]) -> None:
    print()
    print("Profile of path B's client threads (cProfile in thread CPU time). The")
    print("profiler inflates every call: 'est' scales each function's share of the")
    print("profile to the thread's CPU per task measured without the profiler.")
    for name, table in report.items():
        print(
            f"\n  thread {name} (profiled over {table['scope']}, {table['tasks']} "
            f"tasks): {table['measured_us_per_task']} us/task measured, "
            f"{table['profiled_us_per_task']} us/task profiled"
        )
        for title, key in (
            ("self time", "top_self"),
            ("cumulative time, colmena_fx functions", "top_cumulative_colmena_fx"),
        ):
            print(f"    {'est us':>8} {'prof us':>8} {'calls':>6}  {title}")
            for row in table[key]:
                est = row["est_us_per_task"]
                est_text = f"{est:8.2f}" if est is not None else f"{'-':>8}"
                print(
                    f"    {est_text} {row['profiled_us_per_task']:8.2f} "
                    f"{row['calls_per_task']:6.2f}  {row['function']}"
                )


def print_task_store(store: StoreRounds, fed: Figures) -> None:
    print()
    print(
        "Task store (colmena_fx.taskstore): path B's burst with it and with a no-op "
        "stand-in,"
    )
    print("same round, which goes first alternating; median [min-max] over rounds")
    print(
        f"  {'B with the task store':<34} {Spread.of(store.with_store).text(0)} tasks/s"
    )
    print(f"  {'B without (stand-in)':<34} {Spread.of(store.without).text(0)} tasks/s")
    print(f"  {'ratio with/without':<34} {store.ratio.text(3, 'x')}")
    label = "burst time per task, with-without"
    print(f"  {label:<34} {store.us_per_task.text(1, ' us')}")
    ratio_halves = store.by_first(store.ratio)
    us_halves = store.by_first(store.us_per_task)
    for first, half in ratio_halves.items():
        print(
            f"    {first + ' first':<32} {half.text(3, 'x')}, "
            f"{us_halves[first].text(1, ' us')}"
        )
    ratio, us = store.balanced()
    print(f"  {'balanced over the two orders':<34} {ratio:.3f}x, {us:+.1f} us per task")
    print("  per round (ratio, us per task, which went first):")
    rows = zip(store.ratio.values, store.us_per_task.values, store.first, strict=True)
    for index, (ratio, us, first) in enumerate(rows, start=1):
        print(f"    {index:>3}  {ratio:.3f}x  {us:+8.1f} us  {first}")
    with_roles = fed.cpu.per_task_us(fed.cpu.roles)
    without_roles = store.cpu_without.per_task_us(store.cpu_without.roles)
    for name, with_us, without_us in (
        (
            "client process",
            with_roles.get("client", 0.0),
            without_roles.get("client", 0.0),
        ),
        ("all processes", sum(with_roles.values()), sum(without_roles.values())),
    ):
        print(
            f"  CPU per task, {name:<19} {with_us:7.1f} us with, {without_us:7.1f} "
            f"without, {with_us - without_us:+6.1f}"
        )
    written = ", ".join(
        f"{name} {size:.0f}" for name, size in store.bytes_per_task().items()
    )
    print(f"  bytes per task written in B's run directory: {written}")
    if not store.calls:
        return
    tasks = len(store.path.last_results)
    print(
        f"Store calls timed directly on B's last burst ({tasks} results, passed over "
        f"for at least {MIN_LOOP_S} s per variant and repetition; us per task, "
        "median / p95 over all tasks; fsyncs: of the journal and both files):"
    )
    print(
        f"  {'variant':<13} {'tasks':>7} {'request':>13} {'result':>13} {'taken':>13} "
        f"{'total':>13} {'fsyncs':>7} {'fsync ms':>9}"
    )
    for times in store.calls:
        cells = " ".join(
            f"{statistics.median(times.us[name]):6.1f}/{p95(times.us[name]):<6.1f}"
            for name in (*CALLS, "total")
        )
        fsync_ms = (
            f"{statistics.median(times.fsyncs_s) * 1e3:9.2f}"
            if times.fsyncs_s
            else f"{'-':>9}"
        )
        print(
            f"  {times.variant:<13} {times.tasks:>7} {cells} "
            f"{len(times.fsyncs_s):>7} {fsync_ms}"
        )
    over = ", ".join(
        f"{variant} {spread.text(3, 'x')}"
        for variant, spread in over_no_thread(store.calls).items()
    )
    print(f"  total median over '{NO_THREAD}', per repetition: {over}")
    print(
        f"  (the library's journal fsyncs every {SYNC_S:g} s; at "
        f"{FSYNC_S * 1e3:g} ms, 50x as often, each loop overlaps several fsyncs)"
    )
    written = ", ".join(
        f"{name} {size:.0f}" for name, size in store.calls[0].bytes_per_task().items()
    )
    print(f"  bytes per task written: {written}")
