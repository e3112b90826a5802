"""The report's clock section: each remote clock's offset, drift and segments."""

from __future__ import annotations

from html import escape

from colmena_fx.report.data import ReportData
from colmena_fx.report.html import empty
from colmena_fx.report.html import table


def clock_section(data: ReportData) -> str:
    out = ["<h2>Clock offsets</h2>"]
    if not data.offsets:
        out.append(empty("No remote clock was heard from (no task came back)."))
        return "\n".join(out)
    rows = [
        (
            escape(o.site),
            escape(o.host),
            escape(o.setting),
            f"{o.offset_s * 1e3:+.3f}",
            f"{o.uncertainty_s * 1e3:.3f}",
            f"{o.drift_ppm:+.2f} &plusmn; {o.drift_uncertainty_ppm:.2f}"
            if o.segments
            else "",
            str(len(o.segments)) if o.segments else "",
            str(o.samples),
            f"{o.min_delay_s * 1e3:.3f}",
            ("yes" if o.consistent else "no")
            + (": " + escape(o.note()) if o.note() else ""),
        )
        for o in data.offsets
    ]
    head = ("site", "host", "clocks", "offset ms", "&plusmn; ms", "drift ppm",
            "segments", "round trips", "least delay ms", "consistent")  # fmt: skip
    out.append(table(head, rows, {3, 4, 5, 6, 7, 8}))
    out.append(
        '<p class="caption">Offset is the remote clock minus the client&#39;s, at '
        "the clock's last round trip; drift is how fast it grows (ppm: microseconds "
        "per "
        "second). Each clock is a line between steps fit to every task's round "
        "trip, and every remote stamp in this report was corrected by the offset at "
        "its own time. The true offset lies within &plusmn; as long as the round "
        "trips' causal bounds hold; a path slower one way than the other shifts "
        "the estimate by half the difference, inside the &plusmn;. A clock declared "
        "synchronized is taken as zero &plusmn; its bound, unless its round trips "
        "contradict that.</p>"
    )
    segments = [
        (
            escape(o.site),
            escape(o.host),
            str(s.index),
            str(s.after_trips),
            f"{(s.start_ns - (data.header.start_ns or s.start_ns)) / 1e9:.2f}",
            str(s.trips),
            f"{s.offset_start_s * 1e3:+.3f} &plusmn; {s.uncertainty_start_s * 1e3:.3f}",
            f"{s.offset_end_s * 1e3:+.3f} &plusmn; {s.uncertainty_end_s * 1e3:.3f}",
            f"{s.drift_ppm:+.2f} &plusmn; {s.drift_uncertainty_ppm:.2f}",
            "" if s.step_s is None else f"{s.step_s * 1e3:+.3f}",
        )
        for o in data.offsets
        for s in o.segments
    ]
    if any(o.steps for o in data.offsets):
        out.append("<h3>Clock segments</h3>")
        head = ("site", "host", "segment", "after tasks", "at s", "round trips",
                "offset at start ms", "offset at end ms", "drift ppm",
                "step ms")  # fmt: skip
        out.append(table(head, segments, {2, 3, 4, 5, 6, 7, 8, 9}))
        out.append(
            '<p class="caption">A segment starts where a round trip fit no line '
            "of the one before: the clock stepped there. after tasks: round trips "
            "sent before the step; at: seconds since the run started; step: the "
            "jump from the previous segment's line.</p>"
        )
    return "\n".join(out)
