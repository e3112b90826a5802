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

JOURNAL_NAME = "journal.jsonl"

_CLOSE = object()


class Journal:
    """Writes events to `<run_dir>/journal.jsonl` from a background thread."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / JOURNAL_NAME
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(
            target=self._write, name="cfx-journal", daemon=True
        )
        self._thread.start()

    def record(self, event: str, task: dict[str, Any]) -> None:
        self._queue.put({"event": event, "time_ns": time.time_ns(), "task": task})

    def close(self) -> None:
        """Write everything recorded so far, then stop."""
        if self._thread is not None:
            self._queue.put(_CLOSE)
            self._thread.join()
            self._thread = None

    def _write(self) -> None:
        with open(self.path, "a", encoding="utf-8") as stream:
            while True:
                item = self._queue.get()
                lines = []
                closing = item is _CLOSE
                if not closing:
                    lines.append(item)
                while not closing:  # batch whatever else is already waiting
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _CLOSE:
                        closing = True
                    else:
                        lines.append(item)
                for line in lines:
                    stream.write(json.dumps(line, default=str) + "\n")
                stream.flush()
                if closing:
                    return


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
