"""An append-only JSON-lines record of every task event of a run.

Lines are written by one background thread so that submitting and receiving never
wait on the disk. Each line is `{"event": ..., "time_ns": ..., "task": {...}}`; the
`delivered` line of a task carries its whole record (timeline, sizes, failure), so
the journal alone is enough to report on a run after it ended.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import TextIO

from colmena_fx.exceptions import RunDirectoryError
from colmena_fx.models import Result
from colmena_fx.rundir import FEDERATION_FIX
from colmena_fx.rundir import make_run_dir

JOURNAL_NAME = "journal.jsonl"

_CLOSE = object()


class Journal:
    """Writes events to `<run_dir>/journal.jsonl` from a background thread.

    The writer wakes at most every `flush_s` seconds and writes everything queued
    since in one go: a busy campaign costs one write per batch, not one per event.
    """

    def __init__(self, run_dir: Path, flush_s: float = 0.05) -> None:
        self.path = Path(run_dir) / JOURNAL_NAME
        self.flush_s = flush_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the journal here: a run directory that refuses it fails the start.

        Opened in the writer thread instead, the error would end that thread alone
        and every event after it would be lost without a word.
        """
        make_run_dir(self.path.parent)
        try:
            stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise RunDirectoryError(
                f"cannot write the journal {self.path}: {exc.strerror or exc}; "
                f"{FEDERATION_FIX}"
            ) from None
        self._thread = threading.Thread(
            target=self._write, args=(stream,), name="cfx-journal", daemon=True
        )
        self._thread.start()

    def record(self, event: str, task: dict[str, Any]) -> None:
        """Queue an event about a task described by a JSON-ready dict."""
        self._queue.put((event, time.time_ns(), task))

    def record_result(self, event: str, result: Result) -> None:
        """Queue an event with the task's whole record, encoded now (it may change)."""
        self._queue.put((event, time.time_ns(), _Encoded(result.journal_json())))

    def close(self) -> None:
        """Write everything recorded so far, then stop."""
        if self._thread is not None:
            self._queue.put(_CLOSE)
            self._thread.join()
            self._thread = None

    def _write(self, stream: TextIO) -> None:
        with stream:
            closing = False
            while not closing:
                batch = [self._queue.get()]
                time.sleep(self.flush_s)  # let the batch fill up
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                lines = []
                for item in batch:
                    if item is _CLOSE:
                        closing = True
                        continue
                    event, time_ns, task = item
                    body = task if isinstance(task, _Encoded) else json.dumps(task)
                    head = f'{{"event": "{event}", "time_ns": {time_ns}, "task": '
                    lines.append(f"{head}{body}}}\n")
                stream.write("".join(lines))
                stream.flush()


class _Encoded(str):
    """A task record already encoded as JSON."""


def read_journal(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every event of a run, oldest first; a torn last line (crash) is skipped."""
    path = Path(run_dir) / JOURNAL_NAME
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def final_records(run_dir: Path) -> list[dict[str, Any]]:
    """The last full record of each finished task (its `delivered` line)."""
    return [
        entry["task"]
        for entry in read_journal(run_dir)
        if entry["event"] == "delivered"
    ]
