"""A minimal third-party LENNA plugin: the ``power-law`` estimator, numpy only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np

from lenna_core.api import EstimatorBase, PredictorError, hookimpl

MODEL_FILE = "power_law.json"


class PowerLawEstimator(EstimatorBase):
    """Ridge least squares of log latency on ``log1p(|x|)``: latency ≈ c · Π (1 + |x_i|)^w_i.

    ``ridge`` penalises the exponents (not the intercept) to keep the fit well-posed when
    features are collinear or rows are few.
    """

    name = "power-law"
    expected_failed_checks = {
        "check_regressors_train": "a power law of |x| cannot fit scikit-learn's linear target "
                                  "of signed features",
    }

    def __init__(self, ridge: float = 1e-3) -> None:
        self.ridge = ridge

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Solve the ridge normal equations; ``y`` is already log latency."""
        X, y = self._validate_fit(X, y)
        features = np.log1p(np.abs(X))
        mean_f, mean_y = features.mean(axis=0), float(np.mean(y))
        centred = features - mean_f
        gram = centred.T @ centred + self.ridge * len(y) * np.eye(features.shape[1])
        self.coef_ = np.linalg.solve(gram, centred.T @ (y - mean_y))
        self.intercept_ = mean_y - float(mean_f @ self.coef_)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict log latency for each row of ``X``."""
        return np.log1p(np.abs(self._validate_predict(X))) @ self.coef_ + self.intercept_

    def save(self, directory: Path) -> None:
        """Write the exponents and intercept as JSON."""
        body = {"coef": self.coef_.tolist(), "intercept": self.intercept_}
        (Path(directory) / MODEL_FILE).write_text(json.dumps(body))

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self:
        """Read the JSON written by :meth:`save`."""
        path = Path(directory) / MODEL_FILE
        try:
            body = json.loads(path.read_text())
            coef = np.asarray(body["coef"], dtype=np.float64)
            intercept = float(body["intercept"])
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise PredictorError(f"estimator power-law: cannot read {path}: {exc}") from None
        if coef.ndim != 1:
            raise PredictorError(f"estimator power-law: {path} has malformed coefficients")
        estimator = cls(**params)
        estimator.coef_, estimator.intercept_ = coef, intercept
        estimator.n_features_in_ = len(coef)
        return estimator


@hookimpl
def lenna_register_estimators() -> list[type]:
    return [PowerLawEstimator]
