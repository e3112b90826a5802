"""The two ways of running a no-op task that the benchmark compares.

A. `RawEngine`: the site's `GlobusComputeEngine`, started in this process and
   driven by hand from the main thread: `engine.submit(GCFuture, packed_task,
   {})`, then `future.result()`.
B. `ThinkerPath`: a thinker's agents (`thinkers`) -> `Federation.submit` -> the
   CurveZMQ link -> the site's embedded endpoint process -> the same kind of
   engine there, and the `Result` back on the link to the thinker's result
   processor.

Why the baseline is built this way: a Globus Compute engine only accepts tasks
packed the way an endpoint receives them from the SDK, a messagepack `Task` whose
buffer holds the serialized function, args and kwargs. The baseline packs every
task exactly as colmena-fx does, with `gcformat.pack_task` around the same worker
shim (`colmena_fx.worker.execute`, serialized once by `gcformat.FunctionCache`),
and does so inside the timed window, as any client of the engine must. It also
decodes every packed result to the function's return value (messagepack unpack,
`ComputeSerializer.deserialize`, `colmena_fx.serialize.loads`), so both paths end
with the value in the client's hands and run the identical code on the workers.
What B adds over A is then exactly colmena-fx's own cost: the thinker's agents,
the `Result` record and its timeline, per-task argument serialization, routing,
the journal, the wire headers, the extra process hop with CurveZMQ encryption,
and the topic queue.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Protocol

from globus_compute_common import messagepack
from globus_compute_endpoint.engines.base import GCFuture
from globus_compute_sdk.serialize import ComputeSerializer

from benchmarks._overhead.thinkers import DRIVER
from benchmarks._overhead.thinkers import BurstThinker
from benchmarks._overhead.thinkers import RoundTripThinker
from colmena_fx import serialize
from colmena_fx.config import FederationConfig
from colmena_fx.configfiles import load_site
from colmena_fx.federation import Federation
from colmena_fx.latency import hop_durations
from colmena_fx.methodroute import MethodRoute
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.transports import gcformat
from colmena_fx.worker import WorkerReply

#: Seconds to wait for any one task (the first waits for the workers to connect).
TASK_TIMEOUT_S = 120.0

#: Parts of a round trip that both paths can time, from the worker's stamps.
OUT = "out: submit -> worker started"
WORKER = "worker: started -> ended"
BACK = "back: worker ended -> value in hand"


@dataclass
class RoundTrip:
    """One round trip: its duration and where the time went."""

    seconds: float
    #: Named parts in seconds: OUT, WORKER and BACK for both paths, and for
    #: path B every hop of colmena-fx's timeline (`colmena_fx.latency.HOP_NAMES`).
    segments: dict[str, float]


def _segments(start_ns: int, end_ns: int, events: dict[str, int]) -> dict[str, float]:
    """OUT, WORKER and BACK from the worker's stamps, same-host clocks."""
    started = events[Stamp.WORKER_STARTED.value]
    ended = events[Stamp.WORKER_ENDED.value]
    return {
        OUT: (started - start_ns) / 1e9,
        WORKER: (ended - started) / 1e9,
        BACK: (end_ns - ended) / 1e9,
    }


class TaskPath(Protocol):
    """One way of running no-op tasks; `run_dir` is where its engine runs."""

    label: str
    driver: str
    run_dir: Path
    #: Tasks run so far, warm-up included.
    completed: int

    def start(self) -> None: ...

    def burst(self, n: int) -> float:
        """Submit `n` tasks, wait for all; seconds from first submit to last result."""
        ...

    def round_trips(self, n: int) -> list[RoundTrip]:
        """Run `n` tasks one at a time, each submitted once the last is back."""
        ...

    def stop(self) -> None: ...


