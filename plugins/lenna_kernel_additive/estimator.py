"""KernelAdditiveEstimator: L(model) = Σ L(kernel), each kernel's latency linear in its
features with non-negative weights (nn-Meter's sum over kernels; the LENNA study's
L(block) = Σ L(op)).

With the ``kernels`` featurizer a row holds, per kernel kind, the count of kernels and their
summed MACs and tensor sizes. A kernel of kind k costs ``w_k·1 + Σ_j w_kj·feature_j``, so
the model's latency is the same weights applied to the row: fitting on whole-model latencies
learns per-kernel costs, and :meth:`KernelAdditiveEstimator.contributions` splits a
prediction into its kernels' shares. Latency is fitted as is (no log): only then do sums add.
Features of any sign are accepted (standardised ones too, inside a scikit-learn pipeline):
the weights stay non-negative, so predicted latency never falls as a feature grows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from lenna_core.api import EstimatorBase, PredictorError

MODEL_FILE = "kernel_additive.json"


class KernelAdditiveEstimator(EstimatorBase):
    """Non-negative least squares of latency on additive features (counts and sums), plus a
    non-negative constant; ``ridge`` shrinks the weights of rarely seen kernel kinds."""

    name: ClassVar[str] = "kernel-additive"
    target_transform: ClassVar[str] = "identity"
    multi_output: ClassVar[bool] = True
    param_grid: ClassVar[dict[str, list[Any]]] = {"ridge": [0.0, 1e-4, 1e-2]}

    def __init__(self, ridge: float = 1e-4) -> None:
        self.ridge = ridge

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fit non-negative weights on features ``X`` for latency ``y`` (seconds)."""
        from scipy.optimize import nnls

        X, y = self._validate_fit(X, y)
        scale = np.abs(X).max(axis=0)
        scale[scale == 0] = 1.0
        design = np.column_stack([X / scale, np.ones(len(X))])
        penalty = np.sqrt(self.ridge * len(X)) * np.eye(design.shape[1])
        stacked = np.vstack([design, penalty])
        columns = y.reshape(len(y), -1)
        solution = np.column_stack([
            nnls(stacked, np.concatenate([c, np.zeros(design.shape[1])]))[0]
            for c in columns.T])
        self.coef_ = solution[:-1] / scale[:, None]
        self.intercept_ = solution[-1]
        self.n_outputs_ = columns.shape[1]
        return self

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Each feature's share of each prediction (rows × features, first output); summed
        over a kernel kind's features it is that kind's latency."""
        return self._validate_predict(X) * self.coef_[:, 0]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Latency (seconds) of each row: the sum of its kernels' latencies."""
        out = self._validate_predict(X) @ self.coef_ + self.intercept_
        return out[:, 0] if self.n_outputs_ == 1 else out

    def save(self, directory: Path) -> None:
        """Write weights and constant as JSON."""
        body = {"coef": self.coef_.tolist(), "intercept": self.intercept_.tolist()}
        (Path(directory) / MODEL_FILE).write_text(json.dumps(body))

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self:
        """Read the JSON written by :meth:`save`."""
        path = Path(directory) / MODEL_FILE
        try:
            body = json.loads(path.read_text())
            coef = np.asarray(body["coef"], dtype=np.float64)
            intercept = np.asarray(body["intercept"], dtype=np.float64)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise PredictorError(f"estimator {cls.name}: cannot read {path}: {exc}") from None
        if coef.ndim != 2 or intercept.shape != (coef.shape[1],):
            raise PredictorError(f"estimator {cls.name}: {path} has malformed weights")
        estimator = cls(**params)
        estimator.coef_, estimator.intercept_ = coef, intercept
        estimator.n_outputs_ = coef.shape[1]
        estimator.n_features_in_ = coef.shape[0]
        return estimator
