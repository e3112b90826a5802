"""The items a generator method yields, on their way to the thinker as it runs.

Local sites stream live: the client binds one PULL socket in a private directory
(only this user can reach it, as the local link's ipc sockets) and each task of a
generator method carries its address; the worker shim pushes every item there as
it is yielded (`worker._Yields`), and it reaches the thinker at once as an
intermediate `Result` (`complete=False`). Globus sites cannot: the service
returns one result per task, so their workers keep the items in the reply, and
they are delivered in order just before the final result. So are the items a
local worker could not stream (its function only returned a generator, or the
client did not take them in time).

The reply and the live items travel apart; the reply says how many went live, and
the final result waits (at most `CATCH_UP_S`) until those were delivered, so that
the thinker always sees them in order before it. A retried task streams again
from item 0: its items carry `retries` as counted when they arrive, and the
thinker may see an item again after a retry (README, "Streaming results").
"""

from __future__ import annotations

import inspect
import logging
import pickle
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zmq

from colmena_fx import serialize
from colmena_fx.config import SiteConfig
from colmena_fx.methodroute import MethodRoute
from colmena_fx.models import HOST
from colmena_fx.models import Event
from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import ResourceRequirements
from colmena_fx.models import Result
from colmena_fx.models import Sizes
from colmena_fx.models import Stamp
from colmena_fx.models import Timeline
from colmena_fx.models import Yielded
from colmena_fx.taskcontext import TaskContext

log = logging.getLogger(__name__)

#: The worker's stamp on an intermediate result: when its generator yielded it.
YIELDED = "yielded"
#: Longest wait of a final result for the items streamed before it: they are on
#: this machine's socket already, unless their worker died after its reply.
CATCH_UP_S = 5.0
#: How often the receiver looks up from its socket to see whether it should stop.
_POLL_MS = 100


def yields_when_called(function: Callable[..., Any]) -> bool:
    """Whether calling `function` runs a generator function: a plain one, or an
    object whose class's `__call__` is one (a method wrapper)."""
    if inspect.isgeneratorfunction(function):
        return True
    for klass in type(function).__mro__:
        call = vars(klass).get("__call__")
        if call is not None:
            return inspect.isgeneratorfunction(call)
    return False


def reaches_client(sites: Sequence[SiteConfig]) -> bool:
    """Whether every one of `sites` runs its workers on this machine, where the
    stream's socket file is: local sites not behind a tunnel (`connect_via`)."""
    return all(s.transport == "local" and s.local.connect_via is None for s in sites)


