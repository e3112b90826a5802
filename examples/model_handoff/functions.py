"""The task functions of the model hand-off campaign, run on the sites' workers.

`train` fits a random-feature network: two fixed random layers (the second one
2048 x 2048, 32 MiB of float64, which makes the model large as real ones are) and a
ridge-regression readout, so training is one linear solve. `screen` runs a model
over a batch of candidate points and returns the most promising ones; `simulate`
scores one point with the same Ackley function as the interleaved optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from examples.interleaved_optimizer.functions import BOUND
from examples.interleaved_optimizer.functions import ackley

#: Width of the hidden layers: the second layer alone is WIDTH^2 float64 values.
WIDTH = 2048


@dataclass
class RandomFeatureModel:
    """mean + tanh(tanh(x W1 + b1) W2 + b2) @ readout, W1, b1, W2, b2 drawn once.

    Fitted to values minus their mean, so that far from the data the prediction
    falls back to the mean rather than to zero.
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    readout: np.ndarray
    mean: float = 0.0

    def features(self, x: np.ndarray) -> np.ndarray:
        hidden = np.tanh(x @ self.w1 + self.b1)
        out: np.ndarray = np.tanh(hidden @ self.w2 / np.sqrt(len(self.b2)) + self.b2)
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        scores: np.ndarray = (
            self.mean + self.features(np.asarray(x, dtype=float) / BOUND) @ self.readout
        )
        return scores

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.w1, self.b1, self.w2, self.b2, self.readout))


def train(
    x: np.ndarray, y: np.ndarray, width: int = WIDTH, ridge: float = 1e-3, seed: int = 0
) -> RandomFeatureModel:
    """Fit the readout to every (point, value) simulated so far."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=float)
    model = RandomFeatureModel(
        w1=rng.normal(size=(x.shape[1], width)) * 2.0,
        b1=rng.uniform(-np.pi, np.pi, size=width),
        w2=rng.normal(size=(width, width)),
        b2=rng.uniform(-1, 1, size=width),
        readout=np.zeros(width),
    )
    y = np.asarray(y, dtype=float)
    model.mean = float(y.mean())
    phi = model.features(x / BOUND)
    gram = phi.T @ phi + ridge * len(x) * np.eye(width)
    model.readout = np.linalg.solve(gram, phi.T @ (y - model.mean))
    return model


def screen(model: RandomFeatureModel, candidates: np.ndarray, keep: int) -> np.ndarray:
    """The `keep` candidates with the lowest predicted value."""
    predicted = model.predict(candidates)
    return np.asarray(candidates)[np.argsort(predicted)[:keep]]


def simulate(x: np.ndarray) -> float:
    """One "simulation" of a point."""
    return ackley(x)
