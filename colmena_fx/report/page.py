"""The report's single HTML page: inline CSS, images inline as base64 PNG.

One file that opens anywhere (mailed, attached to an issue, on a cluster's login
node) with no scripts and nothing fetched from elsewhere.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from html import escape

import numpy as np

from colmena_fx.latency.lifecycle import ending_sentence
from colmena_fx.latency.lifecycle import resume_sentence
from colmena_fx.latency.stats import HopStats
from colmena_fx.report.clocksection import clock_section
from colmena_fx.report.data import ReportData
from colmena_fx.report.html import empty
from colmena_fx.report.html import table
from colmena_fx.units import format_ms

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1050px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #eee; text-align: left; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.group td { border-top: 2px solid #ccc; }
img { max-width: 100%; height: auto; display: block; margin: 0.8em 0; }
p.note, .caption { color: #555; font-size: 0.9em; }
.empty { background: #fff6e0; border: 1px solid #f0d58a; padding: 0.6em 1em; }
"""

#: Tasks listed in the Tasks section; the rest are counted below the list.
LISTED = 100

#: Image name (`hops`, `round_trips`, `utilization`, `decision_latency`) -> PNG.
Images = dict[str, bytes]


def _image(images: Images, name: str, alt: str) -> str:
    data = base64.b64encode(images[name]).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def _header(data: ReportData) -> str:
    head = data.header
    title = f"Run {head.run_name}"
    lines = [
        f"<h1>{escape(title)}</h1>",
        f"<p>Federation <b>{escape(head.federation)}</b>, client host "
        f"{escape(head.client_host)}, clocks: {escape(head.clocks)}.</p>",
    ]
    if head.start_ns is not None:
        start = datetime.datetime.fromtimestamp(head.start_ns / 1e9, datetime.UTC)
        lines.append(f"<p>Started {start:%Y-%m-%d %H:%M:%S} UTC.")
    else:
        lines.append(
            "<p>This journal has no run line (an older run): times count from the "
            "first stamp, and the federation and transports are unknown."
        )
    if data.span_s is not None:
        first, last = data.span_s
        lines.append(
            f" Tasks from {first:.2f} s to {last:.2f} s after the start: "
            f"{last - first:.2f} s from the first stamp to the last.</p>"
        )
    else:
        lines.append("</p>")
    rows = [
        (escape(s.site), escape(s.transport), str(s.succeeded), str(s.failed))
        for s in data.sites
    ]
    lines.append(table(("site", "transport", "tasks ok", "failed"), rows, {2, 3}))
    life = data.task_facts.lifecycle
    resumed = len(life.resumes)
    if resumed:
        times = "once" if resumed == 1 else f"{resumed} times"
        lines.append(f"<p>The run was resumed {times} (see Tasks).</p>")
    lines.append(f"<p>{escape(ending_sentence(life))}</p>")
    if data.tasks == 0:
        lines.append(empty("This run finished no tasks: nothing to plot."))
    elif data.succeeded == 0:
        lines.append(empty(
            "Every task of this run failed: hop latencies and round trips cover "
            "successful tasks only, so those sections are empty."
        ))  # fmt: skip
    return "\n".join(lines)


