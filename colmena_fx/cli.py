"""`colmena-fx`: thin commands over the library; each returns an exit status."""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from colmena_fx import __version__
from colmena_fx.exceptions import ColmenaFXError
from colmena_fx.exceptions import UsageError


def _size(option: str, text: str) -> int:
    """`text` as bytes, or a UsageError that names the option it was given to."""
    from colmena_fx.units import parse_size

    try:
        return parse_size(text)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}") from None


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


def _data_check(args: argparse.Namespace) -> int:
    """Round-trip a test value through each data store; show each method's store."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from colmena_fx.config import load_federation
    from colmena_fx.data.check import check_stores
    from colmena_fx.data.check import data_routes

    size = _size("--size", args.size)  # a typo fails even with no store to check
    config, _ = load_federation(args.federation)
    assert config.source is not None
    console = Console()
    if not config.data.stores:
        console.print(f"{args.federation} declares no data stores (key 'data.stores')")
        return 0
    checks = check_stores(config, config.source.parent, size)
    stores = Table(title=f"Data stores, from this host ({args.size} test value)",
                   box=box.SIMPLE_HEAD)  # fmt: skip
    for column in ("store", "type", "reached by", "put ms", "get ms", "result"):
        stores.add_column(column, overflow="fold")
    for check in checks:
        times = [f"{t * 1e3:.1f}" if t is not None else "-"
                 for t in (check.put_s, check.get_s)]  # fmt: skip
        result = "[green]ok[/]" if check.ok else f"[red]{check.error}[/]"
        stores.add_row(check.store, check.kind, check.sites, *times, result)
    console.print(stores)
    routes = Table(title="Where each method's large values go", box=box.SIMPLE_HEAD)
    for column in ("method", "site", "store", "from", "lifetime"):
        routes.add_column(column)
    for route in data_routes(config):
        store = route.store or "[yellow]none: inline, within the limits[/]"
        routes.add_row(route.method, route.site, store, route.threshold, route.lifetime)
    console.print(routes)
    return 0 if all(check.ok for check in checks) else 1


def _summary(args: argparse.Namespace) -> int:
    """Print task counts, per-hop latency and clock offsets of a finished run."""
    from rich.console import Console

    from colmena_fx.journal import JOURNAL_NAME
    from colmena_fx.latency.export import export
    from colmena_fx.latency.recorder import LatencyRecorder
    from colmena_fx.latency.table import run_tables

    if not (args.run_dir / JOURNAL_NAME).exists():
        print(f"error: {args.run_dir} has no {JOURNAL_NAME}; pass a run directory",
              file=sys.stderr)  # fmt: skip
        return 2
    recorder = LatencyRecorder.from_run(args.run_dir)
    console = Console()
    for table in run_tables(recorder, title=f"Run {args.run_dir}"):
        console.print(table)
    if args.export:
        for path in export(recorder, args.run_dir / "latency"):
            console.print(f"wrote {path}", highlight=False)
    return 0


def _report(args: argparse.Namespace) -> int:
    """Write a run's HTML report (plots embedded, PNGs beside it)."""
    from colmena_fx.report import write_report

    print(f"wrote {write_report(args.run_dir, args.out)}")
    return 0


def _probe(args: argparse.Namespace) -> int:
    """Measure every site with echo tasks and print them side by side."""
    import json

    from rich.console import Console

    from colmena_fx.latency.table import offsets_table
    from colmena_fx.probe import DEFAULT_SIZES
    from colmena_fx.probe import probe_federation
    from colmena_fx.probe import probe_tables

    sizes = (
        [_size("--sizes", text) for text in args.sizes.split(",")]
        if args.sizes
        else list(DEFAULT_SIZES)
    )
    console = Console(stderr=args.json)  # with --json, stdout holds the JSON alone
    report = probe_federation(
        args.federation,
        sizes=sizes,
        repeats=args.repeats,
        modes=args.modes.split(","),
        sites=args.sites.split(",") if args.sites else None,
        run_dir=args.run_dir,
        timeout_s=args.timeout,
        on_progress=lambda line: console.print(line, highlight=False),
        live=console,
    )
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        for table in probe_tables(report):
            console.print(table)
        if report.offsets:
            console.print(offsets_table(report.offsets))
        console.print(
            f"Timelines in {report.run_dir} (journal.jsonl; latency/*.csv, *.parquet)",
            highlight=False,
        )
    for site, why in report.unreachable.items():
        console.print(f"[red]site {site} did not answer:[/] {why}", highlight=False)
    return 1 if report.unreachable else 0


