"""The optimizer's thinker against an in-process task client: fast, and able to fail.

The end-to-end test shows the thinker on real sites; this one drives it through
the same `submit` / `get_result` contract with the task functions run in threads,
so it can make chosen simulations fail and check that the campaign logs them,
goes on, spends its whole budget, keeps both workers busy and still retrains.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from colmena_fx.models import Failure
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.models import Stamp
from examples.interleaved_optimizer import functions
from examples.interleaved_optimizer.progress import Snapshot
from examples.interleaved_optimizer.thinker import InterleavedOptimizer
from examples.interleaved_optimizer.thinker import Settings


class ThreadClient:
    """Runs each method in a thread pool sized like its site; fails chosen tasks."""

    def __init__(self, fail_simulations: set[int]) -> None:
        self.fail_simulations = fail_simulations
        self.pools = {
            "simulate": ThreadPoolExecutor(2),
            "train": ThreadPoolExecutor(1),
            "infer": ThreadPoolExecutor(1),
        }
        self.topics: dict[str, queue.Queue[Result]] = {}
        self.submitted: Counter[str] = Counter()
        self.owed: Counter[str] = Counter()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def submit(
        self,
        method: str,
        *args: Any,
        kwargs: dict[str, Any] | None = None,
        topic: str = "default",
        resources: Any = None,
        task_info: dict[str, Any] | None = None,
        **options: Any,
    ) -> str:
        result = Result(method=method, topic=topic, task_info=task_info or {})
        with self._lock:
            self.submitted[method] += 1
            self.owed[topic] += 1
            number = next(self._numbers) if method == "simulate" else 0
            q = self.topics.setdefault(topic, queue.Queue())
        fail = number in self.fail_simulations

        def run() -> None:
            result.stamp(Stamp.COMPUTE_STARTED)
            try:
                if fail:
                    raise RuntimeError(f"simulation {number} diverged")
                result.value = getattr(functions, method)(*args, **(kwargs or {}))
                result.success = True
            except RuntimeError as exc:
                result.fail(
                    Failure(
                        kind=FailureKind.USER,
                        exception_type=type(exc).__name__,
                        message=str(exc),
                    )
                )
            result.stamp(Stamp.COMPUTE_ENDED)
            q.put(result)

        self.pools[method].submit(run)
        return result.task_id

    def get_result(
        self, topic: str = "default", timeout: float | None = None
    ) -> Result | None:
        with self._lock:
            q = self.topics.setdefault(topic, queue.Queue())
        try:
            result = q.get(timeout=timeout)
        except queue.Empty:
            return None
        with self._lock:
            self.owed[topic] -= 1
        return result

    def outstanding(self, topic: str | None = None) -> int:
        with self._lock:
            return sum(self.owed.values()) if topic is None else self.owed[topic]

    def processed(self, result: Result) -> None:
        result.stamp(Stamp.PROCESSED)

    def shutdown(self) -> None:
        for pool in self.pools.values():
            pool.shutdown()


def test_failed_simulations_are_logged_and_the_campaign_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ThreadClient(fail_simulations={3, 11})
    snapshots: list[Snapshot] = []
    settings = Settings(budget=30, dim=3, cost_s=0.02, seed=5)
    thinker = InterleavedOptimizer(client, settings, on_progress=snapshots.append)
    with caplog.at_level(logging.WARNING):
        thinker.run()
    client.shutdown()

    assert thinker.done.is_set()
    # Exactly the budget was spent: no resubmission, nothing beyond it.
    assert client.submitted["simulate"] == settings.budget
    assert thinker.finished == settings.budget
    assert thinker.failed == 2
    assert len(thinker.ys) == settings.budget - 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("simulation 3 diverged" in m for m in messages), messages
    assert any("simulation 11 diverged" in m for m in messages), messages

    # It retrained (each retraining is one train and one infer) and used the model.
    assert len(thinker.retrainings) >= 2
    assert client.submitted["train"] == client.submitted["infer"]
    assert client.submitted["train"] >= len(thinker.retrainings)
    assert thinker.from_model > 0
    assert thinker.best_y == min(thinker.ys) < thinker.ys[0]
    assert thinker.best_x is not None
    assert functions.ackley(thinker.best_x) == pytest.approx(thinker.best_y)

    # Progress reached the end, and the two workers were rarely left waiting.
    assert any(s.done == settings.budget for s in snapshots)
    assert max(s.failed for s in snapshots) == 2
    assert thinker.busy.report().tasks == settings.budget
    assert thinker.busy.report().fraction > 0.7


def test_a_budget_below_one_retraining_finishes_without_a_model() -> None:
    client = ThreadClient(fail_simulations=set())
    thinker = InterleavedOptimizer(
        client, Settings(budget=5, dim=2, cost_s=0.0, seed=1)
    )
    thinker.run()
    client.shutdown()
    assert thinker.finished == 5
    assert thinker.retrainings == []
    assert client.submitted["train"] == 0
    assert np.isfinite(thinker.best_y)
