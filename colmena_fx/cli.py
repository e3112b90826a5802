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


def _endpoint_validate(args: argparse.Namespace) -> int:
    """Check site files by building their engines; one line per file."""
    from colmena_fx.sitefiles import validate_site_file

    failed = 0
    for path in args.site_files:
        try:
            print(f"OK    {validate_site_file(path).summary()}")
        except ColmenaFXError as exc:
            failed += 1
            print("FAIL  " + " | ".join(str(exc).splitlines()))
    return 2 if failed else 0


def _endpoint_render(args: argparse.Namespace) -> int:
    """Write a site's endpoint files and say how to install them on the cluster."""
    from colmena_fx.sitefiles import deployment_commands
    from colmena_fx.sitefiles import render_endpoint_files
    from colmena_fx.sitefiles import validate_site_file

    checked = validate_site_file(args.site_file)
    out_dir = args.out or Path(f"endpoint-{checked.site.name}")
    for path in render_endpoint_files(checked.site, out_dir):
        print(f"wrote {path}")
    if checked.placeholders:
        print(f"fill in first: {', '.join(checked.placeholders)} (then render again)")
    print(f"\nOn a {checked.site.name} login node, with globus-compute-endpoint:")
    for command in deployment_commands(checked.site, out_dir):
        print(f"  {command}")
    print(f"then set globus.endpoint_id in {args.site_file} to the id it prints.")
    return 0


def _endpoint_status(args: argparse.Namespace) -> int:
    """A globus site's endpoint status, as the Globus Compute service reports it."""
    import json

    from colmena_fx.config import load_site
    from colmena_fx.transports.globus_service import endpoint_id_of
    from colmena_fx.transports.globus_service import endpoint_status
    from colmena_fx.transports.globus_service import make_client

    site = load_site(args.site_file)
    endpoint_id = endpoint_id_of(site)
    status = endpoint_status(make_client(site.globus.service_url), endpoint_id)
    if args.json:
        print(json.dumps(status, indent=2, default=str))
        return 0
    print(f"{site.name}: endpoint {endpoint_id} is {status.get('status', 'unknown')}")
    for key, value in sorted((status.get("details") or {}).items()):
        print(f"  {key}: {value}")
    return 0 if status.get("status") == "online" else 1


def _login(args: argparse.Namespace) -> int:
    """Log in to Globus Compute with the SDK's own flow and token storage."""
    from colmena_fx.transports.globus_service import login

    print(login(force=args.force))
    return 0


def _endpoint_list(args: argparse.Namespace) -> int:
    """Table of a federation's sites and the methods routed to each."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from colmena_fx.sitefiles import federation_sites

    table = Table(title=f"Sites of {args.federation}", box=box.SIMPLE_HEAD)
    table.add_column("site", no_wrap=True)
    table.add_column("transport")
    table.add_column("endpoint id", no_wrap=True)
    table.add_column("engine", overflow="fold")
    table.add_column("methods", no_wrap=True)
    table.add_column("description", ratio=1)
    for row in federation_sites(args.federation):
        table.add_row(
            row.name,
            row.transport,
            row.endpoint_id or "-",
            row.engine or "-",
            ", ".join(row.methods) or "-",
            row.description,
        )
    Console().print(table)
    return 0


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

    validate = endpoint_commands.add_parser(
        "validate", help="check site files by building their engines (starts nothing)"
    )
    validate.add_argument("site_files", type=Path, nargs="+", metavar="FILE")
    validate.set_defaults(handler=_endpoint_validate)

    render = endpoint_commands.add_parser(
        "render", help="write a site's globus-compute-endpoint configuration files"
    )
    render.add_argument("site_file", type=Path, metavar="FILE")
    render.add_argument("--out", type=Path, help="default: endpoint-SITE")
    render.set_defaults(handler=_endpoint_render)

    listing = endpoint_commands.add_parser(
        "list", help="a federation's sites and the methods routed to each"
    )
    listing.add_argument(
        "federation", type=Path, nargs="?", default=Path("endpoints/federation.yaml")
    )
    listing.set_defaults(handler=_endpoint_list)

    status = endpoint_commands.add_parser(
        "status", help="a globus site's endpoint status, as the service reports it"
    )
    status.add_argument("site_file", type=Path, metavar="FILE")
    status.add_argument("--json", action="store_true", help="print the raw status")
    status.set_defaults(handler=_endpoint_status)

    login = commands.add_parser(
        "login", help="log in to Globus Compute; the SDK stores the tokens"
    )
    login.add_argument("--force", action="store_true", help="log in again anyway")
    login.set_defaults(handler=_login)

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