class RawEngine:
    """Path A: the site's engine started in this process and driven by hand."""

    label = "A raw GlobusComputeEngine"
    driver = "engine.submit from the main thread"

    def __init__(self, site_file: Path, noop: Callable[[], None]) -> None:
        self.site = load_site(site_file)
        self._tmp = tempfile.TemporaryDirectory(
            prefix="cfx-bench-raw-", ignore_cleanup_errors=True
        )
        self.run_dir = Path(self._tmp.name).resolve()
        self.completed = 0
        self._engine: Any = None
        self._serde = ComputeSerializer()
        # Built once, as colmena-fx's transport does: the shim around `noop`.
        self._function_buffer = gcformat.FunctionCache().buffer(noop)
        self._request = serialize.dumps(((), {}, None))

    def start(self) -> None:
        self._engine = self.site.build_engine()
        self._engine.start(endpoint_id=uuid.uuid4(), run_dir=str(self.run_dir))

    def _submit(self) -> GCFuture:
        task_id = str(uuid.uuid4())
        future = GCFuture(task_id)
        packed = gcformat.pack_task(task_id, self._function_buffer, self._request)
        self._engine.submit(future, packed, {})
        return future

    def _reply(self, future: GCFuture) -> WorkerReply:
        """The worker's reply to the task, decoded as colmena-fx decodes it."""
        message = messagepack.unpack(future.result(timeout=TASK_TIMEOUT_S))
        if not isinstance(message, messagepack.message_types.Result):
            raise RuntimeError(f"expected a Result message, got {message!r}")
        if message.is_error:
            raise RuntimeError(f"task {message.task_id} failed: {message.data}")
        reply: WorkerReply = self._serde.deserialize(message.data)
        if not reply.success:
            raise RuntimeError(f"task {message.task_id} failed: {reply.failure}")
        return reply

    def burst(self, n: int) -> float:
        started = time.perf_counter()
        futures = [self._submit() for _ in range(n)]
        values = [serialize.loads(self._reply(future).value) for future in futures]
        elapsed = time.perf_counter() - started
        _check_values(values, n)
        self.completed += n
        return elapsed

    def _round_trip(self) -> RoundTrip:
        start_ns = time.time_ns()
        started = time.perf_counter()
        reply = self._reply(self._submit())
        value = serialize.loads(reply.value)
        elapsed = time.perf_counter() - started
        end_ns = time.time_ns()
        _check_values([value], 1)
        self.completed += 1
        events = {name: time_ns for name, time_ns, _ in reply.events}
        return RoundTrip(elapsed, _segments(start_ns, end_ns, events))

    def round_trips(self, n: int) -> list[RoundTrip]:
        return [self._round_trip() for _ in range(n)]

    def stop(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
            self._engine = None
        self._tmp.cleanup()


class ThinkerPath:
    """Path B: a thinker per measurement, over one federation started once."""

    label = "B colmena-fx (thinker)"
    driver = DRIVER

    def __init__(self, site_file: Path, noop: Callable[[], None]) -> None:
        site = load_site(site_file)
        config = FederationConfig(
            name="bench",
            sites=[site_file],
            methods={noop.__name__: MethodRoute(site=site.name)},
        )
        self._tmp = tempfile.TemporaryDirectory(
            prefix="cfx-bench-fed-", ignore_cleanup_errors=True
        )
        self.federation = Federation(
            config, {site.name: site}, methods=[noop], run_dir=Path(self._tmp.name)
        )
        self.method = noop.__name__
        self.run_dir = Path(self._tmp.name).resolve()
        self.completed = 0
        #: The results of the last burst, as the thinker received them.
        self.last_results: list[Result] = []

    def start(self) -> None:
        self.federation.start()
        assert self.federation.run_dir is not None
        self.run_dir = self.federation.run_dir.resolve()

    def burst(self, n: int) -> float:
        thinker = BurstThinker(self.federation, self.method, n, TASK_TIMEOUT_S)
        thinker.run()
        _check_results(thinker.results, n)
        self.completed += n
        self.last_results = thinker.results
        return thinker.elapsed

    def round_trips(self, n: int) -> list[RoundTrip]:
        thinker = RoundTripThinker(self.federation, self.method, n, TASK_TIMEOUT_S)
        thinker.run()
        _check_results(thinker.results, n)
        self.completed += n
        trips = []
        for trip in thinker.trips:
            timeline = trip.result.timeline.events
            events = {event.name: event.time_ns for event in timeline}
            segments = _segments(trip.start_ns, trip.end_ns, events)
            segments.update(hop_durations(timeline))
            trips.append(RoundTrip(trip.seconds, segments))
        return trips

    def stop(self) -> None:
        self.federation.stop()
        self._tmp.cleanup()


def _check_values(values: list[Any], n: int) -> None:
    if len(values) != n or any(value is not None for value in values):
        raise RuntimeError(f"expected {n} None values from noop, got {values[:3]!r}")


def _check_results(results: list[Result], n: int) -> None:
    failed = [result for result in results if not result.success]
    if len(results) != n or failed:
        raise RuntimeError(
            f"expected {n} successful results, got {len(results)}; "
            f"first failure: {failed[0].failure if failed else None}"
        )
    _check_values([result.value for result in results], n)
