"""Measure every site of a federation with echo tasks, side by side.

`probe` starts the federation's sites with one extra method, `echo` (this module's,
so it needs nothing of the campaign's code), and for each payload size sends it to
each site N times one in flight (latency: each task alone on the link) and N at
once (a burst: what the site sustains). Sites are probed one after another, so
they never share the client's CPU while being measured. The run directory keeps
every timeline (its journal) and the latency tables as CSV and Parquet.
"""

from __future__ import annotations

import io
import logging
import os
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from colmena_fx.config import FederationConfig
from colmena_fx.configfiles import load_federation
from colmena_fx.exceptions import ColmenaFXError
from colmena_fx.exceptions import ConfigError
from colmena_fx.federation import Federation
from colmena_fx.latency.clocks import ClockOffset
from colmena_fx.latency.export import export
from colmena_fx.live import LiveView
from colmena_fx.methodroute import MethodRoute

log = logging.getLogger(__name__)

DEFAULT_SIZES = (0, 1_000, 1_000_000, 8_000_000)
MODES = ("serial", "burst")


def echo(payload: bytes) -> bytes:
    """The probe's task: send the payload straight back."""
    return payload


@dataclass
class ProbeRow:
    """What one site did with one payload size in one mode."""

    site: str
    size_bytes: int
    mode: str
    tasks: int
    failed: int
    round_trip_median_s: float | None = None
    round_trip_p95_s: float | None = None
    #: Tasks per second: 1 / median round trip one in flight; N / span in a burst.
    tasks_per_s: float | None = None
    #: Payload bytes moved per second, both ways, at that rate.
    megabytes_per_s: float | None = None
    hop_medians_s: dict[str, float] = field(default_factory=dict)
    #: The first failure, if any task failed or was refused.
    failure: str = ""


@dataclass
class ProbeReport:
    rows: list[ProbeRow]
    offsets: list[ClockOffset]
    run_dir: Path
    #: Sites that stopped answering, with why.
    unreachable: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        def ms(seconds: float | None) -> float | None:
            return None if seconds is None else round(seconds * 1e3, 4)

        return {
            "run_dir": str(self.run_dir),
            "rows": [
                {
                    "site": row.site,
                    "size_bytes": row.size_bytes,
                    "mode": row.mode,
                    "tasks": row.tasks,
                    "failed": row.failed,
                    "round_trip_median_ms": ms(row.round_trip_median_s),
                    "round_trip_p95_ms": ms(row.round_trip_p95_s),
                    "tasks_per_s": row.tasks_per_s,
                    "megabytes_per_s": row.megabytes_per_s,
                    "failure": row.failure,
                    "hop_medians_ms": {
                        hop: ms(value) for hop, value in row.hop_medians_s.items()
                    },
                }
                for row in self.rows
            ],
            "clock_offsets": [
                {
                    "site": offset.site,
                    "host": offset.host,
                    "offset_ms": ms(offset.offset_s),
                    "uncertainty_ms": ms(offset.uncertainty_s),
                    "drift_ppm": offset.drift_ppm,
                    "drift_uncertainty_ppm": offset.drift_uncertainty_ppm,
                    "segments": len(offset.segments),
                    "round_trips": offset.samples,
                    "consistent": offset.consistent,
                    "clocks": offset.setting,
                    "note": offset.note(),
                }
                for offset in self.offsets
            ],
            "unreachable": self.unreachable,
        }


def probe_federation(
    path: Path,
    sizes: Sequence[int] = DEFAULT_SIZES,
    repeats: int = 10,
    modes: Sequence[str] = MODES,
    sites: Sequence[str] | None = None,
    run_dir: Path | None = None,
    timeout_s: float = 120.0,
    on_progress: Callable[[str], None] = lambda line: None,
    live: Console | None = None,
) -> ProbeReport:
    """Probe the sites of the federation file `path` (or the named subset).

    With a `live` console, the sites' live panel shows while the probe runs.
    """
    config, all_sites = load_federation(path)
    chosen = list(sites) if sites else list(all_sites)
    unknown = sorted(set(chosen) - set(all_sites))
    if unknown:
        raise ConfigError(
            f"{path}: no site named {unknown}; it has {sorted(all_sites)}"
        )
    bad_modes = sorted(set(modes) - set(MODES))
    if bad_modes or repeats < 1:
        raise ConfigError(f"modes must be among {MODES} and repeats at least 1")
    probe_config = FederationConfig(
        name=f"probe-{config.name}",
        sites=config.sites,
        methods={
            "echo": MethodRoute(
                site=chosen[0],
                function=f"{__name__}:echo",
                topics={site: site for site in chosen},
            )
        },
        run_dir=config.run_dir,
        clocks=config.clocks,
        source=config.source,
    )
    if run_dir is None and not config.run_dir.is_absolute():
        run_dir = Path.cwd() / config.run_dir
    federation = Federation(
        probe_config, {name: all_sites[name] for name in chosen}, run_dir=run_dir
    )
    prober = _Prober(federation, timeout_s)
    unreachable: dict[str, str] = {}
    with federation, LiveView(federation, live or Console(file=io.StringIO())):
        for site in chosen:
            on_progress(f"probing {site}")
            try:
                prober.probe(site, sizes, repeats, modes)
            except TimeoutError as exc:
                unreachable[site] = str(exc)
                log.error("site %s: %s", site, exc)
    assert federation.run_dir is not None
    export(federation.latency, federation.run_dir / "latency")
    rows = _rows(federation, prober.plan, prober.notes)
    return ProbeReport(rows, federation.latency.offsets(), federation.run_dir,
                       unreachable)  # fmt: skip


