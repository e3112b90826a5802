"""BaseThinker and its agents against an in-memory federation."""

from __future__ import annotations

import _thread
import logging
import queue
import signal
import threading
import time
from collections import Counter
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from typing import ClassVar

import pytest

from colmena_fx.models import Result
from colmena_fx.models import Stamp
from colmena_fx.thinker import AgentError
from colmena_fx.thinker import BaseThinker
from colmena_fx.thinker import ResourceCounter
from colmena_fx.thinker import TaskClient
from colmena_fx.thinker import agent
from colmena_fx.thinker import event_responder
from colmena_fx.thinker import result_processor
from colmena_fx.thinker import task_submitter
from colmena_fx.thinker.base import _CtrlC
from testing.wait import wait_until


class InMemoryFederation:
    """Runs plain functions in threads and queues their Results per topic."""

    #: Every one made in a test, for `_close_federations` to shut down.
    made: ClassVar[list[InMemoryFederation]] = []

    def __init__(self, **functions: Any) -> None:
        self.functions = functions
        self.topics: defaultdict[str, queue.Queue[Result]] = defaultdict(queue.Queue)
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="in-memory")
        self.submitted: list[str] = []
        self.owed: Counter[str] = Counter()
        self.lock = threading.Lock()
        InMemoryFederation.made.append(self)

    def submit(
        self, method: str, *args: Any, kwargs: dict[str, Any] | None = None,
        topic: str = "default", resources: Any = None,
        task_info: dict[str, Any] | None = None, **options: Any,
    ) -> str:  # fmt: skip
        result = Result(method=method, topic=topic, task_info=task_info or {})
        self.submitted.append(method)
        with self.lock:
            self.owed[topic] += 1

        def run() -> None:
            try:
                result.value = self.functions[method](*args, **(kwargs or {}))
                result.success = True
            except Exception:
                result.success = False
            self.topics[topic].put(result)

        self.pool.submit(run)
        return result.task_id

    def get_result(
        self, topic: str = "default", timeout: float | None = None
    ) -> Result | None:
        try:
            result = self.topics[topic].get(timeout=timeout)
        except queue.Empty:
            return None
        with self.lock:
            self.owed[topic] -= 1
        return result

    def outstanding(self, topic: str | None = None) -> int:
        with self.lock:
            return sum(self.owed.values()) if topic is None else self.owed[topic]

    def processed(self, result: Result) -> None:
        result.stamp(Stamp.PROCESSED)


@pytest.fixture(autouse=True)
def _close_federations() -> Iterator[None]:
    """Shut each test's thread pools down, rather than leave them to the garbage
    collector, whose callbacks could then run in a later test's main thread."""
    yield
    while InMemoryFederation.made:
        InMemoryFederation.made.pop().pool.shutdown(cancel_futures=True)


def test_fake_is_a_task_client() -> None:
    assert isinstance(InMemoryFederation(), TaskClient)


class Campaign(BaseThinker):
    """Keeps 2 simulation slots busy; retrains every 4 results on borrowed slots."""

    def __init__(self, federation: InMemoryFederation, budget: int) -> None:
        super().__init__(federation, ResourceCounter(3, ["sim", "ml"]))
        self.budget = budget
        self.values: list[int] = []
        self.submitted = 0
        self.retrain = threading.Event()
        self.trainings: list[int] = []
        self.ml_slots_seen: list[int] = []

    @agent(startup=True)
    def allocate(self) -> None:
        self.rec.reallocate(None, "sim", 2)
        self.rec.reallocate(None, "ml", 1)

    @task_submitter(task_type="sim")
    def submit_simulation(self) -> None:
        if self.submitted >= self.budget:
            self.rec.release("sim", 1)
            self.done.wait(0.05)  # idle until the last results are in
            return
        self.submitted += 1
        self.federation.submit("square", self.submitted, topic="sim")

    @result_processor(topic="sim")
    def record(self, result: Result) -> None:
        self.rec.release("sim", 1)
        self.values.append(result.value)
        if len(self.values) % 4 == 0:
            self.retrain.set()
        if len(self.values) >= self.budget:
            self.done.set()

    @event_responder(
        event_name="retrain", reallocate_resources=True,
        gather_from="sim", gather_to="ml", disperse_to="sim", max_slots=2,
    )  # fmt: skip
    def train(self) -> None:
        self.federation.submit("square", len(self.values), topic="ml")
        result = self.federation.get_result("ml", timeout=5)
        assert result is not None
        self.trainings.append(result.value)
        # The gatherer moves a sim slot here while training runs (unless the
        # campaign ends first, as it may during the last training).
        wait_until(
            lambda: self.rec.allocated_slots("ml") >= 2 or self.done.is_set(),
            timeout=5,
            what="the gatherer taking a sim slot for training",
        )
        self.ml_slots_seen.append(self.rec.allocated_slots("ml"))


