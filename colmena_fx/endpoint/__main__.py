"""`python -m colmena_fx.endpoint SITE_FILE`: run one site's endpoint in the foreground.

The federation starts endpoints this way; `colmena-fx endpoint start` does too.
Exit status 2 means the site file is invalid (the message names file and key), the
run directory cannot be written, or another endpoint already runs in it.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from colmena_fx.config import SiteConfig
from colmena_fx.configfiles import load_site
from colmena_fx.endpoint.lock import RunDirLock
from colmena_fx.endpoint.server import EmbeddedEndpoint
from colmena_fx.endpoint.wire import error_file
from colmena_fx.exceptions import ConfigError
from colmena_fx.exceptions import EndpointError
from colmena_fx.exceptions import RunDirectoryError
from colmena_fx.rundir import make_run_dir


def main(
    argv: list[str] | None = None,
    ready: Callable[[SiteConfig, Path], None] | None = None,
) -> int:
    """Serve until interrupted; `ready(site, connection_file)` once it serves."""
    parser = argparse.ArgumentParser(prog="python -m colmena_fx.endpoint")
    parser.add_argument("site_file", type=Path)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--connection-file", type=Path)
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # First the run directory and its lock: a second endpoint there must not
    # touch the first's files (its connection file, its error file).
    lock = RunDirLock(args.run_dir)
    try:
        make_run_dir(args.run_dir, fix="pass --run-dir a directory you can write")
        lock.acquire()
    except (RunDirectoryError, EndpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return _serve(args, ready)
    finally:
        lock.release()


def _serve(
    args: argparse.Namespace, ready: Callable[[SiteConfig, Path], None] | None
) -> int:
    try:
        site = load_site(args.site_file)
    except ConfigError as exc:
        if args.connection_file:
            error_file(args.connection_file).write_text(str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    connection_file = args.connection_file or args.run_dir / "connection.json"
    endpoint = EmbeddedEndpoint(site, args.run_dir, connection_file, args.parent_pid)
    signal.signal(signal.SIGTERM, lambda *_: endpoint.request_stop())
    signal.signal(signal.SIGINT, lambda *_: endpoint.request_stop())
    try:
        endpoint.start()
        print(
            f"endpoint for site {site.name} ready; connection file: {connection_file}",
            file=sys.stderr,
            flush=True,
        )
        if ready is not None:
            ready(site, connection_file)
        endpoint.serve()
    except ConfigError as exc:
        # The starter reads this file to raise the same error on its side.
        error_file(connection_file).write_text(str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        endpoint.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
