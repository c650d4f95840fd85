"""EstimatorBase: scikit-learn's estimator contract without importing scikit-learn."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Self

import numpy as np

TARGET_TRANSFORMS = ("log", "identity")


class EstimatorBase:
    """Gives ``get_params``/``set_params`` from the ``__init__`` signature, ``score`` (R²) and
    scikit-learn's tags, so that ``sklearn.base.clone``, ``cross_val_score`` and grid search
    work on LENNA estimators.

    Class attributes a subclass may set: ``target_transform`` (``"log"``, the default: fit on
    log latency; ``"identity"`` for models that must add latencies up), ``multi_output``
    (``fit`` accepts a 2-D target, one column per output) and ``param_grid`` (the
    hyperparameter values ``--tune`` searches).
    """

    name: ClassVar[str]
    target_transform: ClassVar[str] = "log"
    multi_output: ClassVar[bool] = False
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    _estimator_type: ClassVar[str] = "regressor"

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            p.name for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for estimator {self.name}; valid: {valid}"
                )
            setattr(self, key, value)
        return self

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """R² of the predictions for ``X`` against ``y`` (averaged over outputs)."""
        y = np.asarray(y, dtype=np.float64)
        residual = ((y - np.asarray(self.predict(X))) ** 2).sum(axis=0)
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1 - residual / np.where(total > 0, total, 1.0)))

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", regressor_tags=RegressorTags(),
                    target_tags=TargetTags(required=True, multi_output=self.multi_output))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
