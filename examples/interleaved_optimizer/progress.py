"""How the campaign shows its progress: a live display on a terminal, lines elsewhere.

A campaign runs for a while with nothing else to look at, so on a terminal it keeps
one live bar (simulations done, best value, retrainings) above the federation's
site panel (`colmena_fx.live`: tasks in flight, done, failed, round trips per
site). In a log file, a CI job or under `--quiet`, a redrawn display is noise, so
the same facts come out as one plain line every few simulations. The thinker calls
`update` from its own threads; both reporters are safe to call from any thread.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TaskID
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn

from colmena_fx.live import LiveView

if TYPE_CHECKING:
    from colmena_fx.federation import Federation


@dataclass(frozen=True)
class Snapshot:
    """The state of the campaign that a reader cares about, at one moment."""

    done: int
    budget: int
    best: float
    retrains: int
    failed: int = 0


def _best(value: float) -> str:
    return "-" if math.isinf(value) else f"{value:.4f}"


class Reporter(Protocol):
    def __enter__(self) -> Reporter: ...
    def __exit__(self, *exc: object) -> None: ...
    def update(self, snapshot: Snapshot) -> None: ...


class LineReporter:
    """Prints one line every `every` simulations, and one for the last."""

    def __init__(self, console: Console, every: int = 10) -> None:
        self.console = console
        self.every = every
        self._printed = 0
        self._lock = threading.Lock()

    def __enter__(self) -> LineReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, snapshot: Snapshot) -> None:
        with self._lock:
            due = snapshot.done >= self._printed + self.every
            last = snapshot.done >= snapshot.budget > self._printed
            if not (due or last):
                return
            self._printed = snapshot.done
        failed = f", {snapshot.failed} failed" if snapshot.failed else ""
        self.console.print(
            f"simulations {snapshot.done}/{snapshot.budget}{failed}, "
            f"best {_best(snapshot.best)}, retrains {snapshot.retrains}",
            highlight=False,
        )


class BarReporter:
    """A progress bar and the site panel, redrawn in place on a terminal.

    Rich draws one live display per console, so the bar has none of its own
    (`auto_refresh=False`, never started): the `LiveView` draws it with the panel.
    """

    def __init__(self, console: Console, budget: int, federation: Federation) -> None:
        self._progress = Progress(
            TextColumn("simulations"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("best [bold]{task.fields[best]}[/]"),
            TextColumn("retrains {task.fields[retrains]}"),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=False,
        )
        self._task: TaskID = self._progress.add_task(
            "simulations", total=budget, best="-", retrains=0, failed=""
        )
        self._view = LiveView(federation, console, extra=self._progress)

    def __enter__(self) -> BarReporter:
        self._view.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._view.__exit__(*exc)

    def update(self, snapshot: Snapshot) -> None:
        self._progress.update(
            self._task,
            completed=snapshot.done,
            best=_best(snapshot.best),
            retrains=snapshot.retrains,
            failed=f"{snapshot.failed} failed" if snapshot.failed else "",
        )


def make_reporter(
    console: Console, budget: int, quiet: bool, federation: Federation
) -> Reporter:
    """A live display on an interactive terminal unless `quiet`; lines otherwise."""
    if quiet or not console.is_terminal:
        return LineReporter(console)
    return BarReporter(console, budget, federation)
