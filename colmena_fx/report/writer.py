"""Write a run's report: the HTML page and, beside it, the same plots as PNG files.

The PNGs are written as well as embedded so that a plot can go into slides or an
issue without opening the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from matplotlib.figure import Figure

from colmena_fx.clocksetting import ClockSetting
from colmena_fx.report import plots
from colmena_fx.report.data import ReportData
from colmena_fx.report.data import load_report_data
from colmena_fx.report.page import render

REPORT_NAME = "report.html"
#: Every image a report can have; a section without data has none.
IMAGE_NAMES = ("hops", "round_trips", "utilization", "decision_latency")


def figures(data: ReportData) -> dict[str, Figure]:
    """The figures of the sections that have something to show."""
    out: dict[str, Figure] = {}
    if data.hop_medians:
        out["hops"] = plots.hop_bars(data.hop_medians, data.hop_order)
    if data.round_trips:
        out["round_trips"] = plots.round_trip_cdfs(data.round_trips)
    busy = {site: steps for site, steps in data.busy.items() if steps.peak > 0}
    if busy and data.span_s is not None:
        out["utilization"] = plots.utilization(busy, data.span_s)
    if len(data.decision_s):
        out["decision_latency"] = plots.decision_latency(data.decision_s)
    return out


def write_report(
    run_dir: Path | str,
    out_dir: Path | str | None = None,
    clocks: Mapping[str, ClockSetting] | None = None,
) -> Path:
    """Write `report.html` and its PNGs into `out_dir` (default RUN_DIR/report).

    `clocks` ({site or `*`: setting}) corrects those sites' clocks otherwise than
    the run declared. Returns the page's path. Raises `RunNotFoundError` if
    `run_dir` has no journal.
    """
    run_dir = Path(run_dir)
    data = load_report_data(run_dir, clocks)
    out = Path(out_dir) if out_dir is not None else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    images = {name: plots.png_bytes(f) for name, f in figures(data).items()}
    for name in IMAGE_NAMES:  # drop a plot an earlier report of this run left
        path = out / f"{name}.png"
        if name in images:
            path.write_bytes(images[name])
        else:
            path.unlink(missing_ok=True)
    page = out / REPORT_NAME
    page.write_text(render(data, images), encoding="utf-8")
    return page