def _parser() -> argparse.ArgumentParser:
    """Every command, with a description and help for each argument (`--help`)."""
    parser = argparse.ArgumentParser(
        prog="colmena-fx",
        description="Federated steering of AI-in-the-loop campaigns: run and inspect "
        "the sites of a federation, and measure and report on its runs.",
    )
    parser.add_argument(
        "--version", action="version", version=f"colmena-fx {__version__}",
        help="print the version and exit",
    )  # fmt: skip
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="one of:"
    )

    endpoint = commands.add_parser(
        "endpoint", help="run and inspect site endpoints",
        description="Run a local site's endpoint, check and render site files, list "
        "a federation's sites, and ask the service about a globus site.",
    )  # fmt: skip
    endpoint_commands = endpoint.add_subparsers(
        dest="endpoint_command", required=True, metavar="COMMAND", help="one of:"
    )
    start = endpoint_commands.add_parser(
        "start", help="run a local site's endpoint in the foreground",
        description="Run one site's endpoint in the foreground until interrupted; "
        "it writes connection.json (mode 0600) in its run directory.",
    )  # fmt: skip
    start.add_argument(
        "site_file", type=Path, metavar="SITE_FILE",
        help="the site file, e.g. endpoints/local-cpu.yaml",
    )  # fmt: skip
    start.add_argument(
        "--run-dir", type=Path, help="default: runs/endpoints/SITE (the file's stem)"
    )
    start.add_argument(
        "--log-level", default="INFO",
        help="DEBUG, INFO, WARNING or ERROR (default: %(default)s)",
    )  # fmt: skip
    start.set_defaults(handler=_endpoint_start)

    validate = endpoint_commands.add_parser(
        "validate", help="check site files by building their engines (starts nothing)",
        description="Check site files by building their engines as the endpoint "
        "would, without starting anything; one OK or FAIL line per file.",
    )  # fmt: skip
    validate.add_argument(
        "site_files", type=Path, nargs="+", metavar="SITE_FILE",
        help="site files, e.g. endpoints/*.yaml (not the federation file)",
    )  # fmt: skip
    validate.set_defaults(handler=_endpoint_validate)

    render = endpoint_commands.add_parser(
        "render", help="write a site's globus-compute-endpoint configuration files",
        description="Write the configuration files of a site's Globus Compute "
        "endpoint and print the commands that install them on the cluster.",
    )  # fmt: skip
    render.add_argument(
        "site_file", type=Path, metavar="SITE_FILE", help="the site file to render"
    )
    render.add_argument("--out", type=Path, help="default: endpoint-SITE")
    render.set_defaults(handler=_endpoint_render)

    listing = endpoint_commands.add_parser(
        "list", help="a federation's sites and the methods routed to each",
        description="Table of a federation's sites: transport, endpoint id, engine, "
        "and the methods routed to each.",
    )  # fmt: skip
    listing.add_argument(
        "federation", type=Path, nargs="?", default=Path("endpoints/federation.yaml"),
        metavar="FEDERATION_FILE", help="default: %(default)s",
    )  # fmt: skip
    listing.set_defaults(handler=_endpoint_list)

    status = endpoint_commands.add_parser(
        "status", help="a globus site's endpoint status, as the service reports it",
        description="Ask the Globus Compute service for a globus site's endpoint "
        "status; exit status 1 unless it is online.",
    )  # fmt: skip
    status.add_argument(
        "site_file", type=Path, metavar="SITE_FILE",
        help="a site file with transport: globus and its globus.endpoint_id",
    )  # fmt: skip
    status.add_argument("--json", action="store_true", help="print the raw status")
    status.set_defaults(handler=_endpoint_status)

    login = commands.add_parser(
        "login", help="log in to Globus Compute; the SDK stores the tokens",
        description="Log in to Globus Compute with the SDK's own flow (in a "
        "terminal); a client identity from GLOBUS_COMPUTE_CLIENT_ID and "
        "GLOBUS_COMPUTE_CLIENT_SECRET needs no login.",
    )  # fmt: skip
    login.add_argument("--force", action="store_true", help="log in again anyway")
    login.set_defaults(handler=_login)

    probe = commands.add_parser(
        "probe", help="measure every site of a federation with echo tasks",
        description="Send echo tasks of several sizes to every site of a federation "
        "and print the per-hop latency of each side by side.",
    )  # fmt: skip
    probe.add_argument(
        "federation", type=Path, metavar="FEDERATION_FILE",
        help="the federation file, e.g. endpoints/federation.yaml",
    )  # fmt: skip
    probe.add_argument(
        "--sizes", default="",
        help="payload sizes, comma-separated (default: 0,1KB,1MB,8MB)",
    )  # fmt: skip
    probe.add_argument(
        "-n", "--repeats", type=int, default=10,
        help="tasks per site, size and mode (default: %(default)s)",
    )  # fmt: skip
    probe.add_argument(
        "--modes", default="serial,burst",
        help="serial (one in flight) and/or burst (default: %(default)s)",
    )  # fmt: skip
    probe.add_argument("--sites", default="", help="only these sites, comma-separated")
    probe.add_argument(
        "--timeout", type=float, default=120.0,
        help="seconds to wait for one echo before giving up on a site",
    )  # fmt: skip
    probe.add_argument(
        "--run-dir", type=Path, default=None,
        help="parent of the run directory (default: the federation's run_dir)",
    )  # fmt: skip
    probe.add_argument("--json", action="store_true", help="print the table as JSON")
    probe.set_defaults(handler=_probe)

    data = commands.add_parser(
        "data", help="check a federation's data stores",
        description="Check the data stores that carry a federation's large values.",
    )  # fmt: skip
    data_commands = data.add_subparsers(
        dest="data_command", required=True, metavar="COMMAND", help="one of:"
    )
    check = data_commands.add_parser(
        "check", help="round-trip a test value through each store, from this host",
        description="Round-trip a test value through each data store from this "
        "host, and show which store carries each method's large values.",
    )  # fmt: skip
    check.add_argument(
        "federation", type=Path, metavar="FEDERATION_FILE",
        help="the federation file whose 'data.stores' to check",
    )  # fmt: skip
    check.add_argument(
        "--size", default="1 MB", help="test value size (default: %(default)s)"
    )
    check.set_defaults(handler=_data_check)

    summary = commands.add_parser(
        "summary", help="per-hop latency table of a run",
        description="Print a finished run's task counts, per-hop latency and clock "
        "offsets, from its journal.",
    )  # fmt: skip
    summary.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR",
        help="a run directory (the one holding journal.jsonl)",
    )  # fmt: skip
    summary.add_argument(
        "--export", action="store_true",
        help="also write the tables as CSV and Parquet under RUN_DIR/latency",
    )  # fmt: skip
    summary.set_defaults(handler=_summary)

    report = commands.add_parser(
        "report", help="an HTML report of a run, plots included, in one file",
        description="Write a run's HTML report, its plots embedded and saved as PNG "
        "files beside it.",
    )  # fmt: skip
    report.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR",
        help="a run directory (the one holding journal.jsonl)",
    )  # fmt: skip
    report.add_argument("--out", type=Path, help="default: RUN_DIR/report")
    report.set_defaults(handler=_report)
    return parser


#: errno values of OSErrors a user causes by naming a path: say which, no traceback.
_PATH_ERRNOS = {
    errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR,
    errno.EEXIST, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG,
    errno.ELOOP,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user's mistake is one `error:` line and exit status 2.

    An unexpected exception keeps its traceback: that is a bug to report.
    """
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ColmenaFXError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _PATH_ERRNOS or exc.filename is None:
            raise
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
