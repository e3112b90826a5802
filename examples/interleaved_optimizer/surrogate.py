"""A Gaussian-process surrogate in pure numpy, small enough to ship as a task value.

The optimizer needs a model that says both where the objective is probably low (the
mean) and where it knows little (the standard deviation), so that the acquisition
can trade the two off. A GP with an RBF kernel gives both in closed form. Its
hyperparameters are chosen by a small grid search on the marginal likelihood, with
the signal variance profiled out analytically, so fitting is a few dozen Cholesky
factorizations of an n x n matrix: milliseconds for the few hundred points of a
campaign, and no dependency beyond numpy on the training site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Length scales tried, in units of the per-dimension spread of the inputs.
LENGTH_SCALES: tuple[float, ...] = tuple(np.geomspace(0.05, 5.0, 15).tolist())
#: Noise variances tried, relative to the signal variance. Even a deterministic
#: objective benefits from a little: it lets the GP smooth over ripples (Ackley's
#: cosine term) that the data are too sparse to resolve.
NOISES: tuple[float, ...] = (1e-6, 1e-4, 1e-2, 1e-1)


@dataclass(frozen=True)
class GaussianProcess:
    """A fitted GP: everything `predict` needs, as plain arrays (pickles small)."""

    x_train: np.ndarray  # standardized training inputs, (n, d)
    alpha: np.ndarray  # (R + noise I)^-1 y, standardized targets, (n,)
    chol: np.ndarray  # lower Cholesky factor of R + noise I, (n, n)
    x_center: np.ndarray  # (d,)
    x_scale: np.ndarray  # (d,)
    y_mean: float
    y_scale: float
    length_scale: float
    noise: float
    signal_var: float
    log_likelihood: float

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the objective at points `x`."""
        z = (np.atleast_2d(np.asarray(x, dtype=float)) - self.x_center) / self.x_scale
        cross = _rbf(z, self.x_train, self.length_scale)  # (m, n)
        mean = cross @ self.alpha
        solved = np.linalg.solve(self.chol, cross.T)  # L^-1 k*, (n, m)
        var = self.signal_var * np.clip(1.0 - np.sum(solved**2, axis=0), 0.0, None)
        return mean * self.y_scale + self.y_mean, np.sqrt(var) * self.y_scale


def _rbf(a: np.ndarray, b: np.ndarray, length_scale: float) -> np.ndarray:
    """The unit-variance RBF kernel matrix between the rows of `a` and `b`."""
    sq = np.sum(a**2, axis=1)[:, None] + np.sum(b**2, axis=1)[None, :] - 2.0 * a @ b.T
    kernel: np.ndarray = np.exp(-0.5 * np.clip(sq, 0.0, None) / length_scale**2)
    return kernel


def _profile_fit(
    sq_dist: np.ndarray, y: np.ndarray, length_scale: float, noise: float
) -> tuple[float, np.ndarray, np.ndarray, float] | None:
    """(log likelihood, Cholesky factor, alpha, signal variance), None if singular.

    With K = s (R + noise I), the likelihood's maximum over s is at
    s = y' (R + noise I)^-1 y / n, which leaves a function of the other two.
    """
    n = len(y)
    matrix = np.exp(-0.5 * sq_dist / length_scale**2) + noise * np.eye(n)
    try:
        chol = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return None
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
    signal_var = max(float(y @ alpha) / n, 1e-12)
    log_det = 2.0 * float(np.sum(np.log(np.diag(chol))))
    log_likelihood = -0.5 * (
        n * np.log(signal_var) + log_det + n * (1 + np.log(2 * np.pi))
    )
    return float(log_likelihood), chol, alpha, signal_var


def fit_gp(
    x: np.ndarray,
    y: np.ndarray,
    length_scales: tuple[float, ...] = LENGTH_SCALES,
    noises: tuple[float, ...] = NOISES,
) -> GaussianProcess:
    """The GP of highest marginal likelihood over the grid, fitted to (x, y)."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    y = np.asarray(y, dtype=float).ravel()
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} targets")
    if len(y) < 2:
        raise ValueError(f"need at least 2 points to fit a GP, got {len(y)}")
    x_center = x.mean(axis=0)
    x_scale = np.maximum(x.std(axis=0), 1e-12)
    z = (x - x_center) / x_scale
    y_mean = float(y.mean())
    y_scale = float(y.std()) or 1.0
    t = (y - y_mean) / y_scale
    sq_dist = np.clip(
        np.sum(z**2, axis=1)[:, None] + np.sum(z**2, axis=1)[None, :] - 2.0 * z @ z.T,
        0.0,
        None,
    )
    best: tuple[float, float, float, np.ndarray, np.ndarray, float] | None = None
    for length_scale in length_scales:
        for noise in noises:
            fit = _profile_fit(sq_dist, t, length_scale, noise)
            if fit is not None and (best is None or fit[0] > best[0]):
                best = (fit[0], length_scale, noise, fit[1], fit[2], fit[3])
    if best is None:
        raise np.linalg.LinAlgError(
            "no kernel of the grid gave a positive-definite matrix"
        )
    log_likelihood, length_scale, noise, chol, alpha, signal_var = best
    return GaussianProcess(
        x_train=z,
        alpha=alpha,
        chol=chol,
        x_center=x_center,
        x_scale=x_scale,
        y_mean=y_mean,
        y_scale=y_scale,
        length_scale=length_scale,
        noise=noise,
        signal_var=signal_var,
        log_likelihood=log_likelihood,
    )