Key = tuple[str, int, str]  # site, payload size, mode


class _Prober:
    """Sends the echo tasks and remembers which (site, size, mode) each was."""

    def __init__(self, federation: Federation, timeout_s: float) -> None:
        self.federation = federation
        self.timeout_s = timeout_s
        self.plan: dict[str, Key] = {}
        #: The first failure of each (site, size, mode), as the user would see it.
        self.notes: dict[Key, str] = {}

    def probe(
        self, site: str, sizes: Sequence[int], repeats: int, modes: Sequence[str]
    ) -> None:
        """Warm the site up (not counted), then every size in every mode."""
        self._collect(site, [self.federation.submit("echo", b"", topic=site)], None)
        for size in sizes:
            payload = os.urandom(size)
            for mode in modes:
                key = (site, size, mode)
                if mode == "serial":
                    for _ in range(repeats):
                        self._collect(site, self._send(key, payload, 1), key)
                else:
                    self._collect(site, self._send(key, payload, repeats), key)

    def _send(self, key: Key, payload: bytes, count: int) -> list[str]:
        tasks = []
        for _ in range(count):
            try:
                task = self.federation.submit("echo", payload, topic=key[0])
            except ColmenaFXError as exc:  # e.g. over the service's payload limit
                self.notes.setdefault(key, str(exc))
                break
            self.plan[task] = key
            tasks.append(task)
        return tasks

    def _collect(self, site: str, tasks: list[str], key: Key | None) -> None:
        for _ in tasks:
            result = self.federation.get_result(site, timeout=self.timeout_s)
            if result is None:
                raise TimeoutError(
                    f"no echo came back within {self.timeout_s:.0f} s; check the "
                    f"site's endpoint (colmena-fx endpoint status) and its log"
                )
            self.federation.processed(result)
            if result.failure is not None and key is not None:
                self.notes.setdefault(key, str(result.failure))


def _rows(
    federation: Federation, plan: dict[str, Key], notes: dict[Key, str]
) -> list[ProbeRow]:
    corrected, table = federation.latency.hops()
    group_of = {}
    counts: dict[tuple[str, int, str], list[int]] = defaultdict(lambda: [0, 0])
    for row, info in enumerate(corrected.tasks):
        if info.task_id in plan:
            key = plan[info.task_id]
            group_of[row] = key
            counts[key][0 if info.success else 1] += 1
    samples: dict[tuple[str, int, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for row, hop, seconds in zip(table.task, table.hop, table.seconds, strict=True):
        if row in group_of:
            samples[group_of[row]][hop].append(float(seconds))
    sent, received = corrected.column("sent"), corrected.column("received")
    rows = []
    for key in notes:
        counts.setdefault(key, [0, 0])  # refused at submit: no task at all
    for key, (ok, failed) in counts.items():
        site, size, mode = key
        hops = samples.get(key, {})
        probe = ProbeRow(site, size, mode, tasks=ok + failed, failed=failed)
        probe.failure = notes.get(key, "")
        probe.hop_medians_s = {
            hop: float(np.median(values))
            for hop, values in hops.items()
            if hop not in ("round_trip", "total")
        }
        trips = hops.get("round_trip")
        if trips:
            probe.round_trip_median_s = float(np.median(trips))
            probe.round_trip_p95_s = float(np.percentile(trips, 95))
            if mode == "serial":
                probe.tasks_per_s = 1 / probe.round_trip_median_s
            else:
                rows_of = [r for r, k in group_of.items() if k == key]
                span = np.nanmax(received[rows_of]) - np.nanmin(sent[rows_of])
                probe.tasks_per_s = ok / span if span > 0 else None
            if probe.tasks_per_s is not None:
                probe.megabytes_per_s = 2 * size * probe.tasks_per_s / 1e6
        rows.append(probe)
    order = {name: i for i, name in enumerate(federation.sites)}
    rows.sort(key=lambda r: (r.size_bytes, MODES.index(r.mode), order[r.site]))
    return rows