class StreamReceiver:
    """The client's end of the live stream, shared by every local site.

    Started by the first task that streams live; `finish` then orders each
    task's items before its final result.
    """

    def __init__(
        self, deliver: Callable[[Result], None], sites: Mapping[str, SiteConfig]
    ) -> None:
        self._deliver = deliver
        self._sites = sites
        #: Guards `_open` and `_counts`; waited on by `finish`. Held while an item
        #: is delivered, so no item can follow its task's final result.
        self._cond = threading.Condition()
        #: Task id -> its in-flight result, for the tasks that stream live.
        self._open: dict[str, Result] = {}
        #: Task id -> {attempt's token: items delivered}.
        self._counts: dict[str, dict[str, int]] = {}
        self._start_lock = threading.Lock()
        self._stopping = threading.Event()
        self._ctx: zmq.Context[zmq.Socket[Any]] | None = None
        self._socket: zmq.Socket[Any] | None = None
        self._thread: threading.Thread | None = None
        self._directory: Path | None = None
        self.address: str | None = None

    def context(
        self,
        result: Result,
        function: Callable[..., Any],
        route: MethodRoute,
        sites: Sequence[str],
        timeout_s: float | None,
        resources: ResourceRequirements | None = None,
    ) -> TaskContext:
        """The context `result`'s task travels with; opens the task's stream when
        the method streams live on all of `sites`, the task's candidates.

        A task whose `submit` raises after this keeps its (small) entry until
        `stop`: only delivery closes it.
        """
        collect = route.stream is False
        live = (
            not collect
            and (route.stream or yields_when_called(function))
            and reaches_client([self._sites[name] for name in sites])
        )
        address = None
        if live:
            address = self._start()
            with self._cond:
                self._open[result.task_id] = result
        asked = None
        if resources is not None and resources.to_resource_specification():
            asked = resources
        return TaskContext(
            result.task_id, result.method, timeout_s, resources=asked,
            stream_to=address, collect_yields=collect,
        )  # fmt: skip

    def finish(self, result: Result) -> list[Result]:
        """The intermediate results to deliver before `result`, its task's final
        one: the items its reply kept, once those it streamed were delivered."""
        tail, result.tail = result.tail, None
        task_id = result.task_id
        with self._cond:
            if tail is not None and tail.streamed and task_id in self._open:
                token, streamed = tail.token, tail.streamed

                def arrived() -> int:
                    return self._counts.get(task_id, {}).get(token, 0)

                if not self._cond.wait_for(lambda: arrived() >= streamed, CATCH_UP_S):
                    log.warning(
                        "task %s: %d of its %d streamed items did not arrive within "
                        "%g s; its result goes on without them",
                        task_id, streamed - arrived(), streamed, CATCH_UP_S,
                    )  # fmt: skip
            self._open.pop(task_id, None)
            self._counts.pop(task_id, None)
        if tail is None:
            return []
        return [intermediate(result, item) for item in tail.kept]

    # -- the receiving thread --------------------------------------------------------

    def _start(self) -> str:
        with self._start_lock:
            if self.address is not None:
                return self.address
            self._stopping.clear()
            self._ctx = zmq.Context()
            self._socket = self._ctx.socket(zmq.PULL)
            self._socket.linger = 0
            # A private directory: only this user can reach the socket file. Not in
            # the run directory: an ipc path has at most ~100 characters.
            self._directory = Path(tempfile.mkdtemp(prefix="cfx-stream-"))
            address = f"ipc://{self._directory / 'stream.sock'}"
            self._socket.bind(address)
            self._thread = threading.Thread(
                target=self._receive, name="cfx-stream", daemon=True
            )
            self._thread.start()
            self.address = address
            return address

    def _receive(self) -> None:
        socket = self._socket
        assert socket is not None
        while not self._stopping.is_set():
            if not socket.poll(_POLL_MS):
                continue
            while True:
                try:
                    frame = socket.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    self._arrived(frame)
                except Exception:  # one bad item must not end the stream
                    log.exception("cannot deliver a streamed item")

    def _arrived(self, frame: bytes) -> None:
        task_id, token, fields = pickle.loads(frame)
        item = Yielded(*fields)
        with self._cond:
            result = self._open.get(task_id)
        if result is None:  # delivered (or failed) already: too late to show
            log.debug("dropped item %d of finished task %s", item.position, task_id)
            return
        built = intermediate(result, item)  # deserialized outside the lock
        with self._cond:
            if task_id not in self._open:
                return
            self._deliver(built)
            counts = self._counts.setdefault(task_id, {})
            counts[token] = counts.get(token, 0) + 1
            self._cond.notify_all()

    def stop(self) -> None:
        """Stop receiving and remove the socket; the next live task starts anew."""
        with self._start_lock:
            self._stopping.set()
            if self._thread is not None:
                self._thread.join()
            if self._ctx is not None:
                self._ctx.destroy(linger=0)
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
            self._ctx = self._socket = self._thread = self._directory = None
            self.address = None
        with self._cond:
            self._open.clear()
            self._counts.clear()


def intermediate(result: Result, item: Yielded) -> Result:
    """The intermediate result of `item`, yielded by `result`'s task.

    An item that cannot be read here (its class does not import on the client)
    arrives as a failed intermediate: nothing yielded is dropped unseen.
    """
    received = Event(Stamp.RECEIVED, time.time_ns(), HOST)
    made = Result(
        task_id=result.task_id, method=result.method, topic=result.topic,
        site=result.site, remote_id=result.remote_id,
        task_info=dict(result.task_info), resources=result.resources,
        retries=result.retries, complete=False, index=item.position,
        sizes=Sizes(value=len(item.data)),
        timeline=Timeline(events=[Event(YIELDED, item.time_ns, item.host), received]),
    )  # fmt: skip
    if result.keep_inputs:  # each intermediate tells its task's arguments too
        made.keep(result.args, result.kwargs)
    try:
        made.value = serialize.loads(item.data)
        made.success = True
    except Exception as exc:
        made.fail(
            Failure(
                kind=FailureKind.USER,
                exception_type=type(exc).__name__,
                message=f"cannot read item {item.position} of {result.method!r}: {exc}",
                host=HOST,
            )
        )
    return made
