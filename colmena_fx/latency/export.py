"""Latency tables as CSV and Parquet files, for pandas and spreadsheets.

Four tables: `hops` (one row per successful task and hop, on corrected clocks, with
its +-), `summary` (per site x method x hop statistics), `clocks` (per remote clock:
offset, drift, segments, consistency, how it was corrected) and `clock_segments`
(one row per segment of a clock between steps); given a run's `TaskFacts`, a
fifth, `tasks`: one row per task with its state and where it was last seen, so
that tasks that never finished are counted too.
`pandas.read_parquet(run_dir / "latency" / "hops.parquet")` is the usual start.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from colmena_fx.exceptions import UsageError
from colmena_fx.latency.clocks import ClockOffset
from colmena_fx.latency.hopexport import HopRows
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.latency.stats import summarize_hops
from colmena_fx.latency.tasks import TaskFacts
from colmena_fx.latency.tasks import TaskRow

FORMATS = ("csv", "parquet")

Columns = dict[str, list[Any]]

#: Arrow types of the `tasks` columns, so that a column of nulls (no task ever
#: sent, say) or an empty table still reads back typed.
TASK_TYPES = {
    "task_id": "string",
    "method": "string",
    "topic": "string",
    "site": "string",
    "state": "string",
    "last_event": "string",
    "last_seen_s": "double",
    "retries": "int64",
    "resumed_after": "bool",
    "success": "bool",
}


def tables(
    recorder: LatencyRecorder, tasks: TaskFacts | None = None
) -> dict[str, Columns]:
    """The tables as columns of plain Python values; `tasks` adds the fourth."""
    hops, small = _tables(recorder, tasks)
    return {"hops": hops.columns(), **small}


def _tables(
    recorder: LatencyRecorder, tasks: TaskFacts | None
) -> tuple[HopRows, dict[str, Columns]]:
    """The `hops` table, then the others as columns, from one correction of the
    clocks."""
    corrected, table = recorder.hops()
    summary = _columns([asdict(row) for row in summarize_hops(corrected, table)])
    offsets = recorder.offsets()
    small = {
        "summary": summary,
        "clocks": _columns([clock_row(offset) for offset in offsets]),
        "clock_segments": _columns([
            {"site": offset.site, "host": offset.host, **asdict(segment)}
            for offset in offsets
            for segment in offset.segments
        ]),
    }  # fmt: skip
    if tasks is not None:
        small["tasks"] = task_columns(tasks.tasks)
    return HopRows.of(corrected, table), small


def clock_row(offset: ClockOffset) -> dict[str, Any]:
    """One clock's figures as flat columns; its segments go to `clock_segments`."""
    row = {key: value for key, value in asdict(offset).items() if key != "segments"}
    return {**row, "segments": len(offset.segments), "steps": offset.steps}


def task_columns(rows: list[TaskRow]) -> Columns:
    """One row per task; the columns are there even when no task is."""
    columns: Columns = {}
    for field in fields(TaskRow):
        values = map(attrgetter(field.name), rows)
        columns[field.name] = list(
            map(str, values) if field.name == "state" else values
        )
    return columns


def _columns(rows: list[dict[str, Any]]) -> Columns:
    if not rows:
        return {}
    return {key: [row[key] for row in rows] for key in rows[0]}


def export(
    recorder: LatencyRecorder,
    directory: Path,
    formats: Sequence[str] = FORMATS,
    tasks: TaskFacts | None = None,
) -> list[Path]:
    """Write every table in every format to `directory`; returns the files.

    `tasks` (`read_task_facts(run_dir)`) adds the `tasks` table: the recorder
    holds only the tasks that finished.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise UsageError(f"unknown export formats {sorted(unknown)}: use {FORMATS}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hops, small = _tables(recorder, tasks)
    written = []
    for fmt in formats:
        path = directory / f"hops.{fmt}"
        if fmt == "csv":
            hops.write_csv(path)
        else:
            hops.write_parquet(path)
        written.append(path)
    for name, columns in small.items():
        for fmt in formats:
            path = directory / f"{name}.{fmt}"
            if fmt == "csv":
                _write_csv(columns, path)
            else:
                _write_parquet(columns, path, TASK_TYPES if name == "tasks" else None)
            written.append(path)
    return written


def _write_csv(columns: Columns, path: Path) -> None:
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))


def _write_parquet(
    columns: Columns, path: Path, types: dict[str, str] | None = None
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if types is not None:
        arrays = {
            key: pa.array(values, type=pa.type_for_alias(types[key]))
            for key, values in columns.items()
        }
    else:
        arrays = {
            key: pa.array(np.asarray(values) if values else values)
            for key, values in columns.items()
        }
    pq.write_table(pa.table(arrays), path)
