"""Hyperparameter search (``--tune``): each estimator's declared grid, scored by K-fold MAPE
on the training rows only, so the test rows of a split never choose the parameters."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from lenna_core.learning.validation import clone_estimator, fit_target, predict_target
from lenna_core.plugins.calls import PluginFailed, plugin_call
from lenna_core.plugins.interfaces import optional

FOLDS = 3


def grid_points(grid: dict[str, list[Any]], budget: int | None, seed: int
                ) -> list[dict[str, Any]]:
    """Every combination of the grid, or ``budget`` of them drawn at random."""
    keys = sorted(grid)
    points = [dict(zip(keys, values, strict=True))
              for values in itertools.product(*(grid[k] for k in keys))]
    if budget is not None and budget < len(points):
        chosen = np.random.default_rng(seed).choice(len(points), size=budget, replace=False)
        points = [points[i] for i in sorted(chosen)]
    return points


def cross_validated_mape(estimator: Any, X: np.ndarray, latency: np.ndarray, seed: int
                         ) -> float:
    """Mean MAPE over ``FOLDS`` folds of the rows."""
    folds = np.array_split(np.random.default_rng(seed).permutation(len(latency)), FOLDS)
    errors = []
    for k, test in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != k])
        model = fit_target(clone_estimator(estimator), X[train], latency[train])
        errors.append(np.mean(np.abs(predict_target(model, X[test]) / latency[test] - 1)))
    return float(np.mean(errors))


def tune(estimator: Any, X: np.ndarray, latency: np.ndarray, *, budget: int | None = None,
         seed: int = 0) -> Any:
    """A clone of ``estimator`` with the grid point of lowest cross-validated MAPE (the
    estimator itself when it declares no grid, there are too few rows to fold, or no grid
    point can be fitted)."""
    grid = optional(estimator, "param_grid")
    if not grid or len(latency) < 2 * FOLDS:
        return estimator
    with plugin_call(estimator, "get_params"):
        base = estimator.get_params(deep=False)
    candidates = []
    for point in grid_points(grid, budget, seed):
        candidate = clone_estimator(estimator)
        with plugin_call(candidate, "set_params"):
            candidates.append(candidate.set_params(**{**base, **point}))
    scores = [_score(c, X, latency, seed) for c in candidates]
    if not np.isfinite(scores).any():
        return estimator
    return candidates[int(np.argmin(scores))]


def _score(candidate: Any, X: np.ndarray, latency: np.ndarray, seed: int) -> float:
    """The candidate's cross-validated MAPE; infinite for a grid point that cannot fit these
    rows (more neighbours than a fold has, say)."""
    try:
        return cross_validated_mape(candidate, X, latency, seed)
    except PluginFailed as failed:
        if isinstance(failed.error, ValueError | ArithmeticError | np.linalg.LinAlgError):
            return float("inf")
        raise
