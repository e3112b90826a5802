"""Run the interleaved optimizer on a federation and report what happened.

`python -m examples.interleaved_optimizer.run` (or `make demo`) starts the sites of
the federation file, runs the thinker until the simulation budget is spent, stops
the sites, and then prints where each task's time went (from the run's journal,
complete only once the sites have stopped), the best point found, how busy the
simulation workers were, and where the run's files are. Run it from the repository
root: the sites' workers import the task functions from there. `--resume RUN_DIR`
goes on with a campaign whose client was stopped or killed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from colmena_fx.exceptions import ColmenaFXError
from colmena_fx.exceptions import RunDirectoryError
from colmena_fx.federation import Federation
from examples.interleaved_optimizer.functions import DEFAULT_COST_S
from examples.interleaved_optimizer.functions import DEFAULT_DIM
from examples.interleaved_optimizer.progress import make_reporter
from examples.interleaved_optimizer.report import HISTORY_NAME
from examples.interleaved_optimizer.report import print_report
from examples.interleaved_optimizer.report import write_history
from examples.interleaved_optimizer.thinker import SIM_TOPIC
from examples.interleaved_optimizer.thinker import InterleavedOptimizer
from examples.interleaved_optimizer.thinker import Settings

#: The campaign's settings, kept in its run directory for `--resume`.
SETTINGS_NAME = "optimizer-settings.json"


def workers_for(federation: Federation, method: str, topic: str) -> int:
    """How many tasks of `method` its sites run at once, as their site files say.

    The thinker keeps exactly that many simulations in flight. The engine block
    names it `max_workers_per_node` (GlobusComputeEngine, one node here) or
    `max_workers` (process and thread pools).
    """
    total = 0
    for site in federation.route(method).sites_for(topic):
        engine = federation.sites[site].engine or {}
        for key in ("max_workers_per_node", "max_workers"):
            value = engine.get(key)
            if isinstance(value, int) and value > 0:
                total += value
                break
        else:
            total += os.cpu_count() or 1
    return total


def _parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m examples.interleaved_optimizer.run",
        description="Minimize the Ackley function with a surrogate retrained on the "
        "training site while the simulation site stays busy.",
    )
    parser.add_argument(
        "--federation",
        type=Path,
        default=Path("endpoints/federation.yaml"),
        help="federation file (default: %(default)s)",
    )
    parser.add_argument(
        "--budget", type=int, default=defaults.budget,
        help="simulations to run (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--dim", type=int, default=DEFAULT_DIM,
        help="dimensions of the search space (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--cost", type=float, default=DEFAULT_COST_S,
        help="seconds each simulation takes (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--seed", type=int, default=defaults.seed,
        help="random seed of the thinker (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--run-dir", type=Path, default=None,
        help="parent of the run directory (default: the federation file's run_dir)",
    )  # fmt: skip
    parser.add_argument(
        "--quiet", action="store_true",
        help="no live display: a plain line every 10 simulations",
    )  # fmt: skip
    parser.add_argument(
        "--resume", type=Path, default=None, metavar="RUN_DIR",
        help="go on with the campaign of RUN_DIR, whose client stopped or was "
        "killed: with its settings, redoing no simulation that had finished",
    )  # fmt: skip
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.budget < 1:
        parser.error("--budget must be at least 1")
    if args.dim < 1:
        parser.error("--dim must be at least 1")
    if args.cost < 0:
        parser.error("--cost cannot be negative")


def _console() -> Console:
    """The terminal's own width; a width that fits the latency table elsewhere."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=max(console.width, 100))
    return console


def _configure_logging(console: Console, live: bool) -> None:
    """Warnings (failed tasks) on stderr, or above the live bar when there is one.

    Left alone when logging is already set up (by an application calling `main`, or
    by pytest): that configuration is not ours to replace.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler: logging.Handler
    if live:
        handler = RichHandler(console=console, show_path=False, show_time=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def _settings(args: argparse.Namespace, federation: Federation) -> Settings:
    """The options', or on `--resume` those the campaign started with."""
    if args.resume is not None:
        try:
            kept = json.loads((args.resume / SETTINGS_NAME).read_text())
        except (OSError, ValueError) as exc:
            raise RunDirectoryError(
                f"cannot resume {args.resume}: no campaign settings there ({exc}); "
                f"pass the run directory the campaign printed"
            ) from None
        return Settings(**kept)
    return Settings(
        budget=args.budget,
        dim=args.dim,
        cost_s=args.cost,
        seed=args.seed,
        sim_workers=workers_for(federation, "simulate", topic=SIM_TOPIC),
    )


def _campaign(
    args: argparse.Namespace, console: Console
) -> tuple[InterleavedOptimizer, Path]:
    """Start the sites, run the thinker to the end, stop the sites."""
    start = time.monotonic()
    federation = Federation.from_file(
        args.federation, run_dir=args.run_dir, resume=args.resume
    )
    settings = _settings(args, federation)
    doing = "Resuming" if args.resume else "Minimizing"
    console.print(
        f"{doing} Ackley in {settings.dim} dimensions: {settings.budget} "
        f"simulations of {settings.cost_s:g} s on {settings.sim_workers} workers, "
        f"surrogate retrained every {settings.retrain_every} results. Starting the "
        f"sites of {args.federation} ...",
        highlight=False,
    )
    with federation:
        assert federation.run_dir is not None
        console.print(
            f"Sites {', '.join(federation.sites)} up in "
            f"{time.monotonic() - start:.1f} s; run directory {federation.run_dir}",
            highlight=False,
            soft_wrap=True,
        )
        settings_file = federation.run_dir / SETTINGS_NAME
        if args.resume is None:
            settings_file.write_text(json.dumps(asdict(settings)))
        reporter = make_reporter(console, settings.budget, args.quiet, federation)
        thinker = InterleavedOptimizer(federation, settings, reporter.update)
        if args.resume is not None:
            thinker.resume_from(federation.resumed, federation.resumed_pending)
            console.print(
                f"Resumed: {thinker.finished} simulations were done, "
                f"{thinker.submitted - thinker.finished} come back from the sites "
                f"or are sent again",
                highlight=False,
            )
        with reporter:
            try:
                thinker.run()
            except KeyboardInterrupt:
                thinker.done.set()  # agents stop before the sites do
                raise
    assert federation.run_dir is not None
    return thinker, federation.run_dir


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    console = _console()
    _configure_logging(console, live=not args.quiet and console.is_terminal)
    start = time.monotonic()
    try:
        thinker, run_dir = _campaign(args, console)
    except ColmenaFXError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the sites were stopped", file=sys.stderr)
        return 130
    # The sites have stopped, so the journal is complete: now report from it.
    write_history(thinker, run_dir / HISTORY_NAME)
    print_report(console, thinker, run_dir, elapsed_s=time.monotonic() - start)
    # A failed simulation or two is reported, not fatal; finding nothing is.
    return 0 if thinker.ys else 1


if __name__ == "__main__":
    sys.exit(main())
