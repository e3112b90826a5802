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
import queue
import threading
from collections.abc import Callable
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic_core import PydanticSerializationError
from pydantic_core import to_json

from colmena_fx.config import FederationConfig
from colmena_fx.config import MethodRoute
from colmena_fx.config import SiteConfig
from colmena_fx.configfiles import load_federation
from colmena_fx.data.manager import DataManager
from colmena_fx.dispatch import Dispatcher
from colmena_fx.dispatch import Task
from colmena_fx.dispatch import brief
from colmena_fx.exceptions import ConfigError
from colmena_fx.exceptions import FederationNotRunningError
from colmena_fx.exceptions import UnknownMethodError
from colmena_fx.exceptions import UnknownSiteError
from colmena_fx.exceptions import UsageError
from colmena_fx.journal import Journal
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import HOST
from colmena_fx.models import ResourceRequirements
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.routing import Router
from colmena_fx.routing import ServiceEstimates
from colmena_fx.rundir import new_run_dir
from colmena_fx.taskcontext import TaskContext
from colmena_fx.transports import make_transport
from colmena_fx.transports.base import Transport
from colmena_fx.transports.base import TransportStatus
from colmena_fx.transports.health import USABLE
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
    ) -> None:
        self.config = config
        self.sites = sites
        self._functions = self._resolve_functions(config, list(methods))
        self._run_dir_parent = Path(run_dir) if run_dir else config.run_dir
        self.run_dir: Path | None = None
        self.transports: dict[str, Transport] = {}
        self._topics: dict[str, queue.Queue[Result]] = {}
        self._topics_lock = threading.Lock()
        self._running = False
        self._dispatch: Dispatcher | None = None
        self._health_callbacks: list[Callable[[HealthChange], None]] = []
        self.estimates = ServiceEstimates()
        self.journal: Journal | None = None
        #: Clock offsets and per-hop latency of the current (or last) run.
        self.latency = LatencyRecorder(synchronized=config.clocks == "synchronized")
        #: The data stores for large values (`data:` in the federation file).
        base_dir = config.source.parent if config.source else Path.cwd()
        self.data = DataManager(config, base_dir)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        methods: Iterable[Callable[..., Any]] = (),
        run_dir: Path | None = None,
    ) -> Federation:
        """The federation described by a federation file (sites relative to it)."""
        config, sites = load_federation(path)
        if run_dir is None and not config.run_dir.is_absolute():
            run_dir = Path.cwd() / config.run_dir
        return cls(config, sites, methods=methods, run_dir=run_dir)

    @staticmethod
    def _resolve_functions(
        config: FederationConfig, methods: list[Callable[..., Any]]
    ) -> dict[str, Callable[..., Any]]:
        where = config.source or "the federation file"
        given = {fn.__name__: fn for fn in methods}
        for name in given:
            if name not in config.methods:
                raise ConfigError(
                    f"{where}: method {name!r} is not routed: add 'methods.{name}.site'"
                )
        functions: dict[str, Callable[..., Any]] = {}
        for name, route in config.methods.items():
            if name in given:
                functions[name] = given[name]
            elif route.function is not None:
                try:
                    functions[name] = route.import_function()
                except ConfigError as exc:
                    raise ConfigError(  # chained to the module's own error
                        f"{where}: key 'methods.{name}.function': {exc}"
                    ) from exc.__cause__
            else:
                raise ConfigError(
                    f"{where}: method {name!r} has no function: pass it in "
                    f"Federation(methods=[...]) or set 'methods.{name}.function'"
                )
        return functions

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Federation:
        """Start every site's transport (in parallel) and the journal."""
        if self._running:
            return self
        self.run_dir = new_run_dir(self._run_dir_parent, self.config.name)
        self.journal = Journal(self.run_dir)
        self.journal.start()
        self.journal.record("run", self._run_record())
        self.latency = LatencyRecorder(
            synchronized=self.config.clocks == "synchronized"
        )
        self.estimates = ServiceEstimates()
        try:  # before the sites: a store that is down fails the start at once
            self.data.start(self.run_dir.name, on_stamp=self._on_late_stamp)
        except BaseException:
            self.journal.close()
            raise
        for name, site in self.sites.items():
            transport = make_transport(
                site,
                self.run_dir / "sites" / name,
                routes=self.config.methods,
                on_accepted=self._on_accepted,
            )
            transport.health.listener = self._on_health
            self.transports[name] = transport
        self._dispatch = Dispatcher(
            self.config,
            self.transports,
            Router(self.estimates),
            self.journal,
            self._deliver,
        )
        self._dispatch.start()
        with ThreadPoolExecutor(len(self.transports) or 1) as pool:
            starts = {name: pool.submit(t.start) for name, t in self.transports.items()}
        failures = {name: f.exception() for name, f in starts.items() if f.exception()}
        if failures:
            self._dispatch.close()
            self._stop_transports()
            self.data.stop()
            self.journal.close()
            for name, exc in failures.items():  # all of them, not only the first
                log.error("site %s did not start: %s", name, exc)
            raise next(iter(failures.values()))  # type: ignore[misc]
        self._running = True
        log.info("federation %s running in %s", self.config.name, self.run_dir)
        return self

    def _run_record(self) -> dict[str, Any]:
        """What a report needs to know about the run besides its tasks."""
        return {
            "federation": self.config.name,
            "client_host": HOST,
            "clocks": self.config.clocks,
            "sites": {name: site.transport for name, site in self.sites.items()},
        }

    def stop(self) -> None:
        """Stop every site; tasks not yet finished are delivered as failures.

        Raises the journal's error, after stopping everything, if it could not
        write the whole run.
        """
        if not self._running:
            return
        self._running = False
        assert self._dispatch is not None
        self._dispatch.close()
        self._stop_transports()
        self._dispatch.fail_waiting()
        self.data.stop()
        if self.journal is not None:
            self.journal.close()
            if self.journal.error is not None:
                raise self.journal.error

    def _stop_transports(self) -> None:
        with ThreadPoolExecutor(len(self.transports) or 1) as pool:
            list(pool.map(lambda t: t.stop(), self.transports.values()))

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
        self._health_callbacks.append(callback)

    def health(self) -> dict[str, HealthChange]:
        """Each site's health now, with its reason and since when."""
        return {name: t.health.current for name, t in self.transports.items()}

    def _on_health(self, change: HealthChange) -> None:
        if self.journal is not None:
            self.journal.record(
                "health",
                {"site": change.site, "health": change.health.value,
                 "reason": change.reason, "since": change.since},
            )  # fmt: skip
        for callback in list(self._health_callbacks):
            try:
                callback(change)
            except Exception:
                log.exception("health callback %r failed", callback)
        if change.health in USABLE and self._dispatch is not None:
            self._dispatch.timers.call_soon(self._dispatch.wake)

    # -- tasks -----------------------------------------------------------------------

    @property
    def methods(self) -> list[str]:
        return sorted(self._functions)

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
        topic: str = "default",
        resources: ResourceRequirements | dict[str, Any] | None = None,
        task_info: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> str:
        """Send `method(*args, **kwargs)` to one of its sites; returns the task id.

        Raises in the caller's thread for an unknown method, arguments that cannot be
        serialized, a `task_info` the journal cannot hold, a journal that stopped
        writing, or a federation that is not running. Anything later arrives as a
        (possibly failed) `Result` on `topic`. `timeout_s` (else the method's) is the
        most seconds until the result: past it, the task fails as a `timeout`.
        """
        if not self._running or self._dispatch is None:
            raise FederationNotRunningError(
                "start the federation before submitting tasks"
            )
        assert self.journal is not None
        if self.journal.error is not None:
            raise self.journal.error
        route = self.route(method)
        _check_journalable(topic, task_info)
        if timeout_s is not None and not timeout_s > 0:
            raise UsageError(f"timeout_s must be a positive number, not {timeout_s!r}")
        candidates = route.sites_for(topic)
        for site in candidates:
            if site not in self.transports:
                raise UnknownSiteError(
                    f"method {method!r} routes to unknown site {site!r}"
                )
        if resources is None:
            resources = route.resources
        elif isinstance(resources, dict):
            resources = ResourceRequirements.model_validate(resources)
        result = Result(
            method=method, topic=topic, resources=resources, task_info=task_info or {},
        )  # fmt: skip
        result.stamp(Stamp.CREATED)
        task = Task(
            result,
            self._functions[method],
            candidates,
            timeout_s=timeout_s if timeout_s is not None else route.timeout_s,
        )
        choice = self._dispatch.choose(task)
        # The inputs are packed for one site's data store: only sites that read
        # the same store can take the task later.
        result.site = choice[0] if choice else candidates[0]
        store = self.config.store_for(method, result.site)
        task.candidates = [
            s for s in candidates if self.config.store_for(method, s) == store
        ]
        context = TaskContext(result.task_id, method, task.timeout_s)
        result.inputs = self.data.pack(result, args, kwargs, context)
        result.sizes.inputs = len(result.inputs)
        result.stamp(Stamp.SERIALIZED)
        self._dispatch.add(task)
        if choice is None:
            result.site = None
            self._dispatch.wait_for_site(task)
            return result.task_id
        try:
            self._dispatch.send(task, *choice)
        except BaseException:
            self._dispatch.discard(task)
            self.data.abandoned(result)
            raise
        return result.task_id

    def _on_accepted(self, result: Result) -> None:
        """A site's service gave the task its own id: journal it at once."""
        if self.journal is not None:
            self.journal.record(
                "accepted",
                {"task_id": result.task_id, "site": result.site,
                 "remote_id": result.remote_id},
            )  # fmt: skip

    def _deliver(self, result: Result) -> None:
        """A task finished for good: journal it and queue it for its topic."""
        if self.journal is not None:
            self.journal.record("completed", brief(result))
        self.data.completed(result)
        self._topic(result.topic).put(result)
        self.estimates.observe(result)
        self.latency.completed(result)  # after: the thinker need not wait for it

    def _topic(self, topic: str) -> queue.Queue[Result]:
        with self._topics_lock:
            q = self._topics.get(topic)
            if q is None:
                q = self._topics[topic] = queue.Queue()
            return q

    def get_result(
        self, topic: str = "default", timeout: float | None = None
    ) -> Result | None:
        """The next finished task of `topic`, or None after `timeout` seconds."""
        try:
            result = self._topic(topic).get(timeout=timeout)
        except queue.Empty:
            return None
        delivered = result.stamp(Stamp.DELIVERED)
        result.inputs = b""  # the caller has them; keep the record small
        if self.journal is not None:
            self.journal.record_result("delivered", result)
        self.latency.stamped(result.task_id, Stamp.DELIVERED, delivered.time_ns)
        return result

    def processed(self, result: Result) -> None:
        """The thinker is done with `result`: stamps the end of its `thinker` hop.

        Result processors of a `BaseThinker` call this on return; call it yourself
        when you drive `get_result` by hand and want that hop measured.
        """
        event = result.stamp(Stamp.PROCESSED)
        self._on_late_stamp(result.task_id, Stamp.PROCESSED, event.time_ns)

    def _on_late_stamp(self, task_id: str, name: str, time_ns: int) -> None:
        """Journal and record a client stamp made after the task was delivered."""
        if self.journal is not None:
            self.journal.record(
                "stamped", {"task_id": task_id, "name": name, "time_ns": time_ns}
            )
        self.latency.stamped(task_id, name, time_ns)

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


def _check_journalable(topic: object, task_info: dict[str, Any] | None) -> None:
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
