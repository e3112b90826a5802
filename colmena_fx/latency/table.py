"""Terminal tables of task counts, per-hop latency, clock offsets, routing and the
fate of every task."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from colmena_fx.latency.clocks import ClockOffset
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.latency.routes import HealthRow
from colmena_fx.latency.routes import RoutingFacts
from colmena_fx.latency.routes import RoutingRow
from colmena_fx.latency.stats import HopStats
from colmena_fx.latency.stats import TaskCounts
from colmena_fx.latency.stats import summarize_hops
from colmena_fx.latency.stats import task_counts
from colmena_fx.latency.tasks import SiteTasks
from colmena_fx.latency.tasks import TaskFacts
from colmena_fx.latency.tasks import TaskRow
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
                format_ms(row.uncertainty_s) if row.uncertainty_s else "",
                end_section=i == len(rows) - 1,
            )
    table.caption = (
        "clocks declared synchronized: remote stamps taken as they are, +- the "
        "declared bound"
        if synchronized
        else "remote stamps corrected by each clock's offset at their time; +- is "
        "that correction's uncertainty (see the clock table)"
    )
    return table


def offsets_table(offsets: list[ClockOffset], title: str = "") -> Table:
    """Each remote clock's offset from the client's at its last round trip, its
    drift and steps, with their uncertainties."""
    table = Table(
        title=title or "Clock offsets (remote - client)", title_justify="left"
    )
    for column in ("site", "host", "clocks"):
        table.add_column(column, no_wrap=True)
    for column in ("offset ms", "+- ms", "drift ppm", "+- ppm", "segments",
                   "round trips", "least delay ms"):  # fmt: skip
        table.add_column(column, justify="right")
    table.add_column("note", overflow="fold")
    for row in offsets:
        estimated = bool(row.segments)
        table.add_row(
            Text(row.site),
            Text(row.host),
            row.setting,
            f"{row.offset_s * 1e3:+.3f}",
            f"{row.uncertainty_s * 1e3:.3f}",
            f"{row.drift_ppm:+.2f}" if estimated else "",
            f"{row.drift_uncertainty_ppm:.2f}" if estimated else "",
            str(len(row.segments)) if estimated else "",
            str(row.samples),
            f"{row.min_delay_s * 1e3:.3f}",
            Text(row.note()),
        )
    table.caption = (
        "offset and drift at the clock's last round trip; a new segment starts "
        "where the clock stepped. The offset lies within its +- if the round trips' "
        "bounds hold; a path slower one way than the other shifts it by half the "
        'difference, within the +- (README, "Clocks")'
    )
    return table


def run_tables(recorder: LatencyRecorder, title: str = "") -> list[Table]:
    """The latency table of a run, then its clock offsets when it has remote clocks.

    The counts and statistics share one correction of the clocks (`hops`).
    """
    corrected, hops = recorder.hops()
    tables = [
        latency_table(
            task_counts(corrected),
            summarize_hops(corrected, hops),
            title=title,
            synchronized=recorder.clocks.synchronized,
        )
    ]
    offsets = recorder.offsets()
    if offsets:
        tables.append(offsets_table(offsets))
    return tables


def routing_table(rows: list[RoutingRow], title: str = "") -> Table:
    """Per site and policy: attempts, resends, losses, successes, predictions."""
    table = Table(title=title or "Routing", title_justify="left")
    for column in ("site", "policy"):
        table.add_column(column, no_wrap=True)
    for column in ("sent", "resends", "lost", "tasks ok", "predicted ms",
                   "measured ms", "n"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in rows:
        compared = row.compared > 0
        table.add_row(
            row.site,
            row.policy,
            str(row.sent),
            str(row.resends),
            str(row.lost),
            str(row.succeeded),
            format_ms(row.predicted_median_s) if compared else "",
            format_ms(row.measured_median_s) if compared else "",
            str(row.compared) if compared else "",
        )
    table.caption = (
        "sent: attempts the policy sent there, resends among them; lost: attempts "
        "lost there and resent; tasks ok: tasks that finished there. fastest: "
        "median predicted time to the result and median measured round trip (sent "
        "to received) of its n successful tasks"
    )
    return table


def health_table(rows: list[HealthRow], title: str = "") -> Table:
    """Every change of a site's health, timed from the run's start."""
    table = Table(title=title or "Site health", title_justify="left")
    for column in ("site", "health"):
        table.add_column(column, no_wrap=True)
    for column in ("at s", "for s"):
        table.add_column(column, justify="right")
    table.add_column("reason", overflow="fold")
    for row in rows:
        table.add_row(
            row.site,
            row.health,
            f"{row.at_s:.2f}",
            _duration(row),
            Text(row.reason),  # as written: a path in brackets is no markup
        )
    table.caption = (
        "at: seconds since the run started; for: until the site's next change "
        "(>= until the journal's last line, for its last change)"
    )
    return table


def _duration(row: HealthRow) -> str:
    """A health row's duration; `>=` marks one cut short by the end of the run."""
    return f"{'>= ' if row.until_end else ''}{row.duration_s:.2f}"


def routing_tables(facts: RoutingFacts) -> list[Table]:
    """The routing and site-health tables of a run, each only when it has rows."""
    tables = []
    if facts.routing:
        tables.append(routing_table(facts.routing))
    if facts.health:
        tables.append(health_table(facts.health))
    return tables


#: Tasks listed by `undelivered_table`; the rest are counted in its caption.
LISTED = 20
#: How a task never sent to a site is shown in the site column.
NO_SITE = "(none)"


def site_tasks_table(rows: list[SiteTasks], title: str = "") -> Table:
    """Per site, every task of the run, delivered or not."""
    table = Table(title=title or "Tasks per site", title_justify="left")
    table.add_column("site", no_wrap=True)
    for column in ("submitted", "succeeded", "failed", "not delivered",
                   "unfinished"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            Text(row.site or NO_SITE),
            *(str(n) for n in (row.submitted, row.succeeded, row.failed,
                               row.not_delivered, row.unfinished)),
        )  # fmt: skip
    table.caption = (
        "submitted: tasks sent there at least once; the other columns count each "
        "task once, at the site of its last attempt. not delivered: completed, but "
        "the thinker never took the result"
    )
    return table


def undelivered_table(rows: list[TaskRow], title: str = "") -> Table:
    """The first `LISTED` tasks whose result never reached the thinker."""
    table = Table(
        title=title or f"Tasks not delivered ({len(rows)})", title_justify="left"
    )
    for column in ("task", "method", "site", "state", "last seen"):
        table.add_column(column, no_wrap=True)
    table.add_column("at s", justify="right")
    for row in rows[:LISTED]:
        table.add_row(
            Text(row.task_id),
            Text(row.method),
            Text(row.site or NO_SITE),
            row.state.value,
            row.last_event,
            f"{row.last_seen_s:.2f}",
        )
    caption = "last seen: the last event journaled about the task, at seconds "
    caption += "since the run started"
    if len(rows) > LISTED:
        caption = (
            f"and {len(rows) - LISTED} more: `summary --export` lists every task "
            f"in latency/tasks.csv. {caption[0].upper()}{caption[1:]}"
        )
    table.caption = caption
    return table


def task_tables(facts: TaskFacts) -> list[Table]:
    """Tasks per site and the undelivered ones, for a run that was interrupted:
    a task never reached the thinker, or the client was resumed."""
    if not facts.interrupted:
        return []
    tables = [site_tasks_table(facts.sites)]
    if facts.undelivered:
        tables.append(undelivered_table(facts.undelivered))
    return tables
