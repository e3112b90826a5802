"""Colmena's thinker (colmena/thinker/tests/test_thinker.py) on
`colmena_fx.colmena.thinker`, steering real tasks through Colmena's queues.

Where Colmena's tests sleep and look, these wait for what they look for; where
Colmena spoofs a result on its queues, a task runs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from colmena_fx.colmena.models import Result
from colmena_fx.colmena.queue import PipeQueues
from colmena_fx.colmena.thinker import BaseThinker
from colmena_fx.colmena.thinker import ResourceCounter
from colmena_fx.colmena.thinker import agent
from colmena_fx.colmena.thinker import event_responder
from colmena_fx.colmena.thinker import result_processor
from colmena_fx.colmena.thinker import task_submitter
from colmena_fx.exceptions import UsageError
from colmena_fx.thinker import AgentError
from testing.wait import wait_until

#: Longest wait for anything a test waits for.
WAIT_S = 30


@pytest.fixture
def thinkers(tmp_path: Path, queues: PipeQueues) -> Iterator[list[BaseThinker]]:
    """Thinkers a test starts; stopped afterwards, their gated tasks let go."""
    started: list[BaseThinker] = []
    yield started
    (tmp_path / "gate").touch()
    for thinker in started:
        thinker.done.set()
        if thinker.ident is None:  # run() in the test's thread, or never started
            continue
        with contextlib.suppress(AgentError):  # the test has seen it already
            thinker.join(timeout=WAIT_S)


class ExampleThinker(BaseThinker):
    """Colmena's `ExampleThinker`: one agent of each kind."""

    def __init__(
        self,
        queues: PipeQueues,
        rec: ResourceCounter,
        flag: threading.Event,
        daemon: bool,
    ) -> None:
        super().__init__(queues, rec, daemon=daemon)
        self.flag = flag
        self.func_ran = False
        self.last_value: Any = None
        self.submitted = False
        self.event = threading.Event()
        self.event_responded = False
        self.n_slots = 1
        self.teardown_result: str | None = None

    def prepare_agent(self) -> None:
        if self.agent_name == "setup_teardown":
            self.local_details.payload = "hello"

    def tear_down_agent(self) -> None:
        if self.agent_name == "setup_teardown":
            self.teardown_result = self.local_details.payload + "_goodbye"

    @agent(startup=True)
    def startup_function(self) -> None:
        self.func_ran = True

    @agent(startup=True)
    def setup_teardown(self) -> None:
        """Agent that tests the setup and teardown logic"""

    @agent
    def function(self) -> None:
        self.flag.wait()

    @result_processor
    def process_results(self, result: Result) -> None:
        self.last_value = result.value

    @task_submitter(n_slots="n_slots")  # Look it up from the attribute at runtime
    def submit_task(self) -> None:
        assert self.rec is not None
        assert self.rec.available_slots(None) >= 0
        self.submitted = True

    @event_responder(
        event_name="event", reallocate_resources=True, max_slots="n_slots",
        gather_from=None, gather_to="event", disperse_to="event",
    )  # fmt: skip
    def responder(self) -> None:
        assert self.rec is not None
        self.rec.acquire("event", 1)
        self.event_responded = True
        self.rec.release("event", 1)


def test_detection() -> None:
    agents = ExampleThinker.list_agents()
    assert len(agents) == 6
    assert "function" in [a.__name__ for a in agents]


def test_logger_name(queues: PipeQueues) -> None:
    class SimpleThinker(BaseThinker):
        pass

    # See if the default name holds
    thinker = SimpleThinker(queues)
    assert "SimpleThinker" in thinker.logger.name

    # See if we can provide it its own name
    thinker = SimpleThinker(queues, logger_name="my_logger")
    assert thinker.logger.name == "my_logger"


