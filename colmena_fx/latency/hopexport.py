"""The `hops` export table, written from the hop table's arrays.

At 100k tasks the table has 1.6M rows. As a list of Python values per column,
each copied by numpy for Parquet, it took 800 MB to write, and `csv.writer` took
8 s to format it. Here the task columns hold each task's values once, indexed per
row, the numbers stay arrays, and the CSV is formatted a block of rows at a time
with each distinct string quoted once: the files are the same.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colmena_fx.latency.stats import HopTable
from colmena_fx.latency.timelines import CorrectedTimes

#: Rows of the CSV formatted at once.
BLOCK = 65_536
#: Rows of a Parquet row group: the strings of one are built at a time.
ROW_GROUP = 131_072
#: The columns, in order.
COLUMNS = ("task_id", "site", "method", "topic", "hop", "seconds", "uncertainty_s",
           "crosses_clocks")  # fmt: skip
TASK_COLUMNS = COLUMNS[:4]
#: What makes `csv.writer` quote a string (the default dialect's delimiter,
#: quote character and line terminator).
_QUOTED = re.compile(r'[,"\r\n]')


@dataclass(frozen=True)
class HopRows:
    """The `hops` table: one row per (successful task, hop)."""

    #: Per column of `TASK_COLUMNS`, the value of each task that has rows.
    tasks: dict[str, list[Any]]
    #: Per row, its task: an index into each list of `tasks`.
    task: np.ndarray
    hop_names: list[str]
    #: Per row, its hop: an index into `hop_names`.
    hop: np.ndarray
    seconds: np.ndarray
    uncertainty_s: np.ndarray
    crosses_clocks: np.ndarray

    @classmethod
    def of(cls, corrected: CorrectedTimes, table: HopTable) -> HopRows:
        seen = np.bincount(table.task, minlength=len(corrected.tasks)) > 0
        infos = [corrected.tasks[row] for row in np.flatnonzero(seen).tolist()]
        return cls(
            tasks={
                "task_id": [info.task_id for info in infos],
                "site": [info.site for info in infos],
                "method": [info.method for info in infos],
                "topic": [info.topic for info in infos],
            },
            task=(np.cumsum(seen) - 1)[table.task],
            hop_names=list(table.names),
            hop=table.hop_index,
            seconds=table.seconds,
            uncertainty_s=table.uncertainty_s,
            crosses_clocks=table.crosses_clocks,
        )

    def __len__(self) -> int:
        return len(self.seconds)

    def columns(self) -> dict[str, list[Any]]:
        """Every column as a list of plain Python values."""
        out = {
            key: _objects(values)[self.task].tolist()
            for key, values in self.tasks.items()
        }
        out["hop"] = _objects(self.hop_names)[self.hop].tolist()
        for key in COLUMNS[5:]:
            out[key] = getattr(self, key).tolist()
        return {key: out[key] for key in COLUMNS}

    def write_csv(self, path: Path) -> None:
        """What `csv.writer` writes of `columns()`, in a third of the time: a
        line is one f-string of the row's task and hop (quoted as `csv` quotes
        them, once each) and its numbers (`repr`, as `csv` writes floats)."""
        tasks = _objects([",".join(fields) for fields in zip(
            *(map(_csv_field, self.tasks[key]) for key in TASK_COLUMNS), strict=True
        )])  # fmt: skip
        hops = _objects([_csv_field(name) for name in self.hop_names])
        with open(path, "w", newline="") as stream:
            csv.writer(stream).writerow(COLUMNS)
            for start in range(0, len(self), BLOCK):
                end = start + BLOCK
                lines = [
                    f"{task},{hop},{seconds!r},{error!r},{crosses}\r\n"
                    for task, hop, seconds, error, crosses in zip(
                        tasks[self.task[start:end]].tolist(),
                        hops[self.hop[start:end]].tolist(),
                        self.seconds[start:end].tolist(),
                        self.uncertainty_s[start:end].tolist(),
                        self.crosses_clocks[start:end].tolist(),
                        strict=True,
                    )
                ]
                stream.write("".join(lines))

    def write_parquet(self, path: Path) -> None:
        """The table `pyarrow` makes of numpy's arrays of `columns()`, written a
        row group of `ROW_GROUP` rows at a time: each task column built from its
        tasks' values (numpy infers the same type from the same distinct values)
        and taken by row."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not len(self):  # typed as empty lists of values make them
            pq.write_table(pa.table({key: pa.array([]) for key in COLUMNS}), path)
            return
        # The system's allocator hands freed row groups back; pyarrow's default
        # (mimalloc) kept 50 MB of them at 100k tasks.
        pool = pa.system_memory_pool()
        chunks = self._arrow_chunks(pool)
        first = next(chunks)
        with pq.ParquetWriter(path, first.schema, memory_pool=pool) as writer:
            writer.write_table(first)
            for chunk in chunks:
                writer.write_table(chunk)

    def _arrow_chunks(self, pool: Any) -> Iterator[Any]:
        """The table a row group at a time, its strings allocated from `pool`."""
        import pyarrow as pa
        import pyarrow.compute as pc

        def strings(values: list[Any]) -> Any:
            return pa.array(np.asarray(values), memory_pool=pool)

        values = {key: strings(v) for key, v in self.tasks.items()}
        names = strings(self.hop_names)
        for start in range(0, len(self), ROW_GROUP):
            end = start + ROW_GROUP
            rows = pa.array(self.task[start:end])
            arrays = {
                key: pc.take(values[key], rows, memory_pool=pool)
                for key in TASK_COLUMNS
            }
            hops = pa.array(self.hop[start:end])
            arrays["hop"] = pc.take(names, hops, memory_pool=pool)
            for key in COLUMNS[5:]:
                arrays[key] = pa.array(getattr(self, key)[start:end])
            yield pa.table(arrays)


def _objects(values: list[Any]) -> np.ndarray:
    """`values` as a numpy array of objects, each kept whole (no tuple unpacked)."""
    objects = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        objects[i] = value
    return objects


def _csv_field(value: Any) -> str:
    """`value` as `csv.writer` writes it within a row."""
    if isinstance(value, str) and not _QUOTED.search(value):
        return value
    buffer = io.StringIO()
    csv.writer(buffer).writerow([value, ""])  # two fields: none is quoted for
    return buffer.getvalue()[: -len(",\r\n")]  # being the only, empty one
