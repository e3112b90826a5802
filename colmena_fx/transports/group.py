"""Every site's transport started or stopped together, in parallel: a campaign
waits for its slowest site once, not for the sum of them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from colmena_fx.transports.base import Transport

log = logging.getLogger(__name__)


def start_all(transports: Mapping[str, Transport]) -> None:
    """Start every transport; if any fails, stop them all, log every failure and
    raise the first."""
    with ThreadPoolExecutor(len(transports) or 1) as pool:
        starts = {name: pool.submit(t.start) for name, t in transports.items()}
    failures = {
        name: error
        for name, future in starts.items()
        if (error := future.exception()) is not None
    }
    if not failures:
        return
    stop_all(transports)
    for name, error in failures.items():  # all of them, not only the first
        log.error("site %s did not start: %s", name, error)
    raise next(iter(failures.values()))


def stop_all(transports: Mapping[str, Transport]) -> None:
    with ThreadPoolExecutor(len(transports) or 1) as pool:
        list(pool.map(lambda t: t.stop(), transports.values()))
