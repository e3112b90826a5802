"""An append-only JSON-lines record of every task event of a run.

Lines are written by one background thread so that submitting and receiving never
wait on the disk. Each line is `{"event": ..., "time_ns": ..., "task": {...}}`; the
`delivered` line of a task carries its whole record (timeline, sizes, failure), so
the journal alone is enough to report on a run after it ended.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import TextIO

from pydantic_core import PydanticSerializationError
from pydantic_core import from_json
from pydantic_core import to_json

from colmena_fx.exceptions import RunDirectoryError
from colmena_fx.exceptions import UsageError
from colmena_fx.models import Result
from colmena_fx.records import RecordFile
from colmena_fx.rundir import FEDERATION_FIX
from colmena_fx.rundir import make_run_dir

log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.jsonl"
#: Most seconds between an event's write and its fsync (with the task store's).
SYNC_S = 1.0

_CLOSE = object()


class Journal:
    """Writes events to `<run_dir>/journal.jsonl` from a background thread.

    The writer wakes at most every `flush_s` seconds and writes everything queued
    since in one go: a busy campaign costs one write per batch, not one per event.
    At most `sync_s` after a write it fsyncs the journal and the record files in
    `sync_also`, so that a power loss costs at most that much of the run.
    """

    def __init__(
        self,
        run_dir: Path,
        flush_s: float = 0.05,
        sync_s: float = SYNC_S,
        sync_also: list[RecordFile] | None = None,
    ) -> None:
        self.path = Path(run_dir) / JOURNAL_NAME
        self.flush_s = flush_s
        self.sync_s = sync_s
        self.sync_also = list(sync_also or [])
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        #: Why the journal stopped writing (a full disk, say); None while it writes.
        #: The federation raises it at the next `submit` and again at `stop`.
        self.error: RunDirectoryError | None = None

    def start(self) -> None:
        """Open the journal here: a run directory that refuses it fails the start.

        Opened in the writer thread instead, the error would end that thread alone
        and every event after it would be lost without a word.
        """
        make_run_dir(self.path.parent)
        try:
            stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            if _ends_torn(self.path):  # a crash cut the last line: end it
                stream.write("\n")
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
        closing = False
        synced = time.monotonic()
        dirty = False
        while not closing:
            try:
                wait = max(0.0, synced + self.sync_s - time.monotonic())
                batch = [self._queue.get(timeout=wait if dirty else None)]
            except queue.Empty:
                dirty = not self._sync(stream)
                synced = time.monotonic()
                continue
            time.sleep(self.flush_s)  # let the batch fill up
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            closing = _CLOSE in batch
            lines = [_line(item) for item in batch if item is not _CLOSE]
            if self.error is None:
                self._append(stream, "".join(line for line in lines if line))
            dirty = True
            if time.monotonic() - synced >= self.sync_s:
                dirty = not self._sync(stream)
                synced = time.monotonic()
        self._sync(stream)
        # What it could not flush at close is what `error` already names.
        with contextlib.suppress(OSError):
            stream.close()

    def _sync(self, stream: TextIO) -> bool:
        """fsync the journal and the record files; False if the journal refused."""
        for records in self.sync_also:
            records.sync()
        if self.error is not None:
            return True  # nothing more will be written
        try:
            os.fsync(stream.fileno())
        except OSError as exc:
            log.warning("cannot fsync the journal %s: %s", self.path, exc)
            return False
        return True

    def _append(self, stream: TextIO, text: str) -> None:
        """Write `text`; on failure, keep the reason and drop every later event.

        The writer thread goes on draining the queue, so that recording never
        blocks or grows without bound, and the run goes on: its results still
        reach the thinker.
        """
        try:
            stream.write(text)
            stream.flush()
        except OSError as exc:
            self.error = RunDirectoryError(
                f"cannot write the journal {self.path}: {exc.strerror or exc}; the "
                f"events after this point are not journaled, so `summary`, `report` "
                f"and resuming cannot see them: free space on that disk or choose "
                f"another 'run_dir'"
            )
            log.error("%s", self.error)


def _line(item: tuple[str, int, Any]) -> str:
    """One journal line; an event that cannot be encoded is logged and skipped."""
    event, time_ns, task = item
    try:
        body = task if isinstance(task, _Encoded) else json.dumps(task)
    except (TypeError, ValueError):
        log.exception("cannot journal a %r event: it is left out", event)
        return ""
    return f'{{"event": "{event}", "time_ns": {time_ns}, "task": {body}}}\n'


def _ends_torn(path: Path) -> bool:
    """Whether `path` ends inside a line (the client died while writing it)."""
    with open(path, "rb") as stream:
        if stream.seek(0, os.SEEK_END) == 0:
            return False
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) != b"\n"


class _Encoded(str):
    """A task record already encoded as JSON."""


def read_journal(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every event of a run, oldest first; a torn last line (crash) is skipped.

    Each line is decoded on its own and dropped once the caller moves on, so that
    a reader folding the lines into its own state never holds the whole journal.
    pydantic-core's parser decodes the lines about twice as fast as `json.loads`
    and shares the short strings it meets again (keys, names of sites and
    methods); a line it refuses is given to `json.loads`, which accepts a little
    more (lone surrogate escapes), so that both read the same lines.
    """
    path = Path(run_dir) / JOURNAL_NAME
    with open(path, "rb") as stream:
        for line in stream:
            try:
                yield from_json(line)
            except ValueError:
                try:
                    yield json.loads(line)
                except ValueError:  # JSONDecodeError, UnicodeDecodeError
                    continue


def final_records(run_dir: Path) -> list[dict[str, Any]]:
    """The last full record of each finished task (its `delivered` line)."""
    return [
        entry["task"]
        for entry in read_journal(run_dir)
        if entry["event"] == "delivered"
    ]


def check_journalable(topic: object, task_info: dict[str, Any] | None) -> None:
    """Refuse now what the journal could not record later (and would lose)."""
    if not isinstance(topic, str):
        raise UsageError(f"topic must be a string, not {type(topic).__name__}")
    if task_info is None:
        return
    if not isinstance(task_info, dict):
        raise UsageError(f"task_info must be a dict, not {type(task_info).__name__}")
    for key, value in task_info.items():
        try:
            to_json({key: value})
        except PydanticSerializationError as exc:
            raise UsageError(
                f"task_info[{key!r}] is a {type(value).__name__}, which the journal "
                f"cannot record as JSON ({exc}): pass plain numbers, strings, lists "
                f"and dicts (for a numpy array, .tolist())"
            ) from None
