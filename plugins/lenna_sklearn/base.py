"""The shared base of the scikit-learn estimators: fit, predict, and skops save/load.

Scikit-learn is imported inside methods only, so registering the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from lenna_core.api import EstimatorBase, PredictorError, first_line
from lenna_sklearn.structure import structure_problem

MODEL_FILE = "model.skops"

#: The types skops does not trust by default that these estimators' fitted models contain.
#: Scikit-learn estimators, numpy arrays and builtins are trusted by skops itself.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.metrics._dist_metrics.EuclideanDistance64",  # knn
    "sklearn.neighbors._kd_tree.KDTree",  # knn
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",  # mlp (solver="adam")
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",  # mlp (solver="sgd")
    "sklearn.tree._tree.Tree",  # decision-tree, random-forest, adaboost
)


class SklearnEstimator(EstimatorBase):
    """A scikit-learn regressor, optionally behind a StandardScaler, stored as ``model_``.

    Subclasses declare ``name`` and their hyperparameters in ``__init__`` and implement
    :meth:`_regressor`; ``scaled = True`` puts a StandardScaler in front of it. A 2-D target
    is fitted natively, or by one regressor per column where ``native_multi_output`` is off.
    """

    requires: ClassVar[tuple[str, ...]] = ("sklearn", "skops")
    extra: ClassVar[str] = "sklearn"
    scaled: ClassVar[bool] = False
    multi_output: ClassVar[bool] = True
    native_multi_output: ClassVar[bool] = True

    def _regressor(self) -> Any:
        """A new, unfitted scikit-learn regressor built from the hyperparameters."""
        raise NotImplementedError

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Build the scikit-learn model and fit it on features ``X`` and target ``y``."""
        X, y = self._validate_fit(X, y)
        model = self._regressor()
        if np.ndim(y) == 2 and not self.native_multi_output:
            from sklearn.multioutput import MultiOutputRegressor

            model = MultiOutputRegressor(model)
        if self.scaled:
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            model = make_pipeline(StandardScaler(), model)
        self.model_ = model.fit(X, y)
        self._learned()
        return self

    def _learned(self) -> None:
        """Expose what scikit-learn's checks read of the model: its width and, for an
        iterative regressor, its iteration count."""
        self.n_features_in_ = self.model_.n_features_in_
        regressor = self.model_[-1] if self.scaled else self.model_
        if hasattr(regressor, "n_iter_"):
            self.n_iter_ = regressor.n_iter_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict the target for each row of ``X``."""
        X = self._validate_predict(X)
        return self.model_.predict(X)

    def save(self, directory: Path) -> None:
        """Write the fitted model to ``directory / "model.skops"``."""
        import skops.io

        skops.io.dump(self.model_, Path(directory) / MODEL_FILE)

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self:
        """Read ``model.skops``, refusing any type outside :data:`TRUSTED_TYPES` and a model
        that is not this estimator's regressor or whose compiled trees are inconsistent."""
        import skops.io

        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise PredictorError(f"estimator {cls.name}: {path} not found")
        try:
            found = skops.io.get_untrusted_types(file=path)
        except Exception as exc:  # noqa: BLE001 - any parse failure means an unusable file
            raise PredictorError(f"estimator {cls.name}: {path} is not a skops file: "
                                 f"{first_line(exc)}") from None
        unexpected = sorted(set(found) - set(TRUSTED_TYPES))
        if unexpected:
            raise PredictorError(f"estimator {cls.name}: refusing to load {path}: it contains "
                                 f"untrusted types {', '.join(unexpected)}")
        try:
            model = skops.io.load(path, trusted=list(TRUSTED_TYPES))
        except Exception as exc:  # noqa: BLE001 - as above
            raise PredictorError(f"estimator {cls.name}: cannot load {path}: "
                                 f"{first_line(exc)}") from None
        estimator = cls(**params)
        problem = structure_problem(model, type(estimator._regressor()), cls.scaled)
        if problem:
            raise PredictorError(f"model file {path.name} in bundle {path.parent} is "
                                 f"malformed: {problem}")
        estimator.model_ = model
        estimator._learned()
        return estimator
