"""Profile transfer: predict a workload's per-op profile on a target machine from its profile
on an anchor machine (the cross-instance study).

Anchor and target rows are aligned by workload id, which for training workloads is fixed by
(model, dataset, optimizer, batch size). Inputs are log1p of the anchor's op times (ms) and
architecture features; outputs are log1p of the target's op times (ms) and, last, the log of
its end-to-end latency (s). One multi-output estimator is fitted on them and validated by
leaving one model out or on random 80/20 splits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from lenna_core.data.dataset import Dataset, stored_labels, target_label, workload_from_row
from lenna_core.data.store import Store
from lenna_core.errors import LennaError
from lenna_core.learning.features import feature_matrix
from lenna_core.learning.metrics import regression_metrics, summarise
from lenna_core.learning.splits import make_splits
from lenna_core.learning.validation import MIN_ROWS, clone_estimator
from lenna_core.plugins.calls import plugin_call
from lenna_core.plugins.interfaces import optional
from lenna_core.plugins.registry import Registry
from lenna_core.records import Architecture, Target, Workload

LEVELS = ("lenna", "framework")
VALIDATIONS = ("model", "random")


@attrs.frozen
class ProfileVectors:
    """One target's per-op profiles of a source's workloads, keyed by workload id."""

    target: Target
    level: str
    ops: Mapping[str, Mapping[str, float]]
    """Workload id → op → ns per step."""
    end_to_end_ns: Mapping[str, float]
    workloads: Mapping[str, Workload]

    def only(self, ids: Sequence[str]) -> ProfileVectors:
        """The vectors of the workloads ``ids``."""
        return ProfileVectors(self.target, self.level, {i: self.ops[i] for i in ids},
                              {i: self.end_to_end_ns[i] for i in ids},
                              {i: self.workloads[i] for i in ids})

    def matrix_ms(self, ids: Sequence[str], columns: Sequence[str]) -> np.ndarray:
        """Op times in ms, a row per id and a column per op (0 where the op did not run)."""
        return np.array([[self.ops[i].get(c, 0.0) / 1e6 for c in columns] for i in ids],
                        dtype=np.float64).reshape(len(ids), len(columns))


def profile_vectors(store: Store, source: str, target: Target,
                    level: str = "lenna") -> ProfileVectors:
    """The latest profiled successful measurement of each of ``source``'s workloads on
    ``target``: op times at ``level`` ("lenna" ops or "framework" op names) and the
    end-to-end latency (drift-compensated where it was measured so)."""
    if level not in LEVELS:
        raise LennaError(f"unknown profile level {level!r}; choose one of {', '.join(LEVELS)}")
    ops: dict[str, dict[str, float]] = {}
    end_to_end: dict[str, float] = {}
    workloads: dict[str, Workload] = {}
    architectures: dict[str, Architecture] = {}
    for label in stored_labels(store, source, [target]):
        profile = label.measurement.op_profile
        if not profile:
            continue
        key = label.row["workload_id"]
        ops[key] = {op: float(ns) for op, ns in profile[level].items()}
        end_to_end[key] = float(label.latency_ns)
        workloads[key] = workload_from_row(label.row, architectures)
    return ProfileVectors(target, level, ops, end_to_end, workloads)


def top_columns(vectors: ProfileVectors, n: int | None = None) -> list[str]:
    """The ``n`` ops with the largest total time over the workloads, largest first; every op
    with a non-zero total when ``n`` is None."""
    if n is not None and n < 1:
        raise LennaError(f"the number of top op columns must be at least 1, got {n}")
    totals: dict[str, float] = {}
    for ops in vectors.ops.values():
        for op, ns in ops.items():
            totals[op] = totals.get(op, 0.0) + ns
    ranked = sorted((op for op, total in totals.items() if total > 0),
                    key=lambda op: (-totals[op], op))
    return ranked[:n]


def transfer_profiles(registry: Registry, store: Store, source: str, anchor: Target,
                      target: Target, *,
                      features: Sequence[Any], estimator: Any = "random-forest",
                      top_n: int | None = None, level: str = "lenna",
                      validation: str = "model", repeats: int = 5,
                      seed: int = 0) -> dict[str, Any]:
    """Fit ``estimator`` (a multi-output one, by name or instance) from the anchor's profiles
    and ``features`` (featurizers or their names) to the target's profiles and end-to-end
    latency, and validate it by leaving one model out (``"model"``) or on random 80/20
    splits (``"random"``), ``repeats`` times. Returns a JSON-able report."""
    if validation not in VALIDATIONS:
        raise LennaError(f"unknown validation {validation!r}; choose one of "
                         f"{', '.join(VALIDATIONS)}")
    model = _multi_output(registry, estimator)
    featurizers = [registry.create("featurizer", f)
                   if isinstance(f, str) else f for f in features]
    stored = store.targets()
    names = {t.id: target_label(t, stored) for t in (anchor, target)}
    sides = [profile_vectors(store, source, t, level) for t in (anchor, target)]
    for side in sides:
        if not side.ops:
            raise LennaError(f"no per-op profiles of {source} workloads on "
                             f"{names[side.target.id]}; measure them with --profile-runs > 0")
    ids = sorted(set(sides[0].ops) & set(sides[1].ops))
    if len(ids) < MIN_ROWS:
        shared = f"only {len(ids)}" if ids else "none"
        raise LennaError(f"anchor {names[anchor.id]} ({len(sides[0].ops)} profiled {source} "
                         f"workloads) and target {names[target.id]} ({len(sides[1].ops)}) "
                         f"have {shared} in common; at least {MIN_ROWS} are needed")
    anchor_v, target_v = (side.only(ids) for side in sides)
    inputs, outputs = top_columns(anchor_v, top_n), top_columns(target_v, top_n)
    workloads = tuple(target_v.workloads[i] for i in ids)
    feature_names, arch_X = feature_matrix(store, workloads, featurizers)
    X = np.column_stack([np.log1p(anchor_v.matrix_ms(ids, inputs)), arch_X])
    truth_ms = target_v.matrix_ms(ids, outputs)
    latency = np.array([target_v.end_to_end_ns[i] for i in ids]) / 1e9
    Y = np.column_stack([np.log1p(truth_ms), np.log(latency)])
    families = tuple(str(w.architecture.spec.get("model", source)) for w in workloads)
    if validation == "model" and len(set(families)) < 2:
        raise LennaError(f"validation 'model' needs workloads of two models or more; the "
                         f"{len(ids)} in common are all {families[0]}: use 'random'")
    data = Dataset(workloads, latency, (names[target.id],) * len(ids), families)
    splits = make_splits(data, "family" if validation == "model" else "random",
                         repeats=repeats, seed=seed)
    per_split, predictions, tested, predicted_ms = [], [], [], []
    for index, split in enumerate(splits):
        estimator = clone_estimator(model)
        with plugin_call(estimator, "fit"):
            fitted = estimator.fit(X[split.train], Y[split.train])
        with plugin_call(estimator, "predict"):
            predicted = np.asarray(fitted.predict(X[split.test]), dtype=np.float64).reshape(
                len(split.test), Y.shape[1])
        seconds = np.exp(predicted[:, -1])
        per_split.append(regression_metrics(latency[split.test], seconds))
        predictions += [{"workload_id": ids[i], "measured_s": float(latency[i]),
                         "predicted_s": float(p), "split": index}
                        for i, p in zip(split.test, seconds, strict=True)]
        tested.append(split.test)
        predicted_ms.append(np.maximum(np.expm1(predicted[:, :-1]), 0.0))
    metrics = summarise(per_split)
    with plugin_call(model, "get_params"):
        params = model.get_params(deep=False)
    return {
        "source": source, "anchor": names[anchor.id], "target": names[target.id],
        "level": level, "estimator": model.name, "params": params,
        "features": feature_names, "validation": validation,
        "splits": [split.label for split in splits], "rows": len(ids),
        "anchor_only": len(sides[0].ops) - len(ids), "target_only": len(sides[1].ops) - len(ids),
        "input_columns": inputs, "output_columns": outputs,
        "metrics": {k: mean for k, (mean, _) in metrics.items()},
        "metrics_std": {k: std for k, (_, std) in metrics.items()},
        "per_split": per_split,
        "op_metrics": _op_metrics(outputs, truth_ms[np.concatenate(tested)],
                                  np.vstack(predicted_ms)),
        "predictions": predictions,
    }


def _multi_output(registry: Registry, estimator: Any) -> Any:
    """The estimator (instantiated from its name); LennaError unless it is multi-output."""
    if isinstance(estimator, str):
        estimator = registry.create("estimator", estimator)
    if not optional(estimator, "multi_output"):
        able = [n for n in registry.names("estimator")
                if optional(registry.get("estimator", n), "multi_output")]
        raise LennaError(f"estimator {estimator.name} fits one output only; the profile "
                         f"transfer needs a multi-output one: {', '.join(able)}")
    return estimator


def _op_metrics(columns: Sequence[str], truth: np.ndarray,
                predicted: np.ndarray) -> dict[str, dict[str, float]]:
    """MAPE and R² (ms) of each op column over the test rows where it ran."""
    report = {}
    for k, column in enumerate(columns):
        ran = truth[:, k] > 0
        if ran.any():
            metrics = regression_metrics(truth[ran, k], predicted[ran, k])
            report[column] = {"mape": metrics["mape"], "r2": metrics["r2"],
                              "rows": int(ran.sum())}
    return report
