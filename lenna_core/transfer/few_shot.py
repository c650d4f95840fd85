"""A new device from a few measurements: rank a search space on a target from ``shots``
measured architectures and anchor devices measured on up to ``anchor_samples`` each (HELP's
question).

Architectures are matched across devices by their key: the source's ``spec_field`` (the
arch string of a NAS-Bench-201 cell, whatever the task's input shape), else the workload id.
Per repeat, the shots are drawn among the architectures measured on the target and every
anchor; each anchor gets an estimator fitted on its sample (the shots plus random others)
and predicts every architecture; the methods turn that into the target's latencies:

- ``shots``: a model of the target fitted on the shots alone (ridge on the features).
- ``ratio``: the nearest anchor (the smallest variance of log ratios on the shots) scaled
  by the mean ratio, as Habitat scales a measured device's times to another.
- ``mapping``: a ridge regression, on the shots, from every anchor's predicted log latency
  to the target's.
- ``blend``: the mean of ``ratio`` and ``mapping`` in log space, steadier than either when
  no anchor resembles the target; with one shot, ``ratio``; with none, the anchors' mean
  prediction as it is (a ranking, with the anchors' scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from lenna_core.data.dataset import Dataset, load_dataset, resolve_target
from lenna_core.data.store import Store
from lenna_core.errors import LennaError
from lenna_core.learning.metrics import regression_metrics
from lenna_core.plugins.calls import plugin_call
from lenna_core.plugins.interfaces import optional
from lenna_core.plugins.registry import Registry
from lenna_core.progress import progress_bar

METHODS = ("shots", "ratio", "mapping", "blend")
MIN_SHOTS = {"shots": 2, "ratio": 1, "mapping": 2, "blend": 0}
REPORTED = ("spearman", "kendall", "mape", "within_10pct")
MAPPING_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)
"""The ridge penalties ``mapping`` chooses from by leave-one-out error, the smallest of those
that tie (as all do with two shots)."""


@attrs.frozen
class FewShotRequest:
    """What ``lenna transfer --anchors ... --target ... --shots N`` asks."""

    source: str
    anchors: tuple[str, ...]
    target: str
    features: tuple[str, ...] = ()
    source_options: dict[str, Any] = attrs.Factory(dict)
    anchor_samples: int = 900
    shots: int = 10
    repeats: int = 20
    seed: int = 0
    methods: tuple[str, ...] = ("blend",)
    estimator: str = "lightgbm"


def architecture_key(source: Any, workload: Any) -> str:
    """What matches an architecture across devices: the spec field, else the workload id."""
    field = optional(source, "spec_field")
    spec = workload.architecture.spec
    return str(spec[field]) if field and field in spec else workload.id


@attrs.frozen
class _Device:
    """One device's rows by key: log latency and feature row index."""

    name: str
    log_latency: dict[str, float]
    rows: dict[str, int]


def _device(name: str, data: Dataset, source: Any) -> _Device:
    keys = [architecture_key(source, w) for w in data.workloads]
    return _Device(name, dict(zip(keys, np.log(data.latency), strict=True)),
                   {k: i for i, k in enumerate(keys)})


def _check(request: FewShotRequest) -> None:
    unknown = [m for m in request.methods if m not in METHODS]
    if unknown or not request.methods:
        raise LennaError(f"unknown method {', '.join(unknown) or '(none)'}; choose from "
                         f"{', '.join(METHODS)} or all")
    for method in request.methods:
        if request.shots < MIN_SHOTS[method]:
            raise LennaError(f"method {method} needs at least {MIN_SHOTS[method]} shot(s), "
                             f"got --shots {request.shots}")
    if request.target in request.anchors:
        raise LennaError(f"the target {request.target} cannot be one of its own anchors")
    if not request.anchors:
        raise LennaError("give at least one anchor with --anchors")
    if request.repeats < 1 or request.anchor_samples < 1 or request.shots < 0:
        raise LennaError("--repeats and --anchor-samples must be at least 1 and --shots at "
                         "least 0")
    if request.shots > request.anchor_samples:
        raise LennaError(f"--shots {request.shots} exceeds --anchor-samples "
                         f"{request.anchor_samples}: the shots are measured on every anchor")


