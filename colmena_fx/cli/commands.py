"""The commands of `colmena-fx`: each reads its parsed arguments, calls the library,
prints, and returns an exit status. Errors a user can cause are raised as
`ColmenaFXError`s for `main` to print as one line.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from collections.abc import Iterator
from pathlib import Path

from colmena_fx.clockplan import clock_overrides
from colmena_fx.exceptions import ColmenaFXError
from colmena_fx.exceptions import UsageError


def _size(option: str, text: str) -> int:
    """`text` as bytes, or a UsageError that names the option it was given to."""
    from colmena_fx.units import parse_size

    try:
        return parse_size(text)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}") from None


def endpoint_start(args: argparse.Namespace) -> int:
    """Run one site's endpoint in the foreground until interrupted, and say how a
    client attaches to it (it outlives its clients)."""
    from colmena_fx.config import SiteConfig
    from colmena_fx.endpoint.__main__ import main as endpoint_main

    def ready(site: SiteConfig, connection_file: Path) -> None:
        path = connection_file.resolve()
        print(f"endpoint for site {site.name} ready; connection file: {path}")
        print(f"clients attach with this in their site file:  local.attach: {path}")
        print(f"  (in YAML:  local: {{attach: {path}}})", flush=True)

    run_dir = args.run_dir or Path("runs") / "endpoints" / Path(args.site_file).stem
    argv = [
        str(args.site_file),
        "--run-dir",
        str(run_dir),
        "--log-level",
        args.log_level,
    ]
    return endpoint_main(argv, ready=ready)


def endpoint_validate(args: argparse.Namespace) -> int:
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


def endpoint_render(args: argparse.Namespace) -> int:
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


def endpoint_status(args: argparse.Namespace) -> int:
    """A globus site's endpoint status, as the Globus Compute service reports it."""
    import json

    from colmena_fx.configfiles import load_site
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


def login(args: argparse.Namespace) -> int:
    """Log in to Globus Compute with the SDK's own flow and token storage."""
    from colmena_fx.transports.globus_service import login

    print(login(force=args.force))
    return 0


def endpoint_list(args: argparse.Namespace) -> int:
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


def data_check(args: argparse.Namespace) -> int:
    """Round-trip a test value through each data store; show each method's store."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from colmena_fx.configfiles import load_federation
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


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off for a block that only reads a run's journal.

    A journal decodes into hundreds of thousands of dicts and lists, none in a
    cycle; the collector would scan the young ones every 700 allocations, and the
    ever larger heap of survivors again and again, for nothing (a sixth of the
    time of `summary` on 100k tasks). Only for the commands, which own their
    process: the library leaves the collector alone.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def summary(args: argparse.Namespace) -> int:
    """Print task counts, per-hop latency, clock offsets, routing, site health, and
    what became of tasks that never reached the thinker (a crash, a resume)."""
    from rich.console import Console
    from rich.text import Text

    from colmena_fx.journal import JOURNAL_NAME
    from colmena_fx.latency.export import export
    from colmena_fx.latency.lifecycle import lifecycle_sentences
    from colmena_fx.latency.runfacts import read_run_facts
    from colmena_fx.latency.table import routing_tables
    from colmena_fx.latency.table import run_tables
    from colmena_fx.latency.table import task_tables

    if not (args.run_dir / JOURNAL_NAME).exists():
        print(f"error: {args.run_dir} has no {JOURNAL_NAME}; pass a run directory",
              file=sys.stderr)  # fmt: skip
        return 2
    clocks = clock_overrides(args.clocks)
    # Paused to the end: what the journal decodes into lives until the tables are
    # printed, and a collection after the reading would scan all of it again.
    with _collector_paused():
        facts = read_run_facts(args.run_dir, clocks)  # one reading of the journal
        recorder, tasks = facts.recorder, facts.tasks
        console = Console()
        for table in run_tables(recorder, title=f"Run {args.run_dir}"):
            console.print(table)
        for table in routing_tables(facts.routing):
            console.print(table)
        for table in task_tables(tasks):
            console.print(table)
        for sentence in lifecycle_sentences(tasks.lifecycle):
            console.print(Text(sentence))
        if args.export:
            for path in export(recorder, args.run_dir / "latency", tasks=tasks):
                console.print(f"wrote {path}", highlight=False)
    return 0


def report(args: argparse.Namespace) -> int:
    """Write a run's HTML report (plots embedded, PNGs beside it)."""
    from colmena_fx.report import write_report

    clocks = clock_overrides(args.clocks)
    with _collector_paused():  # the plots make a few cycles; it runs once, after
        path = write_report(args.run_dir, args.out, clocks=clocks)
    print(f"wrote {path}")
    return 0


def probe(args: argparse.Namespace) -> int:
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
