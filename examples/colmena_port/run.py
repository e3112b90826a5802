"""Colmena's reallocation demo, run on colmena-fx with its imports changed.

The program is Colmena's `demo_apps/reallocation-example/reallocation.py`: a
thinker keeps simulations of the Ackley function busy and, every few results,
borrows one of their slots to re-rank the remaining candidates with a Gaussian
process. Only two things changed (docs/from-colmena.md shows the diff): the
imports (`colmena.` -> `colmena_fx.colmena.`), and the Parsl configuration and
task server, replaced by `federation.yaml` and `FederationTaskServer`. The
Gaussian process is written with numpy here, because scikit-learn is not a
dependency of colmena-fx; it is fitted on a worker, as in the original.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from threading import Event
from threading import Lock

import numpy as np

from colmena_fx.colmena.models import Result
from colmena_fx.colmena.queue.base import ColmenaQueues
from colmena_fx.colmena.queue.python import PipeQueues
from colmena_fx.colmena.task_server import FederationTaskServer
from colmena_fx.colmena.thinker import BaseThinker
from colmena_fx.colmena.thinker import event_responder
from colmena_fx.colmena.thinker import result_processor
from colmena_fx.colmena.thinker import task_submitter
from colmena_fx.colmena.thinker.resources import ResourceCounter

FEDERATION = Path(__file__).with_name("federation.yaml")


def ackley(x: np.ndarray, a: float = 20, b: float = 0.2, c: float = 2 * np.pi,
           mean_rt: float = 0, std_rt: float = 0.1) -> float:  # fmt: skip
    """The Ackley function, taking a lognormal time to run."""
    import time

    import numpy as np

    time.sleep(np.random.lognormal(mean_rt, std_rt))
    x = np.array(x)[None, :]
    d = x.shape[1]
    y = (
        -a * np.exp(-b * np.sqrt(np.sum(x**2, axis=1) / d))
        - np.exp(np.cos(c * x).sum(axis=1) / d) + a + np.e
    )  # fmt: skip
    return float(y[0])


def reprioritize_queue(
    database: list[tuple[np.ndarray, float]],
    queue: list[np.ndarray],
    opt_delay: float = 0,
) -> np.ndarray:
    """Rank the queue by expected improvement under a Gaussian process."""
    import time

    import numpy as np

    time.sleep(opt_delay)
    train_x = np.vstack([x for x, _ in database])
    train_y = np.array([y for _, y in database])
    low, high = train_x.min(axis=0), train_x.max(axis=0)

    def scale(x: np.ndarray) -> np.ndarray:
        return (x - low) / np.where(high > low, high - low, 1.0)

    def kernel(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        return np.exp(-0.5 * ((p[:, None, :] - q[None, :, :]) ** 2).sum(-1) / 0.1)

    mean, std = train_y.mean(), train_y.std() or 1.0
    known = kernel(scale(train_x), scale(train_x)) + 1e-3 * np.eye(len(train_x))
    cross = kernel(scale(np.vstack(queue)), scale(train_x))
    solved = np.linalg.solve(known, cross.T)
    pred_y = mean + std * (cross @ np.linalg.solve(known, (train_y - mean) / std))
    pred_std = std * np.sqrt(np.clip(1 - (cross * solved.T).sum(1), 1e-9, None))
    ei = (train_y.min() - pred_y) / pred_std
    return np.argsort(-1 * ei)


class Thinker(BaseThinker):
    """Tool that monitors results of simulations and calls for new ones"""

    def __init__(self, queues: ColmenaQueues, output_dir: str, dim: int = 2,
                 retrain_after: int = 5, n_guesses: int = 100, batch_size: int = 10,
                 opt_delay: float = 0, search_space_size: int = 1000,
                 runtime: float = 0.0) -> None:  # fmt: skip
        super().__init__(
            queues,
            resource_counter=ResourceCounter(batch_size, task_types=["ml", "sim"]),
        )
        self.retrain_after = retrain_after
        self.n_guesses = n_guesses
        self.queues = queues
        self.batch_size = batch_size
        self.dim = dim
        self.result_path = os.path.join(output_dir, "results.json")
        self.retrain_path = os.path.join(output_dir, "retrain.json")
        self.opt_delay = opt_delay
        self.runtime = runtime

        sampled_space = np.random.uniform(
            size=(search_space_size, self.dim), low=-32.768, high=32.768
        )
        self.task_queue = list(sampled_space)
        self.database: list[tuple[np.ndarray, float]] = []

        self.retrain_size = retrain_after
        self.retrain = Event()
        self.queue_lock = Lock()
        self.done = Event()

        self.rec.reallocate(None, "sim", self.rec.unallocated_slots)

    @task_submitter(task_type="sim", n_slots=1)
    def simulation_dispatcher(self) -> None:
        """Submit simulation tasks"""
        with self.queue_lock:
            self.queues.send_inputs(
                self.task_queue.pop(0), method="ackley", topic="doer",
                input_kwargs={"mean_rt": np.log(self.runtime) if self.runtime else -9},
            )  # fmt: skip

    @result_processor(topic="doer")
    def simulation_receiver(self, result: Result) -> None:
        """Process simulation results"""
        self.logger.info("Received a task result")
        self.database.append((result.args[0], result.value))
        if len(self.database) >= self.n_guesses:
            self.done.set()
        if len(self.database) >= self.retrain_size:
            self.retrain.set()
        self.rec.release("sim", 1, rerequest=False)
        with open(self.result_path, "a") as fp:
            print(result.json(exclude={"inputs"}), file=fp)

    @event_responder(event_name="retrain", reallocate_resources=True,
                     gather_from="sim", gather_to="ml", disperse_to="sim",
                     max_slots=1)  # fmt: skip
    def prioritizer(self) -> None:
        """Perform an active learning step"""
        self.rec.acquire("ml", 1)
        with self.queue_lock:
            self.queues.send_inputs(
                list(self.database), list(self.task_queue), self.opt_delay,
                method="reprioritize_queue", topic="thinker",
            )  # fmt: skip
        result = self.queues.get_result(topic="thinker")
        assert result.success, result.failure_info
        new_order = result.value
        self.rec.release("ml", 1)

        with self.queue_lock:
            current_queue = self.task_queue.copy()
            self.task_queue.clear()
            num_started = len(new_order) - len(current_queue)
            self.logger.info(f"{num_started} jobs have completed in the meanwhile")
            new_order -= num_started
            for i in new_order:
                if i < 0:
                    continue
                self.task_queue.append(current_queue[i])
            self.logger.info(f"New queue contains {len(self.task_queue)} tasks")

        self.retrain_size = len(self.database) + self.retrain_after
        with open(self.retrain_path, "a") as fp:
            print(result.json(exclude={"inputs", "value"}), file=fp)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-guesses", "-n", type=int, default=40)
    parser.add_argument("--num-parallel", "-p", type=int, default=2)
    parser.add_argument("--retrain-wait", type=int, default=10)
    parser.add_argument("--dim", type=int, default=4)
    parser.add_argument("--runtime", type=float, default=0.1)
    parser.add_argument("--opt-delay", type=float, default=0.5)
    parser.add_argument("--federation", type=Path, default=FEDERATION)
    parser.add_argument("--out", type=Path, default=Path("runs"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    queues = PipeQueues(keep_inputs=True, topics=["thinker", "doer"])
    out_dir = args.out / (
        f"reallocate-N{args.num_guesses}-P{args.num_parallel}"
        f"-{datetime.now().strftime('%d%m%y-%H%M%S-%f')}"
    )
    out_dir.mkdir(parents=True)
    with open(out_dir / "params.json", "w") as fp:
        json.dump({k: str(v) for k, v in vars(args).items()}, fp)

    thinker = Thinker(
        queues, str(out_dir), dim=args.dim, n_guesses=args.num_guesses,
        retrain_after=args.retrain_wait, batch_size=args.num_parallel,
        opt_delay=args.opt_delay, runtime=args.runtime,
    )  # fmt: skip
    doer = FederationTaskServer([ackley, reprioritize_queue], queues, args.federation)

    doer.start()
    thinker.start()
    thinker.join()
    queues.send_kill_signal()
    doer.join()
    best = min(y for _, y in thinker.database)
    print(f"{len(thinker.database)} simulations, best {best:.3f}; results in {out_dir}")
    return out_dir


if __name__ == "__main__":
    main()
