"""LightGBM estimators: gradient-boosted trees tuned for data sets of ~100 measurements, and
the same trees correcting an additive model of latency."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from lenna_core.api import EstimatorBase, PredictorError
from lenna_lightgbm.model_text import read_booster

MODEL_FILE = "model.txt"
COLUMN_FILE = "model_{}.txt"
ADDITIVE_FILE = "additive.json"
CV_FOLDS = 5
"""Folds of the cross-validation that decides whether trees correct the additive sum."""


class LightGBMEstimator(EstimatorBase):
    """``lightgbm.LGBMRegressor``; the fitted or loaded ``lightgbm.Booster`` is ``booster_``
    (a list of boosters, one per column, for a 2-D target).

    Small leaves and child sizes, row/column subsampling and a low learning rate keep it from
    overfitting ~80 rows; one thread is faster than many on so little data and deterministic.
    """

    name: ClassVar[str] = "lightgbm"
    requires: ClassVar[tuple[str, ...]] = ("lightgbm",)
    extra: ClassVar[str] = "lightgbm"
    multi_output: ClassVar[bool] = True
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "n_estimators": [150, 300, 600], "learning_rate": [0.03, 0.1],
        "num_leaves": [7, 15, 31]}

    def __init__(self, n_estimators: int = 300, learning_rate: float = 0.05,
                 num_leaves: int = 15, min_child_samples: int = 5, subsample: float = 0.8,
                 subsample_freq: int = 1, colsample_bytree: float = 0.8,
                 reg_lambda: float = 0.0, n_jobs: int = 1, random_state: int | None = 0,
                 verbose: int = -1) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fit the boosted trees on features ``X`` and target ``y``."""
        return self._boost(*self._validate_fit(X, y), self.n_estimators)

    def _boost(self, X: np.ndarray, y: np.ndarray, rounds: int) -> Self:
        """Fit ``rounds`` trees per target column."""
        import lightgbm

        params = {**self.get_params(), "n_estimators": rounds}

        def booster(column: np.ndarray) -> Any:
            return lightgbm.LGBMRegressor(**params).fit(X, column).booster_

        self.booster_ = [booster(c) for c in y.T] if y.ndim == 2 else booster(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict the target for each row of ``X``."""
        X = self._validate_predict(X)
        if isinstance(self.booster_, list):
            return np.column_stack([b.predict(X) for b in self.booster_])
        return self.booster_.predict(X)

    def save(self, directory: Path) -> None:
        """Write the booster as LightGBM text to ``model.txt`` (``model_<k>.txt`` per column
        of a 2-D target)."""
        boosters = self.booster_ if isinstance(self.booster_, list) else [self.booster_]
        names = _model_files(len(boosters)) if isinstance(self.booster_, list) else [MODEL_FILE]
        for name, booster in zip(names, boosters, strict=True):
            (Path(directory) / name).write_text(booster.model_to_string(), encoding="ascii")

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self:
        """Read ``model.txt``, or ``model_0.txt``, ``model_1.txt``, ... for a 2-D target; a
        directory with both, or a file that is malformed, raises PredictorError."""
        directory = Path(directory)
        columns = 0
        while (directory / COLUMN_FILE.format(columns)).is_file():
            columns += 1
        single = (directory / MODEL_FILE).is_file()
        if single and columns:
            raise PredictorError(f"estimator {cls.name}: {directory} holds both {MODEL_FILE} "
                                 f"and {COLUMN_FILE.format(0)}; a bundle holds one or the other")
        if not single and not columns:
            raise PredictorError(f"estimator {cls.name}: {directory / MODEL_FILE} not found")
        estimator = cls(**params)
        if single:
            estimator.booster_ = read_booster(directory / MODEL_FILE)
        else:
            estimator.booster_ = [read_booster(directory / name)
                                  for name in _model_files(columns)]
        first = estimator.booster_[0] if columns else estimator.booster_
        estimator.n_features_in_ = first.num_feature()
        return estimator


def _model_files(columns: int) -> list[str]:
    return [COLUMN_FILE.format(k) for k in range(columns)]


class AdditiveLightGBMEstimator(LightGBMEstimator):
    """An additive model of latency corrected by boosted trees where they help.

    Latency adds up over ops, so a linear model of latency itself (not its log) on per-op
    features (one-hot ops per edge, counts, MACs) captures most of it; LightGBM then learns
    the log of what the sum misses. The trees are kept only if 5-fold cross-validation on
    the training rows finds they lower that error: on NAS-Bench-201's 900 cells they do
    (ONNX Runtime, PyTorch Mobile), on ~80 measured ResNets they would learn the labels'
    noise, and the sum alone predicts better.
    """

    name: ClassVar[str] = "additive-lightgbm"
    multi_output: ClassVar[bool] = False

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fit the sum on ``exp(y)`` by least squares, then the trees on the log residual if
        they help."""
        X, y = self._validate_fit(X, y)
        latency = np.exp(y)
        design = np.column_stack([X, np.ones(len(X))])
        solution, *_ = np.linalg.lstsq(design, latency, rcond=None)
        self.additive_ = {"coef": solution[:-1].tolist(), "intercept": float(solution[-1]),
                          "floor": float(0.05 * latency.min())}
        residual = y - self._log_sum(X)
        rounds = self.n_estimators if self._trees_help(X, residual) else 1
        return self._boost(X, residual, rounds)

    def _trees_help(self, X: np.ndarray, residual: np.ndarray) -> bool:
        """Whether all the trees predict ``residual`` better than one round (a constant
        shift), by cross-validation; with too few rows to tell, they are left out."""
        import lightgbm

        if len(X) < 2 * CV_FOLDS:
            return False
        params = {k: v for k, v in self.get_params().items() if k != "n_estimators"}
        history = lightgbm.cv({**params, "objective": "regression", "metric": "l2"},
                              lightgbm.Dataset(X, residual, params={"verbose": -1}),
                              num_boost_round=self.n_estimators, nfold=CV_FOLDS,
                              stratified=False, seed=self.random_state or 0)
        error = history["valid l2-mean"]
        return error[-1] < error[0]

    def _log_sum(self, X: np.ndarray) -> np.ndarray:
        a = self.additive_
        return np.log(np.maximum(X @ np.array(a["coef"]) + a["intercept"],
                                 a["floor"]))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Log latency: the log of the additive sum plus the trees' correction."""
        X = self._validate_predict(X)
        return self._log_sum(X) + super().predict(X)

    def save(self, directory: Path) -> None:
        """The trees as LightGBM text and the additive part as JSON."""
        super().save(directory)
        (Path(directory) / ADDITIVE_FILE).write_text(json.dumps(self.additive_))

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self:
        """Read the trees and ``additive.json``."""
        path = Path(directory) / ADDITIVE_FILE
        try:
            additive = json.loads(path.read_text())
            additive = {"coef": [float(c) for c in additive["coef"]],
                        "intercept": float(additive["intercept"]),
                        "floor": float(additive["floor"])}
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise PredictorError(f"estimator {cls.name}: cannot read {path}: {exc}") from None
        estimator = super().load(directory, params)
        estimator.additive_ = additive
        return estimator
