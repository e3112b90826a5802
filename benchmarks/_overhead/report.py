"""The human-readable tables on stdout; the JSON line is `overhead.py`'s.

The ratios B/A are colmena-fx's price over driving the engine by hand; the
targets are for a 2-core machine (Colmena 0.7.2 reaches about 0.55x plain Parsl's
throughput and 1.7x its round trip).
"""

from __future__ import annotations

from typing import Any

from benchmarks._overhead.cpu import ROLES
from benchmarks._overhead.measure import Figures
from benchmarks._overhead.measure import Settings
from benchmarks._overhead.paths import BACK
from benchmarks._overhead.paths import OUT
from benchmarks._overhead.paths import WORKER
from colmena_fx.latency import HOP_NAMES

TARGET_THROUGHPUT_RATIO = 0.9
TARGET_RTT_RATIO = 1.3


def _spread(values: list[float], digits: int) -> str:
    return f"[{min(values):.{digits}f}-{max(values):.{digits}f}]"


def print_report(raw: Figures, fed: Figures, settings: Settings) -> None:
    throughput_ratio = fed.throughput_median / raw.throughput_median
    rtt_ratio = fed.rtt_median / raw.rtt_median
    print()
    print(
        f"No-op overhead: {settings.tasks} tasks per burst, {settings.rtt_samples} "
        f"round trips, median of {settings.repeats} repeats [min-max]; "
        f"engine from {settings.site.name}"
    )
    header = f"{'path':<28} {'throughput (tasks/s)':>26} {'round trip (ms)':>24}"
    print(header)
    print("-" * len(header))
    for figures in (raw, fed):
        tput = f"{figures.throughput_median:8.1f} {_spread(figures.throughput, 0)}"
        rtt = f"{figures.rtt_median:6.3f} {_spread(figures.rtt_medians, 3)}"
        print(f"{figures.label:<28} {tput:>26} {rtt:>24}")
    verdict_t = "ok" if throughput_ratio >= TARGET_THROUGHPUT_RATIO else "MISSED"
    verdict_r = "ok" if rtt_ratio <= TARGET_RTT_RATIO else "MISSED"
    ratio_t = f"{throughput_ratio:.3f}x (>= {TARGET_THROUGHPUT_RATIO}: {verdict_t})"
    ratio_r = f"{rtt_ratio:.3f}x (<= {TARGET_RTT_RATIO}: {verdict_r})"
    print(f"{'ratio B/A':<28} {ratio_t:>26} {ratio_r:>24}")
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
