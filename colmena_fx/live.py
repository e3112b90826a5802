"""A live panel of a running campaign: per site, what is in flight, done and how fast.

It reads only what the federation already keeps (`in_flight`, `latency.activity`),
so drawing it costs the campaign a lock or two per refresh. Rich's `Live` redraws
it on its own thread; off a terminal (a log file, CI, a pipe) a redrawn panel is
noise, so the view then writes nothing at all.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Console
from rich.console import Group
from rich.console import RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from colmena_fx.exceptions import UsageError
from colmena_fx.latency.recorder import ROLLING
from colmena_fx.units import format_ms

if TYPE_CHECKING:
    from colmena_fx.federation import Federation
    from colmena_fx.transports.health import HealthChange


def site_table(federation: Federation) -> Table:
    """One row per site of the federation, including sites with nothing done yet."""
    in_flight = Counter(result.site or "?" for result in federation.in_flight())
    # Read the recorder at each call: `Federation.start` replaces it.
    activity = {row.site: row for row in federation.latency.activity()}
    table = Table(title="Sites", title_justify="left")
    for column in ("site", "transport"):
        table.add_column(column, no_wrap=True)
    table.add_column("health", max_width=48, overflow="fold")
    for column in ("in flight", "done", "failed", "rtt p50 ms", "rtt p95 ms"):
        table.add_column(column, justify="right", no_wrap=True)
    transports = {name: site.transport for name, site in federation.sites.items()}
    health = {name: _health(change) for name, change in federation.health().items()}
    # Sites the federation does not name (a task without one) still show up.
    others = (set(activity) | set(in_flight)) - set(transports)
    names = [*transports, *sorted(others)]
    for name in names:
        row = activity.get(name)
        table.add_row(
            name,
            transports.get(name, "-"),
            health.get(name, "-"),
            str(in_flight.get(name, 0)),
            str(row.done) if row else "0",
            str(row.failed) if row else "0",
            format_ms(row.round_trip_p50_s if row else None),
            format_ms(row.round_trip_p95_s if row else None),
        )
    table.caption = f"round trips: rolling over the last {ROLLING} per site"
    return table


_HEALTH_STYLE = {"up": "green", "degraded": "yellow", "recovering": "yellow"}


def _health(change: HealthChange) -> str:
    """`lost 12 s: the endpoint exited` in the site's colour."""
    style = _HEALTH_STYLE.get(change.health.value, "red")
    text = change.health.value
    if change.health.value != "up":
        text += f" {time.time() - change.since:.0f} s"
        if change.reason:
            text += f": {change.reason}"
    return f"[{style}]{escape(text)}[/]"


class _SitePanel:
    """Rebuilt each time Live draws it, so the auto-refresh shows fresh figures."""

    def __init__(self, federation: Federation) -> None:
        self._federation = federation

    def __rich__(self) -> Table:
        return site_table(self._federation)


class LiveView:
    """The site panel, redrawn about every `refresh_s` while the block runs.

    `extra` (a `Progress` built with `auto_refresh=False`, say) is drawn above the
    panel in the same display: rich allows one live display per console at a time.
    Log through a `RichHandler` on the same console to print above it.
    """

    def __init__(
        self,
        federation: Federation,
        console: Console | None = None,
        refresh_s: float = 1.0,
        extra: RenderableType | None = None,
    ) -> None:
        if refresh_s <= 0:
            raise UsageError(f"refresh_s must be positive, not {refresh_s}")
        self.federation = federation
        self.console = console or Console()
        self.refresh_s = refresh_s
        self.extra = extra
        self._live: Live | None = None
        self._entered = False

    @property
    def active(self) -> bool:
        """Whether the panel is on screen (never off a terminal)."""
        return self._live is not None

    def renderable(self) -> RenderableType:
        panel = _SitePanel(self.federation)
        return panel if self.extra is None else Group(self.extra, panel)

    def __enter__(self) -> LiveView:
        if self._entered:
            raise UsageError("a LiveView is entered once")
        self._entered = True
        if self.console.is_terminal:
            live = Live(
                self.renderable(),
                console=self.console,
                refresh_per_second=1 / self.refresh_s,
            )
            live.start(refresh=True)
            self._live = live
        return self

    def __exit__(self, *exc: object) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()  # a last redraw with the final figures, then the cursor back
