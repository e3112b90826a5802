"""Results the endpoint keeps until their client acknowledges them.

A client may be away (killed, restarting) when its tasks finish; what finished is
handed over when it attaches again, so nothing is kept only in a socket's queue.
Up to `limit` bytes stay in memory; beyond that each result is spilled to
`<directory>/<task_id>.result`, written atomically, read back when handed over and
deleted on acknowledgement. Only the serving thread uses a buffer: no lock.
"""

from __future__ import annotations

import collections
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".result"


@dataclass
class _Held:
    run: str
    #: When the endpoint received the task, in its clock.
    received_ns: int
    size: int
    #: The packed result; None once spilled to its file.
    packed: bytes | None


class ResultBuffer:
    """Unacknowledged results by task id, in the order they finished."""

    def __init__(self, directory: Path, limit: int) -> None:
        self.directory = Path(directory)
        self.limit = limit
        self.memory_bytes = 0
        self._held: dict[str, _Held] = {}

    def start(self) -> None:
        """Make the spill directory; files an earlier endpoint left are only named:
        who they belonged to died with it, and they are not this one's to delete."""
        self.directory.mkdir(parents=True, exist_ok=True)
        stale = sorted(self.directory.glob(f"*{SUFFIX}"))
        if stale:
            log.warning(
                "%d result files of an earlier endpoint are in %s; nobody will "
                "claim them (delete them when you no longer need them)",
                len(stale),
                self.directory,
            )

    def __len__(self) -> int:
        return len(self._held)

    def add(self, task_id: str, run: str, received_ns: int, packed: bytes) -> None:
        """Keep a result, in memory if it fits under the limit, else in its file."""
        self._forget(task_id)  # a task sent again: its later result wins
        size = len(packed)
        held = _Held(run, received_ns, size, packed)
        if self.memory_bytes + size > self.limit:
            try:
                self._spill(task_id, packed)
                held.packed = None
            except OSError as exc:  # a full disk: over the limit beats lost
                log.error("cannot spill the result of task %s: %s", task_id, exc)
        if held.packed is not None:
            self.memory_bytes += size
        self._held[task_id] = held

    def task_ids(self, run: str) -> list[str]:
        return [task_id for task_id, held in self._held.items() if held.run == run]

    def runs(self) -> dict[str, int]:
        """How many results each run has here."""
        return dict(collections.Counter(held.run for held in self._held.values()))

    def read(self, task_id: str) -> tuple[int, bytes] | None:
        """(received_ns, packed result), from memory or its file; None if gone."""
        held = self._held.get(task_id)
        if held is None:
            return None
        if held.packed is not None:
            return held.received_ns, held.packed
        try:
            return held.received_ns, self._path(task_id).read_bytes()
        except OSError as exc:
            log.error("cannot read the spilled result of task %s: %s", task_id, exc)
            return None

    def ack(self, task_ids: list[str], run: str) -> int:
        """Forget the results of `run` that its client acknowledged; how many."""
        mine = [t for t in task_ids if (h := self._held.get(t)) and h.run == run]
        for task_id in mine:
            self._forget(task_id)
        return len(mine)

    def drop_run(self, run: str) -> int:
        """Forget every result of `run` (its client stopped cleanly); how many."""
        return self.ack(self.task_ids(run), run)

    def clear(self) -> None:
        """Forget everything, files too: nothing can claim them after this endpoint."""
        for task_id in list(self._held):
            self._forget(task_id)

    def _forget(self, task_id: str) -> None:
        held = self._held.pop(task_id, None)
        if held is None:
            return
        if held.packed is None:
            self._path(task_id).unlink(missing_ok=True)
        else:
            self.memory_bytes -= held.size

    def _path(self, task_id: str) -> Path:
        # Task ids are canonical UUIDs (`wire.TaskId`): safe as file names.
        return self.directory / f"{task_id}{SUFFIX}"

    def _spill(self, task_id: str, packed: bytes) -> None:
        """Write atomically: a reader (or a crash) never sees half a result."""
        path = self._path(task_id)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as stream:
            stream.write(packed)
        os.replace(tmp, path)
