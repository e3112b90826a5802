"""Terminal tables of task counts and per-hop latency."""

from __future__ import annotations

from rich.table import Table

from colmena_fx.latency.hops import HOPS
from colmena_fx.latency.stats import HopStats
from colmena_fx.latency.stats import TaskCounts

_CROSSING = {hop.name for hop in HOPS if hop.crosses_clocks}


def latency_table(
    counts: list[TaskCounts], stats: list[HopStats], title: str = ""
) -> Table:
    """One section per site and method: its task counts, then one row per hop.

    Hops stamped by two processes are marked with `*`: their raw durations include
    any offset between those processes' clocks.
    """
    table = Table(title=title or "Per-hop latency (raw clocks)", title_justify="left")
    for column in ("site", "method", "tasks ok/failed", "hop", "n"):
        table.add_column(column, no_wrap=True)
    table.add_column("median ms", justify="right")
    table.add_column("p95 ms", justify="right")
    by_group: dict[tuple[str, str], list[HopStats]] = {}
    for row in stats:
        by_group.setdefault((row.site, row.method), []).append(row)
    for count in counts:
        rows = by_group.get((count.site, count.method), [])
        tasks = f"{count.succeeded}/{count.failed}"
        if not rows:
            table.add_row(count.site, count.method, tasks, "-", "0", "-", "-")
        for i, row in enumerate(rows):
            mark = "*" if row.hop in _CROSSING else ""
            table.add_row(
                count.site if i == 0 else "",
                count.method if i == 0 else "",
                tasks if i == 0 else "",
                row.hop + mark,
                str(row.count),
                f"{row.median_s * 1e3:.2f}",
                f"{row.p95_s * 1e3:.2f}",
                end_section=i == len(rows) - 1,
            )
    table.caption = "* stamped by two processes: includes their clock offset"
    return table
