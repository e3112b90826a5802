"""The optimizer's task functions and surrogate, in-process: no sites needed.

The campaign is only as good as its objective and its model, so these check the
mathematics directly (Ackley's known minimum, the GP's fit and its uncertainty)
and that a fitted model survives the trip to and from a worker.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from colmena_fx import serialize
from examples.interleaved_optimizer.functions import ackley
from examples.interleaved_optimizer.functions import infer
from examples.interleaved_optimizer.functions import simulate
from examples.interleaved_optimizer.functions import train


@pytest.mark.parametrize("dim", [1, 4, 10])
def test_ackley_is_zero_at_the_origin_and_positive_elsewhere(dim: int) -> None:
    assert ackley(np.zeros(dim)) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(dim)
    values = [ackley(x) for x in rng.uniform(-5, 5, size=(200, dim))]
    assert min(values) > 0.0
    # Integer points are local minima: a step off one goes uphill.
    ones = np.ones(dim)
    assert ackley(ones) < ackley(ones + 0.3) and ackley(ones) < ackley(ones - 0.3)


def test_ackley_matches_a_value_worked_by_hand() -> None:
    # At x = (1, 1): rms = 1, mean cos(2 pi) = 1.
    expected = -20 * np.exp(-0.2) - np.e + 20 + np.e
    assert ackley([1.0, 1.0]) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="at least one dimension"):
        ackley([])


def test_simulate_pays_its_cost_and_returns_ackley() -> None:
    start = time.perf_counter()
    value = simulate([0.5, -0.5, 0.0, 1.0], cost_s=0.05)
    assert time.perf_counter() - start >= 0.05
    assert value == ackley([0.5, -0.5, 0.0, 1.0])


def test_surrogate_fits_a_smooth_1d_function_closely() -> None:
    x = np.linspace(-2, 2, 25)[:, None]
    model = train(x, np.sin(3 * x[:, 0]) + 0.5 * x[:, 0])
    grid = np.linspace(-2, 2, 301)[:, None]
    mean, std = infer(model, grid)
    truth = np.sin(3 * grid[:, 0]) + 0.5 * grid[:, 0]
    assert np.max(np.abs(mean - truth)) < 0.01
    assert mean.shape == std.shape == (301,)
    # Far from the data the model says it does not know.
    _, far_std = infer(model, np.array([[6.0]]))
    assert far_std[0] > 20 * np.max(std)


def test_surrogate_fits_a_2d_function_from_random_points() -> None:
    rng = np.random.default_rng(1)

    def bowl(p: np.ndarray) -> np.ndarray:
        return (p[:, 0] - 0.5) ** 2 + 2 * (p[:, 1] + 0.3) ** 2

    x = rng.uniform(-2, 2, size=(80, 2))
    model = train(x, bowl(x))
    test = rng.uniform(-1.5, 1.5, size=(500, 2))
    mean, std = infer(model, test)
    rmse = float(np.sqrt(np.mean((mean - bowl(test)) ** 2)))
    assert rmse < 0.02 * float(np.std(bowl(test)))
    assert np.all(std >= 0)
    # The minimum of the fitted mean is near the true one.
    assert np.linalg.norm(test[np.argmin(mean)] - [0.5, -0.3]) < 0.3


def test_surrogate_ranks_ackley_candidates_better_than_chance() -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(-5, 5, size=(100, 4))
    model = train(x, [ackley(p) for p in x])
    candidates = rng.uniform(-5, 5, size=(1000, 4))
    mean, _ = infer(model, candidates)
    truth = np.array([ackley(p) for p in candidates])
    correlation = np.corrcoef(mean, truth)[0, 1]
    assert correlation > 0.8


def test_model_survives_serialization_as_a_task_value() -> None:
    x = np.linspace(0, 1, 10)[:, None]
    model = train(x, x[:, 0] ** 2)
    copy = serialize.loads(serialize.dumps(model))
    grid = np.linspace(0, 1, 7)[:, None]
    np.testing.assert_array_equal(infer(copy, grid)[0], infer(model, grid)[0])


def test_train_rejects_mismatched_data() -> None:
    with pytest.raises(ValueError, match="3 inputs but 2 targets"):
        train(np.zeros((3, 2)), np.zeros(2))
