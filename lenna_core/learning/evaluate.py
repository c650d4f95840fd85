"""``lenna evaluate``: several estimators fitted on the same splits of one data set, compared
in one table (as the seed studies compared regressors), written as JSON, CSV and plots."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from lenna_core.data.dataset import Dataset
from lenna_core.data.store import Store
from lenna_core.learning.metrics import METRICS
from lenna_core.learning.splits import Split
from lenna_core.learning.tuning import tune
from lenna_core.learning.validation import evaluate_on
from lenna_core.plugins.registry import Registry
from lenna_core.progress import progress_bar
from lenna_core.records import FitReport


@attrs.frozen
class Comparison:
    """The reports of every estimator on one data set and one set of splits."""

    split: str
    rows: int
    features: tuple[str, ...]
    dropped_isomorphic: int
    reports: dict[str, FitReport]
    best: Any = None
    """(fitted estimator, featurizers, feature names, predictor info) of the best estimator,
    fitted on every row; None for a device split."""

    def to_dict(self) -> dict[str, Any]:
        """``{"estimators": {NAME: {metric: mean, metric_std: std, ...}}, ...}``."""
        return {
            "split": self.split, "rows": self.rows, "features": len(self.features),
            "dropped_isomorphic": self.dropped_isomorphic,
            "estimators": {
                name: {**{k: mean for k, (mean, _) in r.metrics.items()},
                       **{f"{k}_std": std for k, (_, std) in r.metrics.items()},
                       "params": dict(r.params)}
                for name, r in self.reports.items()},
        }


def compare(data: Dataset, X: np.ndarray, feature_names: Sequence[str],
            estimators: Sequence[Any], splits: Sequence[Split], description: str, *,
            tune_budget: int | None = None, tuned: bool = False, seed: int = 0) -> Comparison:
    """Fit every estimator on every split (tuning each on its training rows if ``tuned``)."""
    ids = [w.architecture.id for w in data.workloads]
    pairs = [(s.train, s.test) for s in splits]
    reports = {}
    tuner = partial(tune, budget=tune_budget, seed=seed) if tuned else None
    with progress_bar(len(estimators), "fitting estimators") as advance:
        for estimator in estimators:
            report = evaluate_on(estimator, X, data.latency, ids, pairs, description,
                                 tuner=tuner)
            reports[estimator.name] = report
            advance(f"{estimator.name}: within ±10% {report.metrics['within_10pct'][0]:.1%}")
    return Comparison(description, len(data), tuple(feature_names), data.dropped_isomorphic,
                      reports)


def write_outputs(comparison: Comparison, out: Path) -> list[Path]:
    """``comparison.csv``, ``comparison.json``, the plots and, when there is one, the best
    estimator's predictor bundle; returns the paths written."""
    from lenna_core.learning.plotting import plot_comparison
    from lenna_core.learning.predictor import save_predictor

    out.mkdir(parents=True, exist_ok=True)
    table = out / "comparison.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["estimator", *METRICS, *(f"{m}_std" for m in METRICS)])
        for name, report in comparison.reports.items():
            writer.writerow([name, *(report.metrics[m][0] for m in METRICS),
                             *(report.metrics[m][1] for m in METRICS)])
    summary = out / "comparison.json"
    summary.write_text(json.dumps(comparison.to_dict(), indent=2, default=str))
    written = [table, summary, *plot_comparison(comparison.reports, out)]
    if comparison.best is not None:
        estimator, featurizers, names, info = comparison.best
        save_predictor(out / "predictor", estimator, featurizers, names, info)
        written.append(out / "predictor")
    return written


@attrs.frozen
class EvaluationRequest:
    """What ``lenna evaluate`` compares: the data, the estimators and the splits."""

    source: str
    targets: tuple[str, ...]
    features: tuple[str, ...]
    estimators: tuple[str, ...]
    source_options: dict[str, Any] = attrs.Factory(dict)
    split: str = "random"
    train_size: int | None = None
    repeats: int = 5
    seed: int = 0
    holdout: tuple[str, ...] = ()
    family_key: str = "model"
    anchors: int = 10
    tune: bool = False
    tune_budget: int | None = None


def evaluate_request(request: EvaluationRequest, registry: Registry, store: Store
                     ) -> Comparison:
    """Load the data set from ``store``, featurize it, split it and compare the estimators
    (plugins from ``registry``)."""
    from lenna_core.data.dataset import load_dataset, resolve_target
    from lenna_core.errors import LennaError
    from lenna_core.learning.features import feature_matrix
    from lenna_core.learning.splits import anchor_rows, device_embedding, make_splits

    source = registry.create("source", request.source, request.source_options)
    featurizers = [registry.create("featurizer", name) for name in request.features]
    estimators = [registry.create("estimator", name) for name in request.estimators]
    if not featurizers or not estimators:
        raise LennaError("give at least one featurizer with --features and one estimator "
                         "with --estimators")
    if request.tune_budget is not None and request.tune_budget < 1:
        raise LennaError(f"--tune-budget must be at least 1, got {request.tune_budget}")
    targets = [resolve_target(store, name) for name in request.targets]
    data = load_dataset(store, source, targets, family_key=request.family_key)
    if len(data) == 0:
        raise LennaError(f"no successful {request.source} measurements on "
                         f"{', '.join(request.targets)} in {store.db}")
    splits = make_splits(data, request.split, repeats=request.repeats, seed=request.seed,
                         train_size=request.train_size, holdout=request.holdout,
                         anchors=request.anchors)
    names, X = feature_matrix(store, data.workloads, featurizers)
    if request.split == "device":
        device_names, device_X = device_embedding(data, anchor_rows(data, request.anchors,
                                                                    request.seed))
        names, X = [*names, *device_names], np.column_stack([X, device_X])
    size = len(splits[0].train)
    description = (f"{request.split} split x {request.repeats} ({size} training rows, "
                   f"{len(splits[0].test)} test rows in the first)")
    comparison = compare(data, X, names, estimators, splits, description,
                         tune_budget=request.tune_budget, tuned=request.tune,
                         seed=request.seed)
    return attrs.evolve(comparison, best=_fit_best(comparison, estimators, featurizers, X,
                                                   data, targets, request))


def _fit_best(comparison: Comparison, estimators: Sequence[Any], featurizers: Sequence[Any],
              X: np.ndarray, data: Dataset, targets: Sequence[Any],
              request: EvaluationRequest) -> Any:
    """The estimator with the most predictions within ±10%, fitted on every row (a predictor
    needs one target, so none for a device split)."""
    from lenna_core.learning.predictor import bundle_info
    from lenna_core.learning.validation import fit_target

    if request.split == "device":
        return None
    name = max(comparison.reports,
               key=lambda n: comparison.reports[n].metrics["within_10pct"][0])
    estimator = next(e for e in estimators if e.name == name)
    if request.tune:
        estimator = tune(estimator, X, data.latency, budget=request.tune_budget,
                         seed=request.seed)
    target = targets[0]
    info = bundle_info(data.workloads[0], request.source, request.source_options, target, X,
                       data.latency, comparison.reports[name])
    return fit_target(estimator, X, data.latency), featurizers, comparison.features, info
