"""Feature tables: featurize workloads once, keep the values in the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from lenna_core.errors import LennaError
from lenna_core.plugins.calls import plugin_call
from lenna_core.plugins.interfaces import Featurizer
from lenna_core.records import Workload

if TYPE_CHECKING:  # the store (SQLAlchemy) is not needed to name features
    from lenna_core.data.store import Store


def named_features(featurizer: str, values: Mapping[str, float]) -> dict[str, float]:
    """A featurizer's values named ``featurizer.feature``, as every feature table names them."""
    return {f"{featurizer}.{key}": float(value) for key, value in values.items()}


def workload_features(store: Store, workload: Workload,
                      featurizers: Sequence[Featurizer]) -> dict[str, float]:
    """All featurizers' values for one workload, named ``featurizer.feature``."""
    row: dict[str, float] = {}
    for featurizer in featurizers:
        values = store.get_features(workload, featurizer.name, featurizer.version)
        if values is None:
            with plugin_call(featurizer, "featurize"):
                values = {k: float(v) for k, v in featurizer.featurize(workload).items()}
            store.add_features(workload, featurizer.name, featurizer.version, values)
        row.update(named_features(featurizer.name, values))
    return row


def feature_matrix(store: Store, workloads: Sequence[Workload],
                   featurizers: Sequence[Featurizer]) -> tuple[list[str], np.ndarray]:
    """Feature names (sorted) and a float64 matrix with one row per workload."""
    rows = [workload_features(store, w, featurizers) for w in workloads]
    names = sorted(set().union(*rows)) if rows else []
    for workload, row in zip(workloads, rows, strict=True):
        missing = set(names) - set(row)
        if missing:
            raise LennaError(f"featurizers gave workload {workload.architecture.id} no "
                             f"{', '.join(sorted(missing)[:3])}; their feature sets must not vary")
    return names, np.array([[row[n] for n in names] for row in rows], dtype=np.float64)
