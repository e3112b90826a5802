"""The command line's arguments: one subcommand per command in `commands`."""

from __future__ import annotations

import argparse
from pathlib import Path

from colmena_fx import __version__
from colmena_fx.cli import commands


def build_parser() -> argparse.ArgumentParser:
    """Every command, its description and its arguments' help."""
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
    subcommands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="one of:"
    )

    endpoint = subcommands.add_parser(
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
        "it writes connection.json (mode 0600) in its run directory, which a site "
        "file names as 'local.attach' to attach to it. It outlives its clients, "
        "serves one at a time, and keeps their results until they take them; one "
        "endpoint per run directory.",
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
    start.set_defaults(handler=commands.endpoint_start)

    validate = endpoint_commands.add_parser(
        "validate", help="check site files by building their engines (starts nothing)",
        description="Check site files by building their engines as the endpoint "
        "would, without starting anything; one OK or FAIL line per file.",
    )  # fmt: skip
    validate.add_argument(
        "site_files", type=Path, nargs="+", metavar="SITE_FILE",
        help="site files, e.g. endpoints/*.yaml (not the federation file)",
    )  # fmt: skip
    validate.set_defaults(handler=commands.endpoint_validate)

    render = endpoint_commands.add_parser(
        "render", help="write a site's globus-compute-endpoint configuration files",
        description="Write the configuration files of a site's Globus Compute "
        "endpoint and print the commands that install them on the cluster.",
    )  # fmt: skip
    render.add_argument(
        "site_file", type=Path, metavar="SITE_FILE", help="the site file to render"
    )
    render.add_argument("--out", type=Path, help="default: endpoint-SITE")
    render.set_defaults(handler=commands.endpoint_render)

    listing = endpoint_commands.add_parser(
        "list", help="a federation's sites and the methods routed to each",
        description="Table of a federation's sites: transport, endpoint id, engine, "
        "and the methods routed to each.",
    )  # fmt: skip
    listing.add_argument(
        "federation", type=Path, nargs="?", default=Path("endpoints/federation.yaml"),
        metavar="FEDERATION_FILE", help="default: %(default)s",
    )  # fmt: skip
    listing.set_defaults(handler=commands.endpoint_list)

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
    status.set_defaults(handler=commands.endpoint_status)

    login = subcommands.add_parser(
        "login", help="log in to Globus Compute; the SDK stores the tokens",
        description="Log in to Globus Compute with the SDK's own flow (in a "
        "terminal); a client identity from GLOBUS_COMPUTE_CLIENT_ID and "
        "GLOBUS_COMPUTE_CLIENT_SECRET needs no login.",
    )  # fmt: skip
    login.add_argument("--force", action="store_true", help="log in again anyway")
    login.set_defaults(handler=commands.login)

    probe = subcommands.add_parser(
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
    probe.set_defaults(handler=commands.probe)

    data = subcommands.add_parser(
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
    check.set_defaults(handler=commands.data_check)

    summary = subcommands.add_parser(
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
    _clocks_option(summary)
    summary.set_defaults(handler=commands.summary)

    report = subcommands.add_parser(
        "report", help="an HTML report of a run, plots included, in one file",
        description="Write a run's HTML report, its plots embedded and saved as PNG "
        "files beside it.",
    )  # fmt: skip
    report.add_argument(
        "run_dir", type=Path, metavar="RUN_DIR",
        help="a run directory (the one holding journal.jsonl)",
    )  # fmt: skip
    report.add_argument("--out", type=Path, help="default: RUN_DIR/report")
    _clocks_option(report)
    report.set_defaults(handler=commands.report)
    return parser


def _clocks_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--clocks", action="append", default=[], metavar="[SITE=]SETTING",
        help="correct the run's clocks otherwise than it declared: SITE=estimate, "
        "SITE=synchronized or SITE=synchronized:MS (within MS milliseconds); "
        "without SITE= for every site; repeatable",
    )  # fmt: skip
