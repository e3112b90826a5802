"""The probe's comparison: one table per payload size and mode, sites side by side."""

from __future__ import annotations

from collections import defaultdict

from rich.table import Table

from colmena_fx.latency.hops import ALL_HOP_NAMES
from colmena_fx.probe.run import MODES
from colmena_fx.probe.run import ProbeReport
from colmena_fx.probe.run import ProbeRow
from colmena_fx.units import format_ms
from colmena_fx.units import format_size

_MODE_TITLES = {"serial": "one in flight", "burst": "burst"}


def _rate(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _hop_rank(name: str) -> int:
    """Chain order of a hop, merged hops (`a+b`) at the place of their first part."""
    first = name.split("+", 1)[0]
    return ALL_HOP_NAMES.index(first) if first in ALL_HOP_NAMES else len(ALL_HOP_NAMES)


def probe_tables(report: ProbeReport) -> list[Table]:
    """Per-hop medians (ms), round trip and throughput, one column per site."""
    groups: dict[tuple[int, str], list[ProbeRow]] = defaultdict(list)
    for row in report.rows:
        groups[row.size_bytes, row.mode].append(row)
    tables = []
    for (size, mode), rows in sorted(
        groups.items(), key=lambda item: (item[0][0], MODES.index(item[0][1]))
    ):
        first = rows[0]
        table = Table(
            title=f"{format_size(size)} payload, {_MODE_TITLES[mode]} "
            f"({first.tasks} tasks per site)",
            title_justify="left",
        )
        table.add_column("median ms", no_wrap=True)
        for row in rows:
            table.add_column(row.site, justify="right")
        hops = sorted({hop for row in rows for hop in row.hop_medians_s}, key=_hop_rank)
        for hop in hops:
            table.add_row(hop, *(format_ms(row.hop_medians_s.get(hop)) for row in rows))
        table.add_section()
        table.add_row("round trip", *(format_ms(r.round_trip_median_s) for r in rows))
        table.add_row("round trip p95", *(format_ms(r.round_trip_p95_s) for r in rows))
        table.add_row("tasks/s", *(_rate(r.tasks_per_s) for r in rows))
        if size:
            table.add_row(
                "MB/s (both ways)", *(_rate(r.megabytes_per_s, 2) for r in rows)
            )
        if any(row.failed or row.failure for row in rows):
            table.add_row("failed", *(str(row.failed) for row in rows))
            table.caption = "\n".join(
                f"{row.site}: {row.failure}" for row in rows if row.failure
            )
            table.caption_justify = "left"
        tables.append(table)
    return tables
