"""Fit estimators on repeated random splits and report metrics on the original scale."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lenna_core.errors import LennaError
from lenna_core.learning.metrics import regression_metrics, summarise
from lenna_core.learning.splits import random_splits
from lenna_core.plugins.calls import plugin_call
from lenna_core.plugins.interfaces import optional
from lenna_core.records import FitReport

MIN_ROWS = 5
Tuner = Callable[[object, np.ndarray, np.ndarray], object]
"""Picks an estimator (its hyperparameters) from training rows: see lenna_core.learning.tuning."""


def clone_estimator(estimator: object) -> object:
    """A fresh, unfitted estimator with the same hyperparameters."""
    with plugin_call(estimator, "get_params"):
        params = estimator.get_params(deep=False)
    with plugin_call(estimator, "__init__"):
        return type(estimator)(**params)


def fit_target(estimator: object, X: np.ndarray, latency: np.ndarray) -> object:
    """Fit on the estimator's target transform of latency: log (the default) or identity."""
    log = optional(estimator, "target_transform") == "log"
    target = np.log(latency) if log else latency
    with plugin_call(estimator, "fit"):
        return estimator.fit(X, target)


def predict_target(estimator: object, X: np.ndarray) -> np.ndarray:
    """Latency predictions, back on the original scale."""
    with plugin_call(estimator, "predict"):
        predicted = np.asarray(estimator.predict(X))
    return np.exp(predicted) if optional(estimator, "target_transform") == "log" else predicted


def evaluate(estimator: object, X: np.ndarray, latency: np.ndarray, ids: Sequence[str],
             *, repeats: int = 5, test_fraction: float = 0.2, seed: int = 0,
             tuner: Tuner | None = None) -> FitReport:
    """Refit a clone of ``estimator`` on each of ``repeats`` random splits (those of
    ``lenna evaluate --split random`` for the same seed), at least one row testing."""
    n = len(latency)
    if n < MIN_ROWS:
        raise LennaError(f"only {n} successful measurement(s); at least {MIN_ROWS} are needed "
                         "to fit and evaluate an estimator (raise --n)")
    splits = [(s.train, s.test) for s in
              random_splits(n, repeats, seed, n - max(1, round(n * test_fraction)))]
    description = (f"random {1 - test_fraction:.0%}/{test_fraction:.0%} x {repeats} seeds "
                   f"from {seed}")
    return evaluate_on(estimator, X, latency, ids, splits, description, tuner=tuner)


def evaluate_on(estimator: object, X: np.ndarray, latency: np.ndarray, ids: Sequence[str],
                splits: Sequence[tuple[np.ndarray, np.ndarray]], description: str, *,
                tuner: Tuner | None = None) -> FitReport:
    """Refit a clone of ``estimator`` (or what ``tuner`` picks on the training rows) on each
    (train, test) split; metrics are mean ± std over splits, on the original scale."""
    per_split, predictions = [], []
    for index, (train, test) in enumerate(splits):
        chosen = estimator if tuner is None else tuner(estimator, X[train], latency[train])
        model = fit_target(clone_estimator(chosen), X[train], latency[train])
        predicted = predict_target(model, X[test])
        per_split.append(regression_metrics(latency[test], predicted))
        predictions += [(ids[i], float(latency[i]), float(p), index)
                        for i, p in zip(test, predicted, strict=True)]
    with plugin_call(estimator, "get_params"):
        params = estimator.get_params(deep=False)
    return FitReport(
        estimator=estimator.name,
        params=params,
        split=description,
        metrics=summarise(per_split),
        per_split=tuple(per_split),
        predictions=tuple(predictions),
    )
