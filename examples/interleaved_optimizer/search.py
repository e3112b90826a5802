"""Where to look next: candidate points, the acquisition, and the simulation queue.

These are the thinker's decisions, kept apart from its threads so they can be read
(and tested) on their own. Candidates mix uniform draws over the box (exploration)
with draws around the best points so far (exploitation); the surrogate scores them
by lower confidence bound; and the queue keeps the best-scored ones, thinned so that
the two workers do not spend consecutive simulations on nearly the same point.
"""

from __future__ import annotations

import threading

import numpy as np

from examples.interleaved_optimizer.functions import BOUND

#: Weight of the standard deviation in the lower confidence bound mean - kappa * std.
KAPPA = 1.5
#: Share of the candidates drawn around the best points rather than uniformly.
LOCAL_SHARE = 0.5
#: Spread of the local draws, in the units of the search box.
LOCAL_SIGMA = 0.5


def random_points(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """`n` points uniform in the search box."""
    return rng.uniform(-BOUND, BOUND, size=(n, dim))


def candidates(
    rng: np.random.Generator, n: int, dim: int, best_points: np.ndarray
) -> np.ndarray:
    """`n` candidates: uniform ones, and Gaussian draws around `best_points`."""
    n_local = int(n * LOCAL_SHARE) if len(best_points) else 0
    uniform = random_points(rng, n - n_local, dim)
    if not n_local:
        return uniform
    centers = best_points[rng.integers(len(best_points), size=n_local)]
    local = centers + rng.normal(scale=LOCAL_SIGMA, size=(n_local, dim))
    return np.vstack([uniform, np.clip(local, -BOUND, BOUND)])


def lower_confidence_bound(
    mean: np.ndarray, std: np.ndarray, kappa: float = KAPPA
) -> np.ndarray:
    """The acquisition to minimize: optimistic about points the model knows little."""
    return np.asarray(mean) - kappa * np.asarray(std)


def select(
    points: np.ndarray, scores: np.ndarray, size: int, min_distance: float
) -> np.ndarray:
    """Up to `size` points in order of score, none within `min_distance` of another."""
    chosen: list[np.ndarray] = []
    for index in np.argsort(scores):
        point = points[index]
        if all(np.linalg.norm(point - other) >= min_distance for other in chosen):
            chosen.append(point)
            if len(chosen) == size:
                break
    return np.array(chosen).reshape(-1, points.shape[1])


class SimulationQueue:
    """The points waiting to be simulated, best first; replaced after each retrain.

    When it runs dry (before the first model, or if retraining lags far behind) it
    hands out uniform random points, so a free worker never waits for the model.
    """

    def __init__(self, rng: np.random.Generator, dim: int) -> None:
        self._rng = rng
        self._dim = dim
        self._points: list[np.ndarray] = []
        self._lock = threading.Lock()

    def pop(self) -> tuple[np.ndarray, bool]:
        """The next point, and whether the surrogate chose it (False: random)."""
        with self._lock:
            if self._points:
                return self._points.pop(0), True
            return random_points(self._rng, 1, self._dim)[0], False

    def replace(self, points: np.ndarray) -> None:
        with self._lock:
            self._points = list(points)

    def __len__(self) -> int:
        with self._lock:
            return len(self._points)