def few_shot(request: FewShotRequest, registry: Registry, store: Store,
             architectures: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run every repeat of every method on the labels in ``store`` (plugins from
    ``registry``); metrics on the target's unmeasured architectures. ``architectures``
    caches parsed architectures across calls (see load_dataset)."""
    from lenna_core.learning.features import feature_matrix

    _check(request)
    source = registry.create("source", request.source, request.source_options)
    names = request.features or (optional(source, "default_features"),)
    featurizers = [registry.create("featurizer", n)
                   for n in names]
    estimator_cls = registry.get_available("estimator", request.estimator)
    cache = {} if architectures is None else architectures
    devices, matrices = [], []
    for name in (request.target, *request.anchors):
        data = load_dataset(store, source, [resolve_target(store, name)], architectures=cache)
        if len(data) == 0:
            raise LennaError(f"no successful {request.source} measurements on {name}")
        devices.append(_device(name, data, source))
        matrices.append(feature_matrix(store, data.workloads, featurizers)[1])
    target, anchors = devices[0], devices[1:]
    common = sorted(set(target.rows).intersection(*(a.rows for a in anchors)))
    if len(common) < max(request.shots, 1):
        raise LennaError(f"the target and anchors have {len(common)} architecture(s) in "
                         f"common; --shots {request.shots} needs that many measured on all "
                         f"of them ({', '.join(f'{d.name}: {len(d.rows)}' for d in devices)})")
    if len(target.rows) - request.shots < 2:
        raise LennaError(f"target {target.name} has {len(target.rows)} measured "
                         f"architecture(s): nothing is left to predict after {request.shots} "
                         "shots")
    keys = sorted(target.rows)
    X_target = matrices[0][[target.rows[k] for k in keys]]
    y_target = np.array([target.log_latency[k] for k in keys])
    repeats: dict[str, list[dict[str, float]]] = {m: [] for m in request.methods}
    with progress_bar(request.repeats, f"few-shot on {target.name}") as advance:
        for r in range(request.repeats):
            rng = np.random.default_rng(request.seed + r)
            shots = list(rng.choice(common, size=request.shots, replace=False))
            predicted = np.column_stack([
                _anchor_predictions(estimator_cls, anchor, matrix, shots,
                                    request.anchor_samples, rng, X_target)
                for anchor, matrix in zip(anchors, matrices[1:], strict=True)])
            shot_rows = np.array([keys.index(k) for k in shots], dtype=int)
            test = np.setdiff1d(np.arange(len(keys)), shot_rows)
            for method in request.methods:
                estimate = METHOD_FUNCTIONS[method](predicted, shot_rows, y_target, X_target)
                metrics = regression_metrics(np.exp(y_target[test]), np.exp(estimate[test]))
                repeats[method].append({k: metrics[k] for k in REPORTED})
            advance(f"repeat {r + 1}")
    return {
        "target": request.target, "anchors": list(request.anchors), "shots": request.shots,
        "anchor_samples": request.anchor_samples, "architectures": len(keys),
        "features": list(names), "estimator": request.estimator,
        "methods": {m: {**{k: float(np.mean([x[k] for x in runs])) for k in REPORTED},
                        "repeats": runs} for m, runs in repeats.items()},
    }


def _anchor_predictions(estimator_cls: type, anchor: _Device, matrix: np.ndarray,
                        shots: Sequence[str], budget: int, rng: np.random.Generator,
                        X_target: np.ndarray) -> np.ndarray:
    """The anchor's estimator, fitted on the shots and random others (``budget`` in all),
    predicting log latency for every target architecture."""
    others = sorted(set(anchor.rows) - set(shots))
    extra = rng.choice(others, size=min(len(others), budget - len(shots)), replace=False)
    sample = [*shots, *extra]
    with plugin_call(estimator_cls, "__init__"):
        estimator = estimator_cls()
    X = matrix[[anchor.rows[k] for k in sample]]
    y = np.array([anchor.log_latency[k] for k in sample])
    if optional(estimator, "target_transform") != "log":
        raise LennaError(f"estimator {estimator.name} fits latency, not its log; choose "
                         "another with --estimator")
    with plugin_call(estimator, "fit"):
        fitted = estimator.fit(X, y)
    with plugin_call(estimator, "predict"):
        return np.asarray(fitted.predict(X_target))


def _shots_only(predicted: np.ndarray, shots: np.ndarray, y: np.ndarray,
                X: np.ndarray) -> np.ndarray:
    intercept, coef = ridge(X[shots], y[shots], 1.0)
    return intercept + X @ coef


def _ratio(predicted: np.ndarray, shots: np.ndarray, y: np.ndarray,
           X: np.ndarray) -> np.ndarray:
    ratios = y[shots, None] - predicted[shots]
    nearest = int(np.argmin(ratios.var(axis=0) if len(shots) > 1 else np.abs(ratios[0])))
    return predicted[:, nearest] + ratios[:, nearest].mean()


def _mapping(predicted: np.ndarray, shots: np.ndarray, y: np.ndarray,
             X: np.ndarray) -> np.ndarray:
    errors = np.array([ridge_loo_error(predicted[shots], y[shots], a) for a in MAPPING_ALPHAS])
    alpha = MAPPING_ALPHAS[np.flatnonzero(errors <= errors.min() * (1 + 1e-9))[0]]
    intercept, coef = ridge(predicted[shots], y[shots], alpha)
    return intercept + predicted @ coef


def _blend(predicted: np.ndarray, shots: np.ndarray, y: np.ndarray,
           X: np.ndarray) -> np.ndarray:
    if len(shots) == 0:
        return predicted.mean(axis=1)
    if len(shots) == 1:
        return _ratio(predicted, shots, y, X)
    return (_ratio(predicted, shots, y, X) + _mapping(predicted, shots, y, X)) / 2


def ridge(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[float, np.ndarray]:
    """Ridge regression with an unpenalised intercept: (intercept, coefficients), solved as
    scikit-learn's Ridge solves it (in the samples' space when there are more features)."""
    mean_x, mean_y = X.mean(axis=0), y.mean()
    centred, target = X - mean_x, y - mean_y
    n, p = centred.shape
    if p > n:
        coef = centred.T @ np.linalg.solve(centred @ centred.T + alpha * np.eye(n), target)
    else:
        coef = np.linalg.solve(centred.T @ centred + alpha * np.eye(p), centred.T @ target)
    return float(mean_y - mean_x @ coef), coef


def ridge_loo_error(X: np.ndarray, y: np.ndarray, alpha: float) -> float:
    """The mean squared leave-one-out error of :func:`ridge`, in closed form from the
    eigenvectors of the Gram matrix orthogonal to the intercept (as scikit-learn's RidgeCV
    scores an alpha)."""
    n = len(y)
    basis = np.linalg.qr(np.column_stack([np.ones(n), np.eye(n)[:, 1:]]))[0][:, 1:]
    projected = basis.T @ X
    values, vectors = np.linalg.eigh(projected @ projected.T)
    eigenvectors = basis @ vectors
    weights = 1 / (values + alpha)
    residuals = (eigenvectors @ (weights * (eigenvectors.T @ y))) / (eigenvectors**2 @ weights)
    return float(np.mean(residuals**2))


METHOD_FUNCTIONS = {"shots": _shots_only, "ratio": _ratio, "mapping": _mapping,
                    "blend": _blend}
