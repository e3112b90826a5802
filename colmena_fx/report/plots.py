"""The report's figures, drawn with matplotlib's Agg canvas into PNG bytes.

Figures are built on `matplotlib.figure.Figure` with an explicit Agg canvas, never
through pyplot: no display is needed and no global figure state is shared with a
campaign that plots on its own.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from colmena_fx.report.data import Steps

WIDTH_IN = 10.0
DPI = 100
#: Above this many steps a utilization panel is drawn in `BINS` bins.
DENSE_STEPS = 1500
BINS = 400
#: A range wider than this (largest / smallest) is drawn on a log axis.
LOG_RANGE = 30.0


def png_bytes(figure: Figure) -> bytes:
    """The figure as a PNG."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _unit(largest_s: float) -> tuple[float, str]:
    """A scale and unit name that keep numbers readable: ms below 2 s."""
    return (1e3, "ms") if largest_s < 2.0 else (1.0, "s")


def duration(seconds: float) -> str:
    """`seconds` in ms below 2 s, else in s, to three significant digits."""
    scale, unit = _unit(seconds)
    return f"{seconds * scale:.3g} {unit}"


def _palette(name: str) -> list[tuple[float, ...]]:
    colormap = colormaps[name]
    return [tuple(colormap(i)) for i in range(colormap.N)]


