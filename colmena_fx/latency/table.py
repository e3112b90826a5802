"""Terminal tables of task counts, per-hop latency and clock offsets."""

from __future__ import annotations

from rich.table import Table

from colmena_fx.latency.clocks import ClockOffset
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.latency.stats import HopStats
from colmena_fx.latency.stats import TaskCounts
from colmena_fx.units import format_ms


def latency_table(
    counts: list[TaskCounts],
    stats: list[HopStats],
    title: str = "",
    synchronized: bool = False,
) -> Table:
    """One section per site and method: its task counts, then one row per hop.

    Hops between two clocks show the +- of their clock correction.
    """
    table = Table(title=title or "Per-hop latency", title_justify="left")
    for column in ("site", "method", "tasks ok/failed", "hop", "n"):
        table.add_column(column, no_wrap=True)
    for column in ("median ms", "p95 ms", "p99 ms", "+- ms"):
        table.add_column(column, justify="right")
    by_group: dict[tuple[str, str], list[HopStats]] = {}
    for row in stats:
        by_group.setdefault((row.site, row.method), []).append(row)
    for count in counts:
        rows = by_group.get((count.site, count.method), [])
        tasks = f"{count.succeeded}/{count.failed}"
        if not rows:
            table.add_row(count.site, count.method, tasks, "-", "0", "-", "-", "-", "")
        for i, row in enumerate(rows):
            table.add_row(
                count.site if i == 0 else "",
                count.method if i == 0 else "",
                tasks if i == 0 else "",
                row.hop,
                str(row.count),
                format_ms(row.median_s),
                format_ms(row.p95_s),
                format_ms(row.p99_s),
                format_ms(row.uncertainty_s) if row.crosses_clocks else "",
                end_section=i == len(rows) - 1,
            )
    table.caption = (
        "clocks declared synchronized: remote stamps taken as they are"
        if synchronized
        else "remote stamps corrected by the clock offsets estimated from each "
        "round trip; +- is that correction's uncertainty"
    )
    return table


def offsets_table(offsets: list[ClockOffset], title: str = "") -> Table:
    """Each remote clock's offset from the client's, with its uncertainty."""
    table = Table(
        title=title or "Clock offsets (remote - client)", title_justify="left"
    )
    for column in ("site", "host"):
        table.add_column(column, no_wrap=True)
    for column in ("offset ms", "+- ms", "round trips", "least delay ms"):
        table.add_column(column, justify="right")
    table.add_column("note")
    for row in offsets:
        table.add_row(
            row.site,
            row.host,
            f"{row.offset_s * 1e3:+.3f}",
            f"{row.uncertainty_s * 1e3:.3f}",
            str(row.samples),
            f"{row.min_delay_s * 1e3:.3f}",
            "" if row.consistent else "round trips disagree: clock stepped or drifts",
        )
    return table


def run_tables(recorder: LatencyRecorder, title: str = "") -> list[Table]:
    """The latency table of a run, then its clock offsets when it has remote clocks."""
    tables = [
        latency_table(
            recorder.counts(),
            recorder.summary(),
            title=title,
            synchronized=recorder.clocks.synchronized,
        )
    ]
    offsets = recorder.offsets()
    if offsets:
        tables.append(offsets_table(offsets))
    return tables
