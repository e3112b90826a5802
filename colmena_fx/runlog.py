"""A run directory claimed by its client: the lock, the task store and the journal.

A new run gets a fresh directory and the snapshot of its settings; a resumed one is
read back (`replay`) before anything is appended to it. Either way one client holds
it (`runfiles.ClientLock`) until `close`. A record that cannot be kept (a full
disk) is logged, and the error is raised again by the next `submit` and by `stop`
(`error`): the run goes on, but it could not be resumed from that point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from colmena_fx.clockplan import ClockPlan
from colmena_fx.config import FederationConfig
from colmena_fx.config import SiteConfig
from colmena_fx.journal import Journal
from colmena_fx.models import HOST
from colmena_fx.models import Result
from colmena_fx.replay import RunReplay
from colmena_fx.replay import read_run
from colmena_fx.rundir import make_run_dir
from colmena_fx.rundir import new_run_dir
from colmena_fx.runfiles import ClientLock
from colmena_fx.runfiles import write_snapshot
from colmena_fx.taskstore import TaskStore

log = logging.getLogger(__name__)


class RunLog:
    """The open files of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._lock = ClientLock(run_dir)
        self.store = TaskStore(run_dir)
        self.journal = Journal(run_dir, sync_also=self.store.files)
        #: After `close`: a result taken from the topics now (after `stop`) is
        #: not marked; a later resume delivers it again.
        self.closed = False

    @classmethod
    def create(
        cls,
        parent: Path,
        config: FederationConfig,
        sites: dict[str, SiteConfig],
    ) -> RunLog:
        """A new run directory under `parent`, its settings kept, its `run` line."""
        run = cls(new_run_dir(parent, config.name))
        run._open(lambda: write_snapshot(run.run_dir, config, sites))
        # What a report needs to know about the run besides its tasks.
        clocks = ClockPlan.of(config, sites).to_json()
        run.journal.record(
            "run",
            {"federation": config.name, "client_host": HOST, "clocks": clocks,
             "sites": {name: site.transport for name, site in sites.items()}},
        )  # fmt: skip
        return run

    @classmethod
    def reopen(cls, run_dir: Path) -> tuple[RunLog, RunReplay]:
        """An earlier run's directory, and what it holds, read before appending."""
        run = cls(make_run_dir(run_dir))
        replays: list[RunReplay] = []
        run._open(lambda: replays.append(read_run(run.run_dir)))
        return run, replays[0]

    def _open(self, first: Callable[[], object]) -> None:
        self._lock.acquire()
        try:
            first()
            self.store.open()
            self.journal.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Write out and close everything, then let another client have the run."""
        self.closed = True
        self.journal.close()
        self.store.close()
        self._lock.release()

    @property
    def error(self) -> Exception | None:
        """Why the run directory stopped keeping records, if it did."""
        return self.journal.error or self.store.error

    # -- records a site's or the thinker's thread keeps (failures logged) ------------

    def keep_accepted(self, result: Result) -> None:
        self._keep(self.store.accepted, result, "the remote id")

    def keep_result(self, result: Result) -> None:
        self._keep(self.store.result, result, "the result")

    def keep_taken(self, result: Result) -> None:
        self._keep(self.store.taken, result, "the delivery")

    def _keep(self, step: Callable[[Result], None], result: Result, what: str) -> None:
        if self.closed:
            return
        try:
            step(result)
        except Exception:  # RunDirectoryError, or a value that will not pickle
            log.exception("cannot keep %s of task %s", what, result.task_id)