def _colours(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """One colour per hop name, stable across sites (tab20, then tab20b)."""
    palette = [*_palette("tab20"), *_palette("tab20b")]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def _is_compute(hop: str) -> bool:
    return "compute" in hop.split("+")


def _stack(
    axes: Axes,
    medians: dict[str, list[tuple[str, float]]],
    colours: dict[str, tuple[float, ...]],
    keep: Callable[[str], bool],
) -> None:
    """One horizontal bar per site: its hops' medians end to end, total after."""
    sites = list(medians)
    totals = [sum(v for hop, v in medians[site] if keep(hop)) for site in sites]
    scale, unit = _unit(max(totals))
    for y, site in enumerate(sites):
        left = 0.0
        for hop, seconds in medians[site]:
            if keep(hop):
                axes.barh(y, seconds * scale, left=left, height=0.6,
                          color=colours[hop], label=hop, edgecolor="white",
                          linewidth=0.4)  # fmt: skip
                left += seconds * scale
        axes.annotate(f" {duration(left / scale)}", (left, y), va="center",
                      fontsize=9)  # fmt: skip
    axes.set_yticks(range(len(sites)), sites)
    axes.set_ylim(len(sites) - 0.5, -0.5)  # first site on top
    axes.set_xlim(0, max(max(totals) * scale * 1.15, 1e-9))
    axes.set_xlabel(f"median per hop, stacked ({unit})")
    axes.grid(axis="x", alpha=0.3)


def hop_bars(
    medians: dict[str, list[tuple[str, float]]], order: Sequence[str]
) -> Figure:
    """Per site, the median of each hop stacked in chain order.

    Compute usually dwarfs the rest, so a second panel stacks every hop but
    compute: the overhead the federation adds, at a scale where it can be read.
    """
    colours = _colours(order)
    overhead = any(_is_compute(hop) for hops in medians.values() for hop, _ in hops)
    panels = 2 if overhead else 1
    height = 1.3 + panels * (0.7 + 0.45 * len(medians))
    figure = Figure(figsize=(WIDTH_IN, height), layout="constrained")
    grid = figure.subplots(panels, 1, squeeze=False)[:, 0]
    _stack(grid[0], medians, colours, lambda hop: True)
    grid[0].set_title("All hops", fontsize=10, loc="left")
    if overhead:
        _stack(grid[1], medians, colours, lambda hop: not _is_compute(hop))
        grid[1].set_title("All hops but compute: the overhead", fontsize=10,
                          loc="left")  # fmt: skip
    figure.suptitle("Where a task's time goes, per site (successful tasks)")
    handles, labels = grid[0].get_legend_handles_labels()
    labelled = dict(zip(labels, handles, strict=True))
    names = [name for name in order if name in labelled]
    widest = max(len(name) for name in names)
    figure.legend(
        [labelled[name] for name in names], names, loc="outside lower center",
        ncol=max(1, min(5, 150 // (widest + 6))), fontsize=8, frameon=False,
    )  # fmt: skip
    return figure


def round_trip_cdfs(trips: dict[str, np.ndarray]) -> Figure:
    """Per site, the fraction of tasks whose round trip took at most x."""
    everything = np.concatenate(list(trips.values()))
    scale, unit = _unit(float(everything.max()))
    low = float(everything[everything > 0].min()) if (everything > 0).any() else 0.0
    figure = Figure(figsize=(WIDTH_IN, 4.2), layout="constrained")
    axes = figure.add_subplot()
    for site, seconds in trips.items():
        values = np.sort(seconds) * scale
        fractions = np.arange(1, len(values) + 1) / len(values)
        axes.step(
            np.r_[values[0], values], np.r_[0.0, fractions], where="post",
            label=f"{site} (n={len(values)}, median {duration(np.median(seconds))})",
        )  # fmt: skip
    if low > 0 and everything.max() / low > LOG_RANGE:
        axes.set_xscale("log")
    axes.set_ylim(0, 1.02)
    axes.set_xlabel(f"round trip, sent to received on the client ({unit})")
    axes.set_ylabel("fraction of tasks")
    axes.set_title("Round-trip latency per site (empirical CDF)")
    axes.grid(alpha=0.3, which="both")
    figure.legend(loc="outside lower center", ncol=min(3, len(trips)), fontsize=9,
                  frameon=False)  # fmt: skip
    return figure


def utilization(busy: dict[str, Steps], span_s: tuple[float, float]) -> Figure:
    """Per site, how many tasks were computing at each moment of the run.

    The axis spans the run's tasks (`span_s`), not the sites' start-up before them.
    """
    figure = Figure(figsize=(WIDTH_IN, 0.6 + 1.7 * len(busy)), layout="constrained")
    panels = figure.subplots(len(busy), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (site, steps) in zip(panels, busy.items(), strict=True):
        title = f"{site}: peak {steps.peak}, mean {_mean(steps.mean())} tasks computing"
        if len(steps.times_s) > DENSE_STEPS:  # more steps than pixels: bin them
            edges, mean, peak = steps.binned(BINS)
            axes.stairs(peak, edges, fill=True, alpha=0.3, color="tab:blue")
            axes.stairs(mean, edges, color="tab:blue")
            title += f" (per {duration(edges[1] - edges[0])}: mean line, peak shaded)"
        else:
            axes.step(steps.times_s, steps.values, where="post", color="tab:blue")
            axes.fill_between(steps.times_s, steps.values, step="post", alpha=0.3)
        axes.set_title(title, fontsize=10, loc="left")
        axes.set_ylim(0, max(steps.peak, 1) * 1.15)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("tasks")
        axes.grid(alpha=0.3)
    panels[0].set_xlim(*span_s)
    panels[-1].set_xlabel("seconds since the run started (client clock)")
    figure.suptitle("Worker utilization: tasks between compute_started and ended")
    return figure


def _mean(value: float) -> str:
    return f"{value:.2f}" if value >= 0.01 or value == 0 else "< 0.01"


def decision_latency(seconds: np.ndarray) -> Figure:
    """Histogram of result-delivered to next-task-created times, median marked."""
    scale, unit = _unit(float(seconds.max()))
    values = seconds * scale
    low, high = float(values.min()), float(values.max())
    figure = Figure(figsize=(WIDTH_IN, 3.6), layout="constrained")
    axes = figure.add_subplot()
    if low > 0 and high / low > LOG_RANGE:
        bins = np.geomspace(low, high, 40)
        axes.set_xscale("log")
    else:
        bins = np.linspace(low, max(high, low + 1e-9), 40)
    axes.hist(values, bins=bins.tolist(), color="tab:purple", alpha=0.8)
    median = float(np.median(seconds))
    axes.axvline(median * scale, color="black", linestyle="--", linewidth=1,
                 label=f"median {duration(median)} (n={len(values)})")  # fmt: skip
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(f"result delivered to next task created ({unit})")
    axes.set_ylabel("results")
    axes.set_title("Thinker decision latency")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize=9)
    return figure