def _tasks(data: ReportData) -> str:
    """Every task per site, the resumes, and the tasks the thinker never got; only
    for a run with one of those (latency sections count delivered tasks alone)."""
    facts = data.task_facts
    if not facts.interrupted:
        return ""
    out = ["<h2>Tasks</h2>"]
    rows = [
        (escape(r.site or "(none)"), str(r.submitted), str(r.succeeded),
         str(r.failed), str(r.not_delivered), str(r.unfinished))
        for r in facts.sites
    ]  # fmt: skip
    head = ("site", "submitted", "succeeded", "failed", "not delivered",
            "unfinished")  # fmt: skip
    out.append(table(head, rows, {1, 2, 3, 4, 5}))
    out.append(
        '<p class="caption">Every task of the run, whether or not its result '
        "reached the thinker. Submitted counts the tasks sent to a site at least "
        "once; the other columns count each task once, at the site of its last "
        "attempt. Not delivered: the task completed, but the thinker never took its "
        "result; unfinished: sent and never completed.</p>"
    )
    for resume in facts.lifecycle.resumes:
        out.append(f"<p>{escape(resume_sentence(resume))}</p>")
    undelivered = facts.undelivered
    if undelivered:
        count = len(undelivered)
        plural = "s" if count != 1 else ""
        out.append(f"<p>{count} task{plural} never reached the thinker:</p>")
        listed = [
            (escape(r.task_id), escape(r.method), escape(r.site or "(none)"),
             escape(r.state.value), escape(r.last_event), f"{r.last_seen_s:.2f}",
             "yes" if r.resumed_after else "")
            for r in undelivered[:LISTED]
        ]  # fmt: skip
        columns = ("task", "method", "site", "state", "last seen", "at s",
                   "sent after a resume")  # fmt: skip
        out.append(table(columns, listed, {5}))
        if len(undelivered) > LISTED:
            out.append(
                f'<p class="note">and {len(undelivered) - LISTED} more: '
                "<code>colmena-fx summary --export</code> lists every task in "
                "latency/tasks.csv.</p>"
            )
        out.append(
            '<p class="caption">Last seen is the last event journaled about the '
            "task, at seconds since the run started.</p>"
        )
    return "\n".join(out)


def _hops(data: ReportData, images: Images) -> str:
    out = ["<h2>Where the time goes</h2>"]
    if "hops" not in images:
        return out[0] + empty("No successful tasks: no hops to show.")
    out.append(_image(images, "hops", "median of each hop per site, stacked"))
    out.append(
        '<p class="caption">Each bar stacks the median of every hop of a site\'s '
        "successful tasks in the order a task meets them, client to worker and back "
        "(a sum of medians, so not exactly the median total). Hops joined by + span "
        "stamps the transport cannot see (Globus Compute hides the endpoint's).</p>"
    )
    by_group: dict[tuple[str, str], list[HopStats]] = {}
    for stat in data.hop_stats:
        by_group.setdefault((stat.site, stat.method), []).append(stat)
    rows: list[Sequence[str | None]] = []
    for count in data.method_counts:
        group = (escape(count.site), escape(count.method),
                 f"{count.succeeded}/{count.failed}")  # fmt: skip
        stats = by_group.get((count.site, count.method), [])
        if not stats:  # failed tasks only: their hops stop short
            rows.append((None, *group, "-", "0", "-", "-", "-", ""))
        for i, stat in enumerate(stats):
            cells = (
                *(group if i == 0 else ("", "", "")),
                escape(stat.hop),
                str(stat.count),
                format_ms(stat.median_s),
                format_ms(stat.p95_s),
                format_ms(stat.p99_s),
                format_ms(stat.uncertainty_s) if stat.uncertainty_s else "",
            )
            rows.append((None, *cells) if i == 0 else cells)
    head = ("site", "method", "ok/failed", "hop", "n", "median ms", "p95 ms",
            "p99 ms", "&plusmn; ms")  # fmt: skip
    out.append(table(head, rows, {4, 5, 6, 7, 8}))
    out.append(
        '<p class="caption">'
        + (
            "Clocks declared synchronized: remote stamps taken as they are, "
            "&plusmn; the declared bound."
            if data.synchronized
            else "Remote stamps corrected by each clock's estimated offset at their "
            "own time; &plusmn; is that correction's uncertainty: for hops between "
            "two clocks, both clocks' offsets; within a remote clock, its rate's."
        )
        + " round_trip is sent to received, total is created to delivered, both on "
        "the client's clock. input_put, input_data, result_put and result_data time "
        "values sent by reference (written to and read from a data store), each on "
        "the clock of the host that moved them; they lie inside the hops above.</p>"
    )
    return "\n".join(out)


def _round_trips(images: Images) -> str:
    out = "<h2>Round-trip latency</h2>"
    if "round_trips" not in images:
        return out + empty("No successful tasks: no round trips.")
    return (
        out
        + _image(images, "round_trips", "round-trip CDF per site")
        + (
            '<p class="caption">The fraction of a site\'s successful tasks whose round '
            "trip (sent to received, client clock) took at most x; the x axis is "
            "logarithmic when the times span a wide range.</p>"
        )
    )


