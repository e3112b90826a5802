"""`colmena-fx`: thin commands over the library; each returns an exit status."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from colmena_fx.exceptions import ColmenaFXError


def _endpoint_start(args: argparse.Namespace) -> int:
    """Run one site's endpoint in the foreground until interrupted."""
    from colmena_fx.endpoint.__main__ import main as endpoint_main

    run_dir = args.run_dir or Path("runs") / "endpoints" / Path(args.site_file).stem
    argv = [
        str(args.site_file),
        "--run-dir",
        str(run_dir),
        "--log-level",
        args.log_level,
    ]
    return endpoint_main(argv)


def _summary(args: argparse.Namespace) -> int:
    """Print task counts and per-hop latency of a finished run from its journal."""
    from rich.console import Console

    from colmena_fx.journal import JOURNAL_NAME
    from colmena_fx.journal import final_records
    from colmena_fx.latency.stats import summarize
    from colmena_fx.latency.table import latency_table

    if not (args.run_dir / JOURNAL_NAME).exists():
        print(f"error: {args.run_dir} has no {JOURNAL_NAME}; pass a run directory",
              file=sys.stderr)  # fmt: skip
        return 2
    records = final_records(args.run_dir)
    Console().print(latency_table(*summarize(records), title=f"Run {args.run_dir}"))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="colmena-fx", description="Federated steering of AI-in-the-loop campaigns."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    endpoint = commands.add_parser("endpoint", help="run and inspect site endpoints")
    endpoint_commands = endpoint.add_subparsers(dest="endpoint_command", required=True)
    start = endpoint_commands.add_parser(
        "start", help="run a local site's endpoint in the foreground"
    )
    start.add_argument("site_file", type=Path, help="e.g. endpoints/local-cpu.yaml")
    start.add_argument("--run-dir", type=Path, help="default: runs/endpoints/SITE")
    start.add_argument("--log-level", default="INFO")
    start.set_defaults(handler=_endpoint_start)

    summary = commands.add_parser("summary", help="per-hop latency table of a run")
    summary.add_argument("run_dir", type=Path)
    summary.set_defaults(handler=_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ColmenaFXError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