def test_run(queues: PipeQueues, gate: Path, thinkers: list[BaseThinker]) -> None:
    """Colmena's `test_run`: the behaviour of every kind of agent."""
    flag = threading.Event()
    rec = ResourceCounter(1, ["event"])
    rec.acquire(None, 1)
    th = ExampleThinker(queues, rec, flag, daemon=True)
    thinkers.append(th)
    th.start()

    # The startup functions ran, and the thinker did not stop
    wait_until(lambda: th.func_ran, WAIT_S, "the startup agent running")
    wait_until(lambda: th.teardown_result, WAIT_S, "tear_down_agent running")
    assert th.teardown_result == "hello_goodbye"
    assert not flag.is_set()
    assert th.is_alive()
    assert not th.done.is_set()

    # Result processor: a result arrives and is processed
    queues.send_inputs(4, method="echo")
    wait_until(lambda: th.last_value == 4, WAIT_S, "the result processed")

    # Task submitter: release the slot and it submits
    assert not th.submitted
    rec.release(None, 1)
    wait_until(lambda: th.submitted, WAIT_S, "the submitter called")
    assert th.is_alive()
    assert rec.available_slots(None) == 0

    # Event responder: set the event; its reallocator competes with the
    # submitter for the slot, so free it until the reallocator has it
    assert not th.event.is_set()
    assert not th.event_responded
    th.event.set()

    def responded() -> bool:
        if not th.event_responded and rec.allocated_slots(None) > rec.available_slots(
            None
        ):
            rec.release(None, 1)  # the submitter holds it
        return th.event_responded

    wait_until(responded, WAIT_S, "the event responder answering")
    wait_until(lambda: rec.available_slots("event") == 1, WAIT_S, "slot released")
    assert rec.allocated_slots("event") == 1  # gathered, and dispersed to itself
    assert th.is_alive()
    assert not th.event.is_set()

    # Set the "finish" flag with a task still running: the thinker waits for it
    queues.send_inputs(str(gate), 5, method="wait_for_file")
    flag.set()
    wait_until(th.done.is_set, WAIT_S, "the campaign ending")
    assert th.is_alive()
    gate.touch()
    assert th.queues.wait_until_done(timeout=WAIT_S)
    th.join(timeout=WAIT_S)
    assert not th.is_alive()
    assert th.last_value == 5


def test_exception(queues: PipeQueues) -> None:
    """Colmena's `test_exception`: a thinker stops when an agent raises; here
    `run()` raises it too (Colmena's only logs it)."""

    class BadThinker(BaseThinker):
        def __init__(self, queues: PipeQueues) -> None:
            super().__init__(queues)
            self.flag = threading.Event()

        @event_responder(event_name="flag")
        def do_nothing(self) -> None:
            pass

        @agent(startup=True)
        def fail(self) -> None:
            raise ValueError("startup broke")

    thinker = BadThinker(queues)
    with pytest.raises(AgentError, match="startup broke") as caught:
        thinker.run()
    assert caught.value.agent == "fail"
    assert isinstance(caught.value.error, ValueError)
    assert thinker.done.is_set()


def test_join_raises_after_an_agent_crashed(
    queues: PipeQueues, thinkers: list[BaseThinker]
) -> None:
    class Crashing(BaseThinker):
        @agent
        def waits(self) -> None:
            self.done.wait()

        @agent
        def breaks(self) -> None:
            raise KeyError("broken")

    thinker = Crashing(queues)
    thinkers.append(thinker)
    thinker.start()
    with pytest.raises(AgentError, match="broken") as caught:
        thinker.join(timeout=WAIT_S)
    assert not thinker.is_alive()
    assert isinstance(caught.value.__cause__, KeyError)


def test_result_processor_drains_the_tasks_in_flight(
    queues: PipeQueues, thinkers: list[BaseThinker]
) -> None:
    """Every task sent before `done` reaches the result processor."""

    class Drainer(BaseThinker):
        count = 8

        def __init__(self, queues: PipeQueues) -> None:
            super().__init__(queues)
            self.values: list[int] = []

        @agent
        def submit_all(self) -> None:  # the campaign is done once it returns
            for i in range(self.count):
                self.queues.send_inputs(0.3, i, method="sleep_then", topic="drain")

        @result_processor(topic="drain")
        def collect(self, result: Result) -> None:
            assert result.success, result.failure_info
            self.values.append(result.value)

    thinker = Drainer(queues)
    thinkers.append(thinker)
    thinker.run()
    assert sorted(thinker.values) == list(range(Drainer.count))
    assert queues.active_count == 0


