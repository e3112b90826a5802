"""The thinker of the interleaved optimizer: simulations never wait for the model.

Colmena's AI-in-the-loop pattern, on a federation: one agent keeps both simulation
workers of the CPU site busy from a queue of points; one agent records every result
and, every few new results, asks for a retraining; one agent answers that by
training the surrogate and scoring fresh candidates on the training site, then
re-orders the queue. Retraining runs on another site while the simulations go on
with the queue as it stood, so the workers never idle waiting for a model; the
model only changes which point each worker gets next.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from colmena_fx.exceptions import FederationNotRunningError
from colmena_fx.models import Result
from colmena_fx.thinker import BaseThinker
from colmena_fx.thinker import ResourceCounter
from colmena_fx.thinker import TaskClient
from colmena_fx.thinker import agent
from colmena_fx.thinker import event_responder
from colmena_fx.thinker import result_processor
from colmena_fx.thinker import task_submitter
from examples.interleaved_optimizer import search
from examples.interleaved_optimizer.progress import Snapshot
from examples.interleaved_optimizer.utilization import SlotIdle
from examples.interleaved_optimizer.utilization import WorkerBusy

log = logging.getLogger(__name__)

#: The topic of simulation tasks and results.
SIM_TOPIC = "sim"


@dataclass(frozen=True)
class Settings:
    """The knobs of one campaign."""

    budget: int = 120
    dim: int = 4
    cost_s: float = 0.2
    seed: int = 0
    #: Workers of the simulation site: simulations kept in flight at all times.
    sim_workers: int = 2
    #: Retrain after this many new simulation results.
    retrain_every: int = 8
    #: Candidates scored by the surrogate at each retraining.
    n_candidates: int = 2000
    #: Points kept in the queue after each retraining.
    queue_size: int = 64
    #: Points closer than this are not queued together.
    min_distance: float = 0.25
    #: Best points so far around which local candidates are drawn.
    n_elite: int = 5


@dataclass(frozen=True)
class Retraining:
    """What one retraining took and what it found."""

    points: int
    train_s: float
    infer_s: float
    length_scale: float
    predicted_best: float


class InterleavedOptimizer(BaseThinker):
    """Minimizes Ackley with a GP surrogate retrained while simulations run."""

    def __init__(
        self,
        federation: TaskClient,
        settings: Settings,
        on_progress: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self.slots = ResourceCounter(settings.sim_workers + 1, ["sim", "ml"])
        super().__init__(federation, self.slots)
        self.settings = settings
        self.on_progress = on_progress
        seeds = np.random.SeedSequence(settings.seed).spawn(2)
        # One generator per thread that draws from it: Generators are not threadsafe.
        self.queue = search.SimulationQueue(
            np.random.default_rng(seeds[0]), settings.dim
        )
        self._candidate_rng = np.random.default_rng(seeds[1])
        self.start_training = threading.Event()
        self._state_lock = threading.Lock()
        self.xs: list[np.ndarray] = []
        self.ys: list[float] = []
        self.best_x: np.ndarray | None = None
        self.best_y = math.inf
        self.submitted = 0
        self.finished = 0
        self.failed = 0
        self.from_model = 0
        self.retrainings: list[Retraining] = []
        self._since_training = 0
        self._training = False
        self.busy = WorkerBusy(settings.sim_workers)
        self.idle = SlotIdle()
        #: When the agents started (ns since the epoch, the workers' clock here).
        self.started_ns = time.time_ns()
        #: Simulation slots held by tasks of an earlier client (`resume_from`).
        self._held_by_resumed = 0
        #: Training and inference tasks of an earlier client: their results would
        #: answer a retraining that did not ask for them.
        self._stale: set[str] = set()
        #: When the earlier client's first task was created, if resumed.
        self._resumed_from_ns: int | None = None

    # -- resuming ----------------------------------------------------------------------

    def resume_from(self, taken: list[Result], pending: list[Result]) -> None:
        """Rebuild the state of an earlier client of the run, before `run`.

        `taken` are the results it processed (`Federation.resumed`), replayed in
        their order; `pending` its tasks still to come back
        (`Federation.resumed_pending`): each simulation among them holds a slot
        until its result is recorded, as if this client had submitted it.
        """
        for result in taken:
            if result.topic == SIM_TOPIC:
                self.busy.add(result)
                with self._state_lock:
                    self._record(result)
        created = [e.time_ns for r in taken for e in r.timeline.events[:1]]
        self._resumed_from_ns = min(created, default=None)
        sims = [r for r in pending if r.topic == SIM_TOPIC]
        self._stale = {r.task_id for r in pending if r.topic != SIM_TOPIC}
        with self._state_lock:
            self.submitted = self.finished + len(sims)
        self._held_by_resumed = min(len(sims), self.settings.sim_workers)
        if self._held_by_resumed:
            self.slots.reallocate(None, "sim", self._held_by_resumed)
            self.slots.acquire("sim", self._held_by_resumed)
        log.info(
            "resumed: %d simulations recorded, %d still to come back",
            self.finished, len(sims),
        )  # fmt: skip
        self._finish_if_complete()  # all of them may have come back already

    # -- simulations -------------------------------------------------------------------

    @agent(startup=True)
    def allocate(self) -> None:
        """Give the simulations one slot per worker, and the training site one."""
        self.started_ns = self._resumed_from_ns or time.time_ns()
        free = self.settings.sim_workers - self._held_by_resumed
        for _ in range(free):
            self.idle.freed()  # before the submitter can fill them
        self.slots.reallocate(None, "ml", 1)
        self.slots.reallocate(None, "sim", free)

    @task_submitter(task_type="sim", n_slots=1)
    def submit_simulation(self) -> None:
        """Fill a free simulation slot with the best point in the queue."""
        with self._state_lock:
            if self.submitted >= self.settings.budget:
                return  # the slot stays taken: nothing more to simulate
            self.submitted += 1
            index = self.submitted
        x, chosen = self.queue.pop()
        info = {"x": x.tolist(), "index": index, "from_model": chosen}
        if self._submit(
            "simulate", x, self.settings.cost_s, topic=SIM_TOPIC, task_info=info
        ):
            self.idle.filled()

    @result_processor(topic=SIM_TOPIC)
    def record_simulation(self, result: Result) -> None:
        """Record a result, free its slot, and ask for retraining when it is due."""
        self.slots.release("sim", 1)
        self.idle.freed()
        self.busy.add(result)
        with self._state_lock:
            self._record(result)
            due = (
                self._since_training >= self.settings.retrain_every
                and not self._training
                and self.finished < self.settings.budget
            )
            snapshot = self._snapshot()
        if not result.success and not self.done.is_set():  # else: interrupted
            log.warning(
                "simulation %s failed, going on without it: %s",
                result.task_info.get("index"),
                result.failure,
            )
        if due:
            self.start_training.set()
        if self.on_progress is not None:
            self.on_progress(snapshot)
        self._finish_if_complete()

    def _record(self, result: Result) -> None:
        """With the state lock held: count a simulation and learn from its value."""
        self.finished += 1
        if result.success:
            x = np.asarray(result.task_info["x"])
            y = float(result.value)
            self.xs.append(x)
            self.ys.append(y)
            self.from_model += bool(result.task_info.get("from_model"))
            if y < self.best_y:
                self.best_x, self.best_y = x, y
            self._since_training += 1
        else:
            self.failed += 1

    # -- the surrogate -----------------------------------------------------------------

    @event_responder(event_name="start_training")
    def retrain(self) -> None:
        """Train on the training site, score candidates there, re-order the queue."""
        with self._state_lock:
            if (
                self._training
                or len(self.ys) < 2
                or self.finished >= self.settings.budget
                or self.done.is_set()
            ):
                return  # nothing new to learn, or too late to use it
            self._training = True
            self._since_training = 0
            x = np.array(self.xs)
            y = np.array(self.ys)
        try:
            with self._ml_slot() as held:
                if held:
                    self._retrain(x, y)
        finally:
            with self._state_lock:
                self._training = False
                again = (
                    self._since_training >= self.settings.retrain_every
                    and self.finished < self.settings.budget
                )
            if again:  # results piled up while we trained: go again at once
                self.start_training.set()
            self._finish_if_complete()

    @contextmanager
    def _ml_slot(self) -> Iterator[bool]:
        """Hold the training site's slot (always free: retrainings never overlap)."""
        held = self.slots.acquire("ml", 1, cancel_if=self.done)
        try:
            yield held
        finally:
            if held:
                self.slots.release("ml", 1)

    def _retrain(self, x: np.ndarray, y: np.ndarray) -> None:
        start = time.monotonic()
        if not self._submit("train", x, y, topic="train"):
            return
        trained = self._wait_for("train")
        if trained is None:
            return  # the campaign was stopped meanwhile
        if not trained.success:
            log.warning(
                "training failed, keeping the current queue: %s", trained.failure
            )
            return
        model = trained.value
        trained_at = time.monotonic()
        elite = x[np.argsort(y)[: self.settings.n_elite]]
        points = search.candidates(
            self._candidate_rng, self.settings.n_candidates, self.settings.dim, elite
        )
        if not self._submit("infer", model, points, topic="infer"):
            return
        inferred = self._wait_for("infer")
        if inferred is None:
            return
        if not inferred.success:
            log.warning(
                "inference failed, keeping the current queue: %s", inferred.failure
            )
            return
        mean, std = inferred.value
        scores = search.lower_confidence_bound(mean, std)
        self.queue.replace(
            search.select(
                points, scores, self.settings.queue_size, self.settings.min_distance
            )
        )
        retraining = Retraining(
            points=len(y),
            train_s=trained_at - start,
            infer_s=time.monotonic() - trained_at,
            length_scale=float(model.length_scale),
            predicted_best=float(np.min(mean)),
        )
        with self._state_lock:
            self.retrainings.append(retraining)
            snapshot = self._snapshot()
        log.info(
            "retrained on %d points in %.0f ms (length scale %.2f), scored %d "
            "candidates in %.0f ms",
            retraining.points,
            retraining.train_s * 1e3,
            retraining.length_scale,
            len(points),
            retraining.infer_s * 1e3,
        )
        if self.on_progress is not None:
            self.on_progress(snapshot)

    def _submit(
        self,
        method: str,
        *args: object,
        topic: str,
        task_info: dict[str, object] | None = None,
    ) -> bool:
        """Submit a task; False if the campaign ended and the sites stopped meanwhile.

        On an interrupt the sites stop while an agent may be between taking a slot
        and submitting: that refusal is expected, not a crash of the campaign.
        """
        try:
            self.federation.submit(method, *args, topic=topic, task_info=task_info)
        except FederationNotRunningError:
            if self.done.is_set():
                return False
            raise
        return True

    def _wait_for(self, topic: str) -> Result | None:
        """The next result of `topic`; None only if the campaign was ended meanwhile.

        A lost site still answers (with a failed result), so this does not hang; the
        timeout only lets an interrupted campaign stop waiting.
        """
        while True:
            result = self.federation.get_result(topic, timeout=1.0)
            if result is not None and result.task_id in self._stale:
                continue  # an earlier client's: not the answer to this request
            if result is not None or self.done.is_set():
                return result

    # -- the end -----------------------------------------------------------------------

    def _finish_if_complete(self) -> None:
        """Done once every simulation of the budget is back and no retraining runs."""
        with self._state_lock:
            complete = self.finished >= self.settings.budget and not self._training
        if complete:
            self.done.set()

    def _snapshot(self) -> Snapshot:
        return Snapshot(
            done=self.finished,
            budget=self.settings.budget,
            best=self.best_y,
            retrains=len(self.retrainings),
            failed=self.failed,
        )
