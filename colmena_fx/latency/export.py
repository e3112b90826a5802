"""Latency tables as CSV and Parquet files, for pandas and spreadsheets.

Three tables: `hops` (one row per successful task and hop, on corrected clocks),
`summary` (per site x method x hop statistics) and `clocks` (the offsets found).
`pandas.read_parquet(run_dir / "latency" / "hops.parquet")` is the usual start.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from colmena_fx.exceptions import UsageError
from colmena_fx.latency.recorder import LatencyRecorder

FORMATS = ("csv", "parquet")

Columns = dict[str, list[Any]]


def tables(recorder: LatencyRecorder) -> dict[str, Columns]:
    """The three tables as columns of plain Python values."""
    corrected, table = recorder.hops()
    tasks = [corrected.tasks[row] for row in table.task]
    hops: Columns = {
        "task_id": [t.task_id for t in tasks],
        "site": [t.site for t in tasks],
        "method": [t.method for t in tasks],
        "topic": [t.topic for t in tasks],
        "hop": list(table.hop),
        "seconds": table.seconds.tolist(),
        "uncertainty_s": table.uncertainty_s.tolist(),
        "crosses_clocks": table.crosses_clocks.tolist(),
    }
    summary = _columns([asdict(row) for row in recorder.summary()])
    clocks = _columns([asdict(row) for row in recorder.offsets()])
    return {"hops": hops, "summary": summary, "clocks": clocks}


def _columns(rows: list[dict[str, Any]]) -> Columns:
    if not rows:
        return {}
    return {key: [row[key] for row in rows] for key in rows[0]}


def export(
    recorder: LatencyRecorder,
    directory: Path,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Write every table in every format to `directory`; returns the files."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise UsageError(f"unknown export formats {sorted(unknown)}: use {FORMATS}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, columns in tables(recorder).items():
        for fmt in formats:
            path = directory / f"{name}.{fmt}"
            (_write_csv if fmt == "csv" else _write_parquet)(columns, path)
            written.append(path)
    return written


def _write_csv(columns: Columns, path: Path) -> None:
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))


def _write_parquet(columns: Columns, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {
        key: pa.array(np.asarray(values) if values else values)
        for key, values in columns.items()
    }
    pq.write_table(pa.table(arrays), path)