def _utilization(images: Images) -> str:
    out = "<h2>Worker utilization</h2>"
    if "utilization" not in images:
        return out + empty("No task reported compute_started and compute_ended.")
    return (
        out
        + _image(images, "utilization", "tasks computing per site")
        + (
            '<p class="caption">How many of each site\'s tasks were inside the user '
            "function at each moment (compute_started to compute_ended, moved onto the "
            "client's clock), from the first task created to the last stamp. Gaps "
            "are workers waiting for work.</p>"
        )
    )


def _decisions(data: ReportData, images: Images) -> str:
    out = ["<h2>Thinker decision latency</h2>"]
    if "decision_latency" not in images:
        out.append(empty("No task was created after a result was delivered."))
    else:
        out.append(_image(images, "decision_latency", "decision latency histogram"))
        median = float(np.median(data.decision_s))
        out.append(f"<p>Median: <b>{format_ms(median)} ms</b> over "
                   f"{len(data.decision_s)} results.</p>")  # fmt: skip
    out.append(
        '<p class="caption">For each result handed to the thinker (its '
        "<code>delivered</code> stamp), the time until the next task of any method "
        "was created: how fast the thinker turns results into new work. Tasks "
        "submitted for other reasons shorten it, and results delivered after the "
        "last submission are left out.</p>"
    )
    return "\n".join(out)


def _routing(data: ReportData) -> str:
    """Per site and policy, where tasks went; empty for journals without policies."""
    rows = data.routing.routing
    if not rows:
        return ""
    cells = [
        (
            escape(r.site),
            escape(r.policy),
            str(r.sent),
            str(r.resends),
            str(r.lost),
            str(r.succeeded),
            format_ms(r.predicted_median_s) if r.compared else "",
            format_ms(r.measured_median_s) if r.compared else "",
            str(r.compared) if r.compared else "",
        )
        for r in rows
    ]
    head = ("site", "policy", "sent", "resends", "lost", "tasks ok",
            "predicted ms", "measured ms", "n")  # fmt: skip
    return "\n".join((
        "<h2>Routing</h2>",
        table(head, cells, {2, 3, 4, 5, 6, 7, 8}),
        '<p class="caption">Sent counts the attempts each routing policy sent to a '
        "site (one per <code>submitted</code> line), resends the attempts among them "
        "that repeat a task lost elsewhere or there; lost counts the attempts lost at "
        "the site and resent. Tasks ok are the tasks whose last attempt finished "
        "there successfully. For <code>fastest</code>, predicted is the median time "
        "to the result it predicted when it chose the site, measured the median "
        "round trip (sent to received, client clock) of the same n tasks: how well "
        "the predictor did.</p>",
    ))  # fmt: skip


def _health(data: ReportData) -> str:
    """Every change of a site's health; empty for journals without health lines."""
    rows = data.routing.health
    if not rows:
        return ""
    cells = [
        (
            escape(r.site),
            escape(r.health),
            f"{r.at_s:.2f}",
            f"{'&ge; ' if r.until_end else ''}{r.duration_s:.2f}",
            escape(r.reason),
        )
        for r in rows
    ]
    head = ("site", "health", "at s", "for s", "reason")
    return "\n".join((
        "<h2>Site health</h2>",
        table(head, cells, {2, 3}),
        '<p class="caption">Each change of a site\'s health (up, degraded, lost, '
        "recovering), in seconds since the run started, and how long the site "
        "stayed so until its next change; &ge; marks a site's last change, timed "
        "to the journal's last line. Lost and recovering sites get no new work.</p>",
    ))  # fmt: skip


def render(data: ReportData, images: Images) -> str:
    """The whole page; `images` holds the PNGs of the sections that have data."""
    body = "\n".join(
        section
        for section in (
            _header(data),
            _tasks(data),
            _hops(data, images),
            _round_trips(images),
            _utilization(images),
            _routing(data),
            _health(data),
            _decisions(data, images),
            clock_section(data),
        )
        if section  # a journal without routing, health or lost tasks: none such
    )
    title = escape(f"colmena-fx report: {data.header.run_name}")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
