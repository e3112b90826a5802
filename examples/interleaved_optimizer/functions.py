"""The three task functions of the campaign, run on the sites' workers.

They are plain, importable, top-level functions (the federation file names them as
`examples.interleaved_optimizer.functions:<name>`), so a worker imports them by
reference instead of unpickling code. `simulate` stands in for an expensive
simulation: the Ackley function, behind a sleep that plays the simulation's cost.
`train` and `infer` are the machine-learning half, which the federation sends to
the training site.
"""

from __future__ import annotations

import time

import numpy as np

from examples.interleaved_optimizer.surrogate import GaussianProcess
from examples.interleaved_optimizer.surrogate import fit_gp

#: The search box is [-BOUND, BOUND] in every dimension. Ackley is usually posed on
#: +/-32.768, where it is flat almost everywhere; +/-5 keeps its ripples and its
#: funnel both visible to a campaign of a hundred simulations.
BOUND = 5.0
DEFAULT_DIM = 4
DEFAULT_COST_S = 0.2


def ackley(
    x: np.ndarray | list[float],
    a: float = 20.0,
    b: float = 0.2,
    c: float = 2.0 * np.pi,
) -> float:
    """Ackley's function in any dimension: many local minima, the global one 0 at 0."""
    x = np.asarray(x, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("ackley needs at least one dimension")
    root_mean_square = np.sqrt(np.mean(x**2))
    mean_cos = np.mean(np.cos(c * x))
    return float(-a * np.exp(-b * root_mean_square) - np.exp(mean_cos) + a + np.e)


def simulate(x: np.ndarray | list[float], cost_s: float = DEFAULT_COST_S) -> float:
    """One "simulation": wait `cost_s` seconds, as a real code would, then score x."""
    if cost_s > 0:
        time.sleep(cost_s)
    return ackley(x)


def train(x: np.ndarray, y: np.ndarray) -> GaussianProcess:
    """Fit the surrogate to every (point, value) simulated so far."""
    return fit_gp(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


def infer(
    model: GaussianProcess, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The surrogate's mean and standard deviation at each candidate point."""
    return model.predict(np.asarray(candidates, dtype=float))
