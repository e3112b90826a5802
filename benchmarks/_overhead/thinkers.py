"""The thinkers that drive path B, as a Colmena application would.

Path B is "thinker -> federation -> local endpoint -> same engine": its tasks are
submitted and its results consumed by the agents of a `BaseThinker`, in the
agents' threads, with the thinker's own polling and hand-offs in the measured
time. One thinker runs one measurement (they are cheap); the federation under
them is started once per path.

- `BurstThinker`: a startup `@agent` submits `n` tasks as fast as it can while a
  `@result_processor` collects them and ends the campaign when all are back.
- `RoundTripThinker`: one task in flight, the Colmena idiom: a `@task_submitter`
  with the one slot of a `ResourceCounter`, released by the `@result_processor`.

Both time from the first submission to the last result processed, and a watchdog
agent fails the campaign when no result arrives for `timeout_s` seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from colmena_fx.models import Result
from colmena_fx.thinker import BaseThinker
from colmena_fx.thinker import ResourceCounter
from colmena_fx.thinker import TaskClient
from colmena_fx.thinker import agent
from colmena_fx.thinker import result_processor
from colmena_fx.thinker import task_submitter

#: The topic of the benchmark's tasks, and the task type of the round-trip slot.
TOPIC = "bench"
#: How often the watchdog checks for progress, in seconds.
WATCHDOG_S = 1.0

DRIVER = (
    "thinker: burst = @agent(startup) submits, @result_processor collects; "
    "round trip = @task_submitter(n_slots=1), freed by @result_processor"
)


class _BenchThinker(BaseThinker):
    """Runs `n` tasks of `method`, keeps their results, fails when they stall."""

    def __init__(
        self,
        federation: TaskClient,
        method: str,
        n: int,
        timeout_s: float,
        resource_counter: ResourceCounter | None = None,
    ) -> None:
        super().__init__(federation, resource_counter)
        self.method = method
        self.n = n
        self.timeout_s = timeout_s
        self.results: list[Result] = []
        self._last_progress = time.monotonic()

    @agent
    def watchdog(self) -> None:
        while not self.done.wait(WATCHDOG_S):
            if time.monotonic() - self._last_progress > self.timeout_s:
                raise TimeoutError(
                    f"no result within {self.timeout_s:.0f} s; "
                    f"{len(self.results)} of {self.n} back"
                )

    def _received(self, result: Result) -> bool:
        """Keep `result`; once all `n` are back, end the campaign and say so."""
        self.results.append(result)
        self._last_progress = time.monotonic()
        if len(self.results) < self.n:
            return False
        self.done.set()
        return True


class BurstThinker(_BenchThinker):
    """`n` tasks submitted at once by one agent and collected by another."""

    started = 0.0
    finished = 0.0

    @agent(startup=True)
    def submit_all(self) -> None:
        self.started = time.perf_counter()
        for _ in range(self.n):
            self.federation.submit(self.method, topic=TOPIC)

    @result_processor(topic=TOPIC)
    def collect(self, result: Result) -> None:
        if self._received(result):
            self.finished = time.perf_counter()

    @property
    def elapsed(self) -> float:
        """Seconds from the first submission to the last result processed."""
        return self.finished - self.started


@dataclass
class Trip:
    """One round trip as the thinker saw it; `paths` splits it into segments."""

    seconds: float
    start_ns: int
    end_ns: int
    result: Result


class RoundTripThinker(_BenchThinker):
    """`n` tasks one after the other: a one-slot submitter, freed by each result."""

    def __init__(
        self, federation: TaskClient, method: str, n: int, timeout_s: float
    ) -> None:
        slots = ResourceCounter(1, [TOPIC])
        slots.reallocate(None, TOPIC, 1)
        super().__init__(federation, method, n, timeout_s, slots)
        self.trips: list[Trip] = []
        # Not `_started`: a thinker is a `threading.Thread`, whose `_started`
        # event a float would replace (and `threading._after_fork` then fails
        # in every child forked while this thinker is still referenced).
        self._sent_ns = 0
        self._sent_at = 0.0

    @task_submitter(task_type=TOPIC, n_slots=1)
    def submit_one(self) -> None:
        self._sent_ns = time.time_ns()
        self._sent_at = time.perf_counter()
        self.federation.submit(self.method, topic=TOPIC)

    @result_processor(topic=TOPIC)
    def collect(self, result: Result) -> None:
        seconds = time.perf_counter() - self._sent_at
        self.trips.append(Trip(seconds, self._sent_ns, time.time_ns(), result))
        # After the last result `done` is set and the slot kept, so the submitter
        # stops instead of sending one task too many.
        if not self._received(result):
            assert self.rec is not None
            self.rec.release(TOPIC, 1)
