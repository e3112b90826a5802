"""The demo's progress: bar and site panel in one live display, or plain lines."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from colmena_fx.federation import Federation
from examples.interleaved_optimizer.progress import BarReporter
from examples.interleaved_optimizer.progress import LineReporter
from examples.interleaved_optimizer.progress import Snapshot
from examples.interleaved_optimizer.progress import make_reporter


def test_terminal_shows_bar_and_sites_together_with_logs_above(
    cpu_federation: Federation,
) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    reporter = make_reporter(console, budget=4, quiet=False, federation=cpu_federation)
    assert isinstance(reporter, BarReporter)
    logger = logging.getLogger("progress-test")
    handler = RichHandler(console=console, show_path=False, show_time=False)
    logger.addHandler(handler)
    try:
        with reporter:
            cpu_federation.submit("echo", 1)
            assert cpu_federation.get_result(timeout=60) is not None
            reporter.update(Snapshot(done=4, budget=4, best=0.5, retrains=1))
            logger.warning("simulation 3 diverged")
    finally:
        logger.removeHandler(handler)
    text = Text.from_ansi(out.getvalue()).plain
    assert "simulation 3 diverged" in text
    final = text[text.rindex("simulations") :]  # the last redraw, below the log
    assert "diverged" not in final
    assert "4/4" in final and "0.5000" in final
    assert "Sites" in final and "cpu" in final


@pytest.mark.parametrize(("terminal", "quiet"), [(False, False), (True, True)])
def test_lines_off_a_terminal_or_when_quiet(
    cpu_federation: Federation, terminal: bool, quiet: bool
) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal)
    reporter = make_reporter(console, budget=2, quiet=quiet, federation=cpu_federation)
    assert isinstance(reporter, LineReporter)
    with reporter:
        reporter.update(Snapshot(done=2, budget=2, best=1.0, retrains=0))
    assert out.getvalue() == "simulations 2/2, best 1.0000, retrains 0\n"