def test_event_responders_of_one_event_each_answer_every_set(
    queues: PipeQueues,
) -> None:
    """Colmena's barrier: each set of an event is answered by every responder,
    even one still busy with the previous set when it comes."""

    class TwoResponders(BaseThinker):
        sets = 5

        def __init__(self, queues: PipeQueues) -> None:
            super().__init__(queues)
            self.event = threading.Event()
            self.slow_may_finish = threading.Event()
            self.seen = {"quick": 0, "slow": 0}

        def answered(self, name: str, count: int) -> None:
            wait_until(
                lambda: self.seen[name] >= count,
                WAIT_S,
                f"the {name} responder answering set {count}",
            )

        @agent
        def driver(self) -> None:
            self.event.set()
            for i in range(1, self.sets + 1):
                self.answered("quick", i)
                if i < self.sets:
                    self.event.set()  # while the slow one still answers set i
                self.slow_may_finish.set()
                self.answered("slow", i)

        @event_responder(event_name="event")
        def quick(self) -> None:
            self.seen["quick"] += 1

        @event_responder(event_name="event")
        def slow(self) -> None:
            assert self.slow_may_finish.wait(WAIT_S)
            self.slow_may_finish.clear()
            self.seen["slow"] += 1

    thinker = TwoResponders(queues)
    thinker.run()
    assert thinker.seen == {"quick": 5, "slow": 5}


