"""The thinker's decisions without its threads: candidates, acquisition, the queue.

These are what make the campaign better than random search, so they are checked
on their own: candidates stay in the box, the queue is ordered by the acquisition
and thinned, and an empty queue still hands out points so a worker never waits.
"""

from __future__ import annotations

import numpy as np

from examples.interleaved_optimizer import search
from examples.interleaved_optimizer.functions import BOUND


def test_candidates_stay_in_the_box_and_crowd_the_best_points() -> None:
    rng = np.random.default_rng(0)
    best = np.array([[4.9, 4.9, 4.9], [-1.0, 0.0, 1.0]])
    points = search.candidates(rng, 1000, 3, best)
    assert points.shape == (1000, 3)
    assert np.all(np.abs(points) <= BOUND)
    near = np.min(np.linalg.norm(points[:, None, :] - best[None], axis=2), axis=1)
    # Half are local draws (sigma 0.5 around a best point); few uniform ones are.
    assert np.mean(near < 1.5) > 0.4
    assert search.candidates(rng, 10, 3, np.empty((0, 3))).shape == (10, 3)


def test_lower_confidence_bound_rewards_uncertainty() -> None:
    scores = search.lower_confidence_bound(np.array([1.0, 1.0]), np.array([0.0, 1.0]))
    assert scores[1] < scores[0]


def test_select_orders_by_score_and_keeps_points_apart() -> None:
    points = np.array([[0.0, 0.0], [0.1, 0.0], [1.0, 0.0], [2.0, 0.0]])
    scores = np.array([0.0, 0.1, 0.2, 0.3])
    chosen = search.select(points, scores, size=3, min_distance=0.5)
    np.testing.assert_array_equal(chosen, [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert search.select(points, scores, size=2, min_distance=0.0).shape == (2, 2)


def test_queue_hands_out_its_points_in_order_then_random_ones() -> None:
    queue = search.SimulationQueue(np.random.default_rng(0), dim=2)
    queue.replace(np.array([[1.0, 1.0], [2.0, 2.0]]))
    assert len(queue) == 2
    first, chosen = queue.pop()
    np.testing.assert_array_equal(first, [1.0, 1.0])
    assert chosen
    queue.pop()
    point, chosen = queue.pop()
    assert not chosen
    assert point.shape == (2,) and np.all(np.abs(point) <= BOUND)
