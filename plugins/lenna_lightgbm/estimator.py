"""LightGBMEstimator: gradient-boosted trees tuned for data sets of ~100 measurements."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from lenna_core.errors import PredictorError
from lenna_core.estimator import EstimatorBase

MODEL_FILE = "model.txt"


class LightGBMEstimator(EstimatorBase):
    """``lightgbm.LGBMRegressor``; the fitted or loaded ``lightgbm.Booster`` is ``booster_``.

    Small leaves and child sizes, row/column subsampling and a low learning rate keep it from
    overfitting ~80 rows; one thread is faster than many on so little data and deterministic.
    """

    name: ClassVar[str] = "lightgbm"
    requires: ClassVar[tuple[str, ...]] = ("lightgbm",)
    extra: ClassVar[str] = "lightgbm"

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
        import lightgbm

        model = lightgbm.LGBMRegressor(**self.get_params())
        self.booster_ = model.fit(X, y).booster_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict the target for each row of ``X``."""
        if not hasattr(self, "booster_"):
            raise PredictorError(f"estimator {self.name} is not fitted; call fit first")
        return self.booster_.predict(X)

    def save(self, directory: Path) -> None:
        """Write the booster as LightGBM text to ``directory / "model.txt"``."""
        self.booster_.save_model(Path(directory) / MODEL_FILE)

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self:
        """Read ``model.txt``; a file LightGBM cannot parse raises PredictorError."""
        import lightgbm

        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise PredictorError(f"estimator {cls.name}: {path} not found")
        try:
            booster = lightgbm.Booster(model_file=path)
        except lightgbm.basic.LightGBMError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            raise PredictorError(f"estimator {cls.name}: cannot parse {path}: {message}"
                                 ) from None
        estimator = cls(**params)
        estimator.booster_ = booster
        return estimator
