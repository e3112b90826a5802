"""The client's view of every site of a campaign, living in the thinker's process.

`submit` serializes in the caller's thread (so a bad argument raises right there),
routes the method to its site and hands the task to that site's transport. Results
come back on the transport's thread and are queued per topic for the thinker. Every
step is journaled. There is no separate task-server process: one hop fewer than
Colmena, and one serialization fewer.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from collections.abc import Iterable
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from colmena_fx.config import FederationConfig
from colmena_fx.config import MethodRoute
from colmena_fx.config import SiteConfig
from colmena_fx.configfiles import load_federation
from colmena_fx.data.manager import DataManager
from colmena_fx.exceptions import ConfigError
from colmena_fx.exceptions import FederationNotRunningError
from colmena_fx.exceptions import UnknownMethodError
from colmena_fx.exceptions import UnknownSiteError
from colmena_fx.journal import Journal
from colmena_fx.latency.recorder import LatencyRecorder
from colmena_fx.models import HOST
from colmena_fx.models import FailureKind
from colmena_fx.models import ResourceRequirements
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.rundir import new_run_dir
from colmena_fx.transports import make_transport
from colmena_fx.transports.base import Transport
from colmena_fx.transports.base import TransportStatus

log = logging.getLogger(__name__)

_RETRYABLE = {FailureKind.WORKER_LOST, FailureKind.ENDPOINT_LOST}


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
        self._in_flight: dict[str, Result] = {}
        self._in_flight_lock = threading.Lock()
        self._running = False
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
        try:  # before the sites: a store that is down fails the start at once
            self.data.start(self.run_dir.name, on_stamp=self._on_late_stamp)
        except BaseException:
            self.journal.close()
            raise
        for name, site in self.sites.items():
            self.transports[name] = make_transport(
                site,
                self.run_dir / "sites" / name,
                routes=self.config.methods,
                on_accepted=self._on_accepted,
            )
        with ThreadPoolExecutor(len(self.transports) or 1) as pool:
            starts = {name: pool.submit(t.start) for name, t in self.transports.items()}
        failures = {name: f.exception() for name, f in starts.items() if f.exception()}
        if failures:
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
        """Stop every site; tasks still in flight are delivered as failures."""
        if not self._running:
            return
        self._running = False
        self._stop_transports()
        self.data.stop()
        if self.journal is not None:
            self.journal.close()

    def _stop_transports(self) -> None:
        with ThreadPoolExecutor(len(self.transports) or 1) as pool:
            list(pool.map(lambda t: t.stop(), self.transports.values()))

    def __enter__(self) -> Federation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
        **kwargs: Any,
    ) -> str:
        """Send `method(*args, **kwargs)` to its site; returns the task id.

        Raises in the caller's thread for an unknown method, arguments that cannot be
        serialized, or a federation that is not running. Anything later arrives as a
        (possibly failed) `Result` on `topic`.
        """
        if not self._running:
            raise FederationNotRunningError(
                "start the federation before submitting tasks"
            )
        route = self.route(method)
        site = route.site_for(topic)
        if site not in self.transports:
            raise UnknownSiteError(f"method {method!r} routes to unknown site {site!r}")
        if resources is None:
            resources = route.resources
        elif isinstance(resources, dict):
            resources = ResourceRequirements.model_validate(resources)
        result = Result(
            method=method, topic=topic, site=site, resources=resources,
            task_info=task_info or {},
        )  # fmt: skip
        result.stamp(Stamp.CREATED)
        result.inputs = self.data.pack(result, args, kwargs)
        result.sizes.inputs = len(result.inputs)
        result.stamp(Stamp.SERIALIZED)
        self._send(result)
        return result.task_id

    def _send(self, result: Result) -> None:
        assert result.site is not None
        with self._in_flight_lock:
            self._in_flight[result.task_id] = result
        assert self.journal is not None
        self.journal.record("submitted", _brief(result))
        try:
            future = self.transports[result.site].submit(
                result, self._functions[result.method]
            )
        except BaseException:
            with self._in_flight_lock:
                self._in_flight.pop(result.task_id, None)
            self.data.abandoned(result)
            raise
        future.add_done_callback(self._on_done)

    def _on_accepted(self, result: Result) -> None:
        """A site's service gave the task its own id: journal it at once."""
        if self.journal is not None:
            self.journal.record(
                "accepted",
                {"task_id": result.task_id, "site": result.site,
                 "remote_id": result.remote_id},
            )  # fmt: skip

    def _on_done(self, future: Future[Result]) -> None:
        """Runs on the transport's thread: retry, or deliver to the topic queue."""
        result = future.result()
        failure = result.failure
        if self._should_retry(result) and failure is not None:
            log.warning("retrying task %s after: %s", result.task_id, failure)
            assert self.journal is not None
            self.journal.record("retried", {**_brief(result), "failure": str(failure)})
            result.retries += 1
            result.success, result.failure = None, None
            try:
                self._send(result)
                return
            except Exception:  # deliver the original failure rather than lose it
                log.exception("could not resubmit task %s", result.task_id)
                result.fail(failure)
        with self._in_flight_lock:
            self._in_flight.pop(result.task_id, None)
        if self.journal is not None:
            self.journal.record("completed", _brief(result))
        self.data.completed(result)
        self._topic(result.topic).put(result)
        self.latency.completed(result)  # after: the thinker need not wait for it

    def _should_retry(self, result: Result) -> bool:
        failure = result.failure
        return (
            self._running
            and failure is not None
            and failure.kind in _RETRYABLE
            and result.retries < self.config.methods[result.method].max_retries
        )

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
        """A snapshot of the tasks submitted and not yet finished."""
        with self._in_flight_lock:
            return list(self._in_flight.values())

    def status(self) -> list[TransportStatus]:
        return [transport.status() for transport in self.transports.values()]

    def transport(self, site: str) -> Transport:
        try:
            return self.transports[site]
        except KeyError:
            raise UnknownSiteError(
                f"unknown site {site!r}: the federation has {sorted(self.sites)}"
            ) from None


def _brief(result: Result) -> dict[str, Any]:
    brief: dict[str, Any] = {
        "task_id": result.task_id,
        "method": result.method,
        "topic": result.topic,
        "site": result.site,
        "retries": result.retries,
    }
    if result.success is not None:
        brief["success"] = result.success
        if result.failure is not None:
            brief["failure"] = str(result.failure)
    return brief