def test_campaign_runs_every_kind_of_agent_to_completion() -> None:
    federation = InMemoryFederation(square=lambda x: (time.sleep(0.01), x * x)[1])
    thinker = Campaign(federation, budget=16)
    start = time.monotonic()
    thinker.run()
    assert time.monotonic() - start < 10
    assert sorted(thinker.values) == [i * i for i in range(1, 17)]
    assert thinker.trainings, "the event responder never ran"
    assert max(thinker.ml_slots_seen) == 2  # one of its own, one gathered
    # Gathered slots were given back once training ended.
    assert thinker.rec.allocated_slots("sim") + thinker.rec.allocated_slots("ml") == 3


class Crashing(BaseThinker):
    def __init__(self, federation: InMemoryFederation, where: str) -> None:
        super().__init__(federation, ResourceCounter(1, ["sim"]))
        self.where = where
        self.listening = threading.Event()

    @agent(startup=True)
    def seed(self) -> None:
        self.rec.reallocate(None, "sim", 1)
        self.federation.submit("square", 3)

    @agent
    def plain(self) -> None:
        if self.where == "agent":
            raise KeyError("plain agent broke")
        self.done.wait()

    @result_processor
    def process(self, result: Result) -> None:
        if self.where == "processor":
            raise ZeroDivisionError("processor broke")

    @task_submitter(task_type="sim")
    def submitter(self) -> None:
        if self.where == "submitter":
            raise RuntimeError("submitter broke")
        self.rec.release("sim", 1)
        self.done.wait(0.05)  # idle until another agent crashes


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("agent", KeyError),
        ("processor", ZeroDivisionError),
        ("submitter", RuntimeError),
    ],
)
def test_a_crashing_agent_ends_the_run_with_its_traceback(
    where: str, error: type[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    federation = InMemoryFederation(square=lambda x: x * x)
    thinker = Crashing(federation, where)
    start = time.monotonic()
    with caplog.at_level(logging.ERROR), pytest.raises(AgentError) as raised:
        thinker.run()
    assert time.monotonic() - start < 5
    assert isinstance(raised.value.__cause__, error)
    assert f"{where} broke" in str(raised.value)
    assert "crashed; stopping the campaign" in caplog.text
    assert f"{where} broke" in caplog.text and "Traceback" in caplog.text
    assert thinker.done.is_set()
    assert not [t for t in threading.enumerate() if t.name.startswith("agent-")]


def test_thinker_without_agents_is_an_error() -> None:
    class Empty(BaseThinker):
        pass

    with pytest.raises(Exception, match="has no agents"):
        Empty(InMemoryFederation()).run()


def test_submitter_without_resource_counter_says_so() -> None:
    class NoCounter(BaseThinker):
        @task_submitter(task_type="sim")
        def go(self) -> None: ...

    with pytest.raises(AgentError, match="needs a ResourceCounter"):
        NoCounter(InMemoryFederation()).run()


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """Ctrl-C handled as Python does by default. A suite started in the background
    by a shell without job control inherits SIGINT ignored, and then no interrupt
    (nor `_thread.interrupt_main`) reaches the main thread at all."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_stops_every_agent_before_run_returns() -> None:
    class Forever(BaseThinker):
        @agent
        def wait(self) -> None:
            self.done.wait()

        @result_processor
        def process(self, result: Result) -> None: ...

    thinker = Forever(InMemoryFederation())
    threading.Timer(0.3, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        thinker.run()
    assert thinker.done.is_set()
    assert not [t for t in threading.enumerate() if t.name.startswith("agent-")]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


class _InterruptsAsItIsCollected:
    """Garbage whose finalizer is where the main thread meets Ctrl-C."""

    def __del__(self) -> None:
        _thread.interrupt_main()
        sum(range(100_000))  # Python code: the interrupt is handled in here


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_handled_inside_a_finalizer_is_not_lost() -> None:
    """Python drops a KeyboardInterrupt raised in a finalizer (a weakref callback
    the collector runs, a `__del__`); the thinker's handler raises nothing there."""
    with _CtrlC() as ctrl_c:
        _InterruptsAsItIsCollected()  # collected at once, in this thread
        assert ctrl_c.received
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_programs_own_ctrl_c_handler_is_left_in_place() -> None:
    calls: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: calls.append(signum))
    try:
        with _CtrlC() as ctrl_c:
            _thread.interrupt_main()
            sum(range(100_000))
        assert calls == [signal.SIGINT] and not ctrl_c.received
    finally:
        signal.signal(signal.SIGINT, previous)
