"""EnsembleEstimator: choose the best k member estimators on validation data, then average
their predictions or stack them with non-negative weights (the GSoC study's proposal).

Members are any installed estimators with the log target, found by name in the registry.
The bundle keeps each member in its own format under ``member_<i>/`` and the choice in
``ensemble.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from lenna_core.api import EstimatorBase, LennaError, PredictorError, estimator_class, optional

STATE_FILE = "ensemble.json"
METHODS = ("average", "stack")


def _member_classes(members: str) -> list[type]:
    names = [m.strip() for m in members.split(",") if m.strip()]
    if not names or "ensemble" in names:
        raise LennaError(f"ensemble members must be a comma list of other estimators, "
                         f"got {members!r}")
    classes = [estimator_class(name) for name in names]
    for cls in classes:
        if optional(cls, "target_transform") != "log":
            raise LennaError(f"ensemble member {cls.name} fits latency itself, not its log; "
                             "leave it out of --members")
    return classes


def _mape(log_true: np.ndarray, log_predicted: np.ndarray) -> float:
    return float(np.mean(np.abs(np.exp(log_predicted - log_true) - 1)))


class EnsembleEstimator(EstimatorBase):
    """Fits every member on a training part, keeps the ``k`` with the lowest validation MAPE,
    refits them on all rows, and combines them in log space: ``average`` with equal weights,
    ``stack`` with non-negative least-squares weights fitted on the validation predictions."""

    name: ClassVar[str] = "ensemble"
    param_grid: ClassVar[dict[str, list[Any]]] = {"k": [2, 3, 4], "method": list(METHODS)}

    def __init__(self, members: str = "ridge,knn,random-forest,lightgbm,mlp", k: int = 3,
                 method: str = "average", validation_fraction: float = 0.25,
                 random_state: int = 0) -> None:
        self.members = members
        self.k = k
        self.method = method
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Choose, weight and refit the members on features ``X`` and log latency ``y``."""
        from scipy.optimize import nnls

        if self.method not in METHODS:
            raise LennaError(f"ensemble method must be one of {', '.join(METHODS)}, "
                             f"got {self.method!r}")
        classes = _member_classes(self.members)
        if not 1 <= int(self.k) <= len(classes):
            raise LennaError(f"ensemble k must be between 1 and the {len(classes)} members, "
                             f"got {self.k}")
        X, y = self._validate_fit(X, y, min_samples=4)  # two to train and two to choose on
        order = np.random.default_rng(self.random_state).permutation(len(y))
        n_val = min(len(y) - 2, max(2, round(len(y) * self.validation_fraction)))
        val, train = order[:n_val], order[n_val:]
        held_out = {cls: cls().fit(X[train], y[train]).predict(X[val]) for cls in classes}
        self.validation_mape_ = {cls.name: _mape(y[val], p) for cls, p in held_out.items()}
        chosen = sorted(classes, key=lambda c: self.validation_mape_[c.name])[:int(self.k)]
        if self.method == "stack":
            weights, _ = nnls(np.column_stack([held_out[c] for c in chosen]), y[val])
            if weights.sum() <= 0:
                weights = np.ones(len(chosen))
        else:
            weights = np.ones(len(chosen))
        self.weights_ = weights / weights.sum()
        self.estimators_ = [cls().fit(X, y) for cls in chosen]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The weighted combination of the chosen members' log-latency predictions."""
        X = self._validate_predict(X)
        return np.column_stack([e.predict(X) for e in self.estimators_]) @ self.weights_

    def save(self, directory: Path) -> None:
        """Each member under ``member_<i>/``; names, params and weights in ``ensemble.json``."""
        entries = []
        for index, (estimator, weight) in enumerate(zip(self.estimators_, self.weights_,
                                                        strict=True)):
            where = Path(directory) / f"member_{index}"
            where.mkdir()
            estimator.save(where)
            entries.append({"name": estimator.name, "weight": float(weight),
                            "params": estimator.get_params(deep=False)})
        state = {"members": entries, "validation_mape": self.validation_mape_}
        (Path(directory) / STATE_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self:
        """Load every member with its own ``load``; PredictorError if anything is missing."""
        path = Path(directory) / STATE_FILE
        try:
            state = json.loads(path.read_text())
            entries = state["members"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise PredictorError(f"estimator {cls.name}: cannot read {path}: {exc}") from None
        if not isinstance(entries, list) or not entries or not all(
                isinstance(e, dict) and isinstance(e.get("name"), str)
                and isinstance(e.get("params"), dict)
                and isinstance(e.get("weight"), (int, float)) for e in entries):
            raise PredictorError(f"estimator {cls.name}: {path} must list members, each with "
                                 "a name, params and a weight")
        estimator = cls(**params)
        estimator.estimators_ = [
            estimator_class(entry["name"]).load(
                Path(directory) / f"member_{index}", entry["params"])
            for index, entry in enumerate(entries)]
        estimator.weights_ = np.array([entry["weight"] for entry in entries])
        estimator.n_features_in_ = estimator.estimators_[0].n_features_in_
        estimator.validation_mape_ = state.get("validation_mape", {})
        return estimator
