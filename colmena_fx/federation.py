"""The client's view of every site of a campaign, living in the thinker's process.

`submit` serializes in the caller's thread (so a bad argument raises right there),
picks one of the method's sites by its policy (`routing`) and hands the task on
(`dispatch`, which also resends, waits and times tasks out). Results come back on
the transport's thread and are queued per topic for the thinker. Every step is
journaled. There is no separate task-server process: one hop fewer than Colmena,
and one serialization fewer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from colmena_fx.clockplan import ClockPlan
from colmena_fx.config import FederationConfig
from colmena_fx.config import SiteConfig
from colmena_fx.configfiles import load_federation
from colmena_fx.configfiles import resolve_functions
from colmena_fx.data.manager import DataManager
from colmena_fx.delivery import Delivery
from colmena_fx.dispatch import Dispatcher
from colmena_fx.dispatch import Task
from colmena_fx.exceptions import FederationNotRunningError
from colmena_fx.exceptions import UnknownMethodError
from colmena_fx.exceptions import UnknownSiteError
from colmena_fx.exceptions import UsageError
from colmena_fx.healthhub import HealthHub
from colmena_fx.journal import Journal
from colmena_fx.journal import check_journalable
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.methodroute import MethodRoute
from colmena_fx.models import FailureKind
from colmena_fx.models import ResourceRequirements
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.replay import RunReplay
from colmena_fx.resume import resume_run
from colmena_fx.routing import Router
from colmena_fx.routing import ServiceEstimates
from colmena_fx.runfiles import read_snapshot
from colmena_fx.runlog import RunLog
from colmena_fx.taskrequest import TaskRequest
from colmena_fx.topics import TopicQueues
from colmena_fx.transports import make_transport
from colmena_fx.transports.base import Transport
from colmena_fx.transports.base import TransportStatus
from colmena_fx.transports.group import start_all
from colmena_fx.transports.group import stop_all
from colmena_fx.transports.health import HealthChange

log = logging.getLogger(__name__)


class Federation:
    """Routes tasks to sites and delivers their results per topic."""

    def __init__(
        self,
        config: FederationConfig,
        sites: dict[str, SiteConfig],
        methods: Iterable[Callable[..., Any]] = (),
        run_dir: Path | None = None,
        resume: Path | None = None,
    ) -> None:
        self.config = config
        self.sites = sites
        self._functions = resolve_functions(config, list(methods))
        self._run_dir_parent = Path(run_dir) if run_dir else config.run_dir
        #: The run directory to pick up again at `start`, instead of a new one.
        self._resume_dir = Path(resume) if resume is not None else None
        self.run_dir: Path | None = None
        self._run: RunLog | None = None
        #: After resuming: the results the thinker took before the client
        #: stopped, in the order it took them, to rebuild its state from.
        self.resumed: list[Result] = []
        #: After resuming: the earlier client's tasks whose results are still to
        #: come (redelivered, reattached or sent again), in submission order.
        self.resumed_pending: list[Result] = []
        self.transports: dict[str, Transport] = {}
        self._running = False
        self._dispatch: Dispatcher | None = None
        self._health = HealthHub()
        self.estimates = ServiceEstimates()
        self.journal: Journal | None = None
        #: Clock offsets and per-hop latency of the current (or last) run.
        self.latency = LatencyRecorder(ClockPlan.of(config, self.sites))
        #: The data stores for large values (`data:` in the federation file).
        base_dir = config.source.parent if config.source else Path.cwd()
        self.data = DataManager(config, base_dir)
        #: Results from the transports to the thinker, per topic.
        self._delivery = Delivery(
            TopicQueues(config.topics), self.data, sites, lambda: self._running
        )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        methods: Iterable[Callable[..., Any]] = (),
        run_dir: Path | None = None,
        resume: str | Path | None = None,
    ) -> Federation:
        """The federation described by a federation file (sites relative to it).

        With `resume`, `start` picks that run directory up again, with the
        settings of the file as it is now (a site fixed meanwhile, say).
        """
        config, sites = load_federation(path)
        if run_dir is None and not config.run_dir.is_absolute():
            run_dir = Path.cwd() / config.run_dir
        return cls(
            config, sites, methods=methods, run_dir=run_dir,
            resume=Path(resume) if resume is not None else None,
        )  # fmt: skip

    @classmethod
    def resume(
        cls, run_dir: str | Path, methods: Iterable[Callable[..., Any]] = ()
    ) -> Federation:
        """The federation of an earlier run, with its settings; `start` resumes it.

        Results that finished but were never taken are delivered again, tasks
        still at a site that can give them back are taken back, and the rest are
        sent again exactly as they were submitted (README, "Resuming a campaign").
        """
        config, sites = read_snapshot(Path(run_dir))
        return cls(config, sites, methods=methods, resume=Path(run_dir))

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Federation:
        """Start every site's transport (in parallel) and the journal."""
        if self._running:
            return self
        replay: RunReplay | None = None
        if self._resume_dir is not None:
            self._run, replay = RunLog.reopen(self._resume_dir)
        else:
            self._run = RunLog.create(self._run_dir_parent, self.config, self.sites)
        self.run_dir, self.journal = self._run.run_dir, self._run.journal
        self._health.journal = self.journal
        self.latency = LatencyRecorder(ClockPlan.of(self.config, self.sites))
        self.estimates = ServiceEstimates()
        self._delivery.begin(self._run, self.latency, self.estimates)
        try:  # before the sites: a store that is down fails the start at once
            self.data.start(self.run_dir.name, on_stamp=self._delivery.late_stamp)
        except BaseException:
            self._run.close()
            raise
        for name, site in self.sites.items():
            transport = make_transport(
                site,
                self.run_dir / "sites" / name,
                routes=self.config.methods,
                on_accepted=self._delivery.accepted,
            )
            transport.health.listener = self._health
            self.transports[name] = transport
        self._dispatch = Dispatcher(
            self.config,
            self.transports,
            Router(self.estimates),
            self.journal,
            self._delivery.final,
        )
        self._dispatch.start()
        dispatch = self._dispatch
        self._health.on_usable = lambda: dispatch.timers.call_soon(dispatch.wake)
        try:
            start_all(self.transports)
        except BaseException:
            self._dispatch.close()
            self.data.stop()
            self._run.close()
            raise
        self._running = True
        if replay is not None:
            self._resume(replay)
        log.info("federation %s running in %s", self.config.name, self.run_dir)
        return self

    def _resume(self, replay: RunReplay) -> None:
        assert self._dispatch is not None and self.journal is not None
        done = resume_run(
            replay, self.config, self._functions, self.transports, self._dispatch,
            self.journal, redeliver=self._delivery.redeliver, fail=self._delivery.final,
        )  # fmt: skip
        self.resumed, self.resumed_pending = done.delivered, done.pending
        for result in done.pending:  # their results are still owed to the thinker
            self._delivery.topics.expect(result.topic)
        for result in done.delivered:  # the live view counts the whole run
            self.latency.completed(result)

    def stop(self) -> None:
        """Stop every site; tasks not yet finished are delivered as failures
        (and stay unfinished in the run directory, for `resume`).

        Raises the journal's error, after stopping everything, if it could not
        write the whole run.
        """
        if not self._running:
            return
        self._running = False
        assert self._dispatch is not None
        unfinished = len(self._dispatch.unfinished())
        self._dispatch.close()
        stop_all(self.transports)
        self._dispatch.fail_waiting()
        self._delivery.streams.stop()
        self.data.stop()
        assert self._run is not None
        self._run.journal.record("stopped", {"unfinished": unfinished})
        self._run.close()
        if self._run.error is not None:
            raise self._run.error

    def __enter__(self) -> Federation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- health ----------------------------------------------------------------------

    def on_health_change(self, callback: Callable[[HealthChange], None]) -> None:
        """Call `callback(change)` whenever a site's health changes.

        It runs on the thread that noticed (a transport's): keep it short, e.g.
        put the change on a queue or set an event for the thinker.
        """
        self._health.callbacks.append(callback)

    def health(self) -> dict[str, HealthChange]:
        """Each site's health now, with its reason and since when."""
        return {name: t.health.current for name, t in self.transports.items()}

    # -- tasks -----------------------------------------------------------------------

    @property
    def methods(self) -> list[str]:
        return sorted(self._functions)

    def declare_topics(self, topics: Iterable[str]) -> None:
        """Allow only `topics` (and "default"), as `topics:` in the file would."""
        if self._running:
            raise UsageError("declare topics before the federation starts")
        names = sorted(set(topics) - {"default"})
        self.config = self.config.model_copy(update={"topics": names})
        self._delivery.topics = TopicQueues(names)

    def route(self, method: str) -> MethodRoute:
        try:
            return self.config.methods[method]
        except KeyError:
            raise UnknownMethodError(
                f"unknown method {method!r}: the federation routes {self.methods}"
            ) from None

    def submit(
        self,
        method: str,
        *args: Any,
        kwargs: dict[str, Any] | None = None,
        topic: str = "default",
        resources: ResourceRequirements | dict[str, Any] | None = None,
        task_info: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        keep_inputs: bool | None = None,
        max_retries: int | None = None,
        retry_on: Iterable[FailureKind | str] | None = None,
    ) -> str:
        """Send `method(*args, **kwargs)` to one of its sites; returns the task id.

        The function's keyword arguments go in `kwargs`, so that none of them can
        be mistaken for an option of `submit`. Raises in the caller's thread for an
        unknown method or topic, arguments that cannot be serialized, a
        `task_info` the journal cannot hold, a journal that stopped writing, or a
        federation that is not running. Anything later arrives as a (possibly
        failed) `Result` on `topic`. `timeout_s` (else the method's) is the most
        seconds until the result: past it, the task fails as a `timeout`.
        `keep_inputs`, `max_retries` and `retry_on` override the method's.
        """
        if not self._running or self._dispatch is None:
            raise FederationNotRunningError(
                "start the federation before submitting tasks"
            )
        assert self._run is not None
        if self._run.error is not None:
            raise self._run.error
        route = self.route(method)
        check_journalable(topic, task_info)
        self._delivery.topics.check(topic)
        request = TaskRequest.of(
            method, route, args, kwargs, resources, timeout_s, max_retries, retry_on
        )
        candidates = request.sites(method, route, topic, self.transports)
        result = Result(
            method=method, topic=topic, resources=request.resources,
            task_info=task_info or {}, max_retries=max_retries,
            retry_on=request.retry_on,
        )  # fmt: skip
        if route.keep_inputs if keep_inputs is None else keep_inputs:
            result.keep(request.args, request.kwargs)
        result.stamp(Stamp.CREATED)
        task = Task(
            result, self._functions[method], candidates, timeout_s=request.timeout_s
        )
        choice = self._dispatch.choose(task)
        # The inputs are packed for one site's data store: only sites that read
        # the same store can take the task later.
        result.site = choice[0] if choice else candidates[0]
        store = self.config.store_for(method, result.site)
        task.candidates = [
            s for s in candidates if self.config.store_for(method, s) == store
        ]
        context = self._delivery.streams.context(
            result, task.function, route, task.candidates, task.timeout_s,
            resources=request.resources,
        )  # fmt: skip
        result.inputs = self.data.pack(result, request.args, request.kwargs, context)
        result.sizes.inputs = len(result.inputs)
        result.stamp(Stamp.SERIALIZED)
        try:  # on disk before it is sent: a client restart can send it again
            self._run.store.request(result, task.candidates, task.timeout_s)
        except BaseException:
            self.data.abandoned(result)
            raise
        self._delivery.topics.expect(topic)
        self._dispatch.add(task)
        if choice is None:
            result.site = None
            self._dispatch.wait_for_site(task)
            return result.task_id
        try:
            self._dispatch.send(task, *choice)
        except BaseException:
            self._dispatch.discard(task)
            self._delivery.topics.forget(topic)
            self.data.abandoned(result)
            raise
        return result.task_id

    def get_result(
        self, topic: str = "default", timeout: float | None = None
    ) -> Result | None:
        """The next finished task of `topic` (or a generator's intermediate
        result), or None after `timeout` seconds."""
        return self._delivery.take(topic, timeout)

    def outstanding(self, topic: str | None = None) -> int:
        """Tasks of `topic` (None: of any) whose final result is not yet taken."""
        return self._delivery.topics.outstanding(topic)

    def wait_until_done(self, timeout: float | None = None) -> bool:
        """Wait until every task submitted has had its result taken (or for at
        most `timeout` seconds); whether it has."""
        return self._delivery.topics.wait_until_done(timeout)

    def flush(self) -> list[Result]:
        """Take every result waiting on any topic now, and return them."""
        return self._delivery.flush()

    def processed(self, result: Result) -> None:
        """The thinker is done with `result`: stamps the end of its `thinker` hop.

        Result processors of a `BaseThinker` call this on return; call it yourself
        when you drive `get_result` by hand and want that hop measured.
        """
        self._delivery.processed(result)

    # -- state -----------------------------------------------------------------------

    def in_flight(self) -> list[Result]:
        """A snapshot of the tasks submitted and not yet finished (sent or waiting)."""
        return [] if self._dispatch is None else self._dispatch.unfinished()

    def status(self) -> list[TransportStatus]:
        return [transport.status() for transport in self.transports.values()]

    def transport(self, site: str) -> Transport:
        try:
            return self.transports[site]
        except KeyError:
            raise UnknownSiteError(
                f"unknown site {site!r}: the federation has {sorted(self.sites)}"
            ) from None