class Moves(ResourceCounter):
    """A counter that notes every move of slots between pools."""

    def __init__(self, total_slots: int, task_types: list[str]) -> None:
        super().__init__(total_slots, task_types)
        self.moves: list[tuple[str | None, str | None, int | str]] = []

    def reallocate(
        self,
        task_from: str | None,
        task_to: str | None,
        n_slots: Any,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        moved = super().reallocate(task_from, task_to, n_slots, *args, **kwargs)
        if moved:
            self.moves.append((task_from, task_to, n_slots))
        return moved


def test_event_responder_gathers_in_steps_up_to_max_slots_by_name(
    queues: PipeQueues, thinkers: list[BaseThinker]
) -> None:
    class Retrainer(BaseThinker):
        def __init__(self, queues: PipeQueues, rec: Moves) -> None:
            super().__init__(queues, rec)
            self.ml_slots = 4
            self.retrain = threading.Event()
            self.trained = threading.Event()
            self.trained_on = 0

        @agent(startup=True)
        def allocate(self) -> None:
            assert self.rec is not None
            self.rec.reallocate(None, "sim", 6)
            self.retrain.set()

        @event_responder(
            event_name="retrain", reallocate_resources=True, gather_from="sim",
            gather_to="ml", disperse_to="sim", max_slots="ml_slots", slot_step=2,
        )  # fmt: skip
        def train(self) -> None:
            assert self.rec is not None
            assert self.rec.acquire("ml", self.ml_slots, timeout=WAIT_S)
            self.trained_on = self.rec.allocated_slots("ml")
            self.rec.release("ml", self.ml_slots)
            self.trained.set()

        @agent
        def main(self) -> None:
            assert self.trained.wait(WAIT_S)
            assert self.rec is not None
            wait_until(
                lambda: self.rec is not None and self.rec.allocated_slots("ml") == 0,
                WAIT_S,
                "the gathered slots going back to sim",
            )

    rec = Moves(6, ["sim", "ml"])
    thinker = Retrainer(queues, rec)
    thinkers.append(thinker)
    thinker.run()
    assert thinker.trained_on == 4
    assert rec.moves == [
        (None, "sim", 6),
        ("sim", "ml", 2),
        ("sim", "ml", 2),
        ("ml", "sim", "all"),
    ]
    assert rec.allocated_slots("sim") == 6


def test_task_submitter_with_a_count_of_slots(
    queues: PipeQueues, thinkers: list[BaseThinker]
) -> None:
    class Pairs(BaseThinker):
        def __init__(self, queues: PipeQueues) -> None:
            super().__init__(queues, ResourceCounter(4))
            self.free_after: list[int] = []

        @task_submitter(n_slots=2)
        def submit(self) -> None:
            assert self.rec is not None
            self.free_after.append(self.rec.available_slots(None))

        @agent
        def main(self) -> None:
            wait_until(lambda: len(self.free_after) == 2, WAIT_S, "2 submissions")

    thinker = Pairs(queues)
    thinkers.append(thinker)
    thinker.run()
    assert thinker.free_after == [2, 0]  # the third waits for slots, until done


def test_task_submitter_count_naming_a_bad_attribute(queues: PipeQueues) -> None:
    class Misnamed(BaseThinker):
        batch = "ten"

        @task_submitter(n_slots="batch")
        def submit(self) -> None:
            pass

    with pytest.raises(AgentError, match="n_slots='batch'") as caught:
        Misnamed(queues, ResourceCounter(1)).run()
    assert isinstance(caught.value.error, UsageError)


def test_submitters_done(queues: PipeQueues, thinkers: list[BaseThinker]) -> None:
    class Submitting(BaseThinker):
        def __init__(self, queues: PipeQueues) -> None:
            super().__init__(queues, ResourceCounter(1))
            self.submitted = threading.Event()
            self.during: bool | None = None
            self.values: list[int] = []

        @task_submitter()
        def submit(self) -> None:
            self.queues.send_inputs(1, method="echo")
            self.submitted.set()

        @result_processor
        def got(self, result: Result) -> None:
            self.values.append(result.value)
            assert self.rec is not None
            self.rec.release()

        @agent
        def watch(self) -> None:
            assert self.submitted.wait(WAIT_S)
            self.during = self.submitters_done.is_set()

    thinker = Submitting(queues)
    thinkers.append(thinker)
    thinker.run()
    assert thinker.during is False
    assert thinker.submitters_done.is_set()
    assert thinker.values and set(thinker.values) == {1}  # every one taken

    class NoSubmitters(BaseThinker):
        @agent
        def waits(self) -> None:
            self.done.wait()

    idle = NoSubmitters(queues)
    thinkers.append(idle)
    idle.start()
    wait_until(idle.submitters_done.is_set, WAIT_S, "submitters_done set")
    idle.done.set()
    idle.join(timeout=WAIT_S)
    assert not idle.is_alive()


def test_prepare_and_tear_down_in_each_agent_thread(
    queues: PipeQueues, thinkers: list[BaseThinker]
) -> None:
    kinds = ["starter", "main", "results", "submitter", "responder"]

    class Tracing(BaseThinker):
        def __init__(self, queues: PipeQueues, **options: Any) -> None:
            super().__init__(queues, ResourceCounter(1), **options)
            self.event = threading.Event()
            self.prepared: dict[str, int] = {}
            self.ran: dict[str, int] = {}
            self.torn: dict[str, tuple[int, str]] = {}
            self.loggers: dict[str, str] = {}

        def prepare_agent(self) -> None:
            assert self.agent_name is not None
            self.prepared[self.agent_name] = threading.get_ident()
            self.local_details.mine = self.agent_name

        def tear_down_agent(self) -> None:
            assert self.agent_name is not None
            self.torn[self.agent_name] = (
                threading.get_ident(),
                self.local_details.mine,
            )

        def note(self) -> None:
            assert self.agent_name is not None
            self.ran[self.agent_name] = threading.get_ident()
            self.loggers[self.agent_name] = self.logger.name

        @agent(startup=True)
        def starter(self) -> None:
            self.note()

        @result_processor
        def results(self, result: Result) -> None:
            self.note()

        @task_submitter()
        def submitter(self) -> None:
            self.note()

        @event_responder(event_name="event")
        def responder(self) -> None:
            self.note()

        @agent
        def main(self) -> None:
            self.note()
            self.queues.send_inputs(1, method="echo")
            self.event.set()
            wait_until(lambda: set(self.ran) == set(kinds), WAIT_S, "every agent")

    thinker = Tracing(queues)
    thinkers.append(thinker)
    thinker.run()
    assert set(thinker.prepared) == set(thinker.torn) == set(kinds)
    for name in kinds:
        assert thinker.prepared[name] == thinker.ran[name] == thinker.torn[name][0]
        assert thinker.torn[name][1] == name  # its own local_details
        assert thinker.loggers[name].endswith(f".Tracing.{name}")
    assert thinker.logger.name.endswith(".Tracing")  # outside any agent
    assert thinker.agent_name is None

    named = Tracing(queues, logger_name="campaign")
    thinkers.append(named)
    named.run()
    assert named.loggers["main"] == "campaign.main"
