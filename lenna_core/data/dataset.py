"""Stored labels, and data sets for evaluation: a source's measured workloads on chosen
targets, from the store.

Rows are (workload, target) pairs with their latency. One row is kept per workload and
target (the latest measurement), and, for sources with ``canonical_spec``, one per
isomorphism class, so that copies of one network cannot sit on both sides of a split.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from lenna_core.data.store import (
    Store,
    architecture_from_row,
    measurement_from_row,
    spec_from_row,
)
from lenna_core.errors import LennaError
from lenna_core.plugins.calls import plugin_call
from lenna_core.plugins.interfaces import optional
from lenna_core.records import Architecture, Measurement, Target, Workload


@attrs.frozen
class Dataset:
    """Rows of measured workloads: latency in seconds, the target and family of each row."""

    workloads: tuple[Workload, ...]
    latency: np.ndarray
    targets: tuple[str, ...]
    families: tuple[str, ...]
    dropped_isomorphic: int = 0

    def __len__(self) -> int:
        return len(self.workloads)


@attrs.frozen
class StoredLabel:
    """A usable stored label: its row (see ``Store.measurement_rows``), target, measurement
    and latency in ns."""

    row: Mapping[str, Any]
    target: Target
    measurement: Measurement
    latency_ns: float


def label_latencies(store: Store) -> Callable[[Target, str, Measurement], float | None]:
    """The latency in ns of a measurement on a target under a protocol
    (``Measurement.latency_ns``), each target's reference baseline under each protocol read
    from ``store`` once."""
    baselines: dict[tuple[str, str], float | None] = {}

    def latency(target: Target, protocol: str, measurement: Measurement) -> float | None:
        key = (target.id, protocol)
        if key not in baselines:
            baselines[key] = store.reference_baseline(target, protocol)
        return measurement.latency_ns(baselines[key])

    return latency


def stored_labels(store: Store, source: str, targets: Sequence[Target]
                  ) -> Iterator[StoredLabel]:
    """Every ok measurement of ``source``'s workloads on ``targets`` whose latency is
    positive, in the order stored."""
    by_id = {t.id: t for t in targets}
    latency_of = label_latencies(store)
    for row in store.measurement_rows(source, list(by_id), status="ok", graphs=True):
        target, measurement = by_id[row["target_id"]], measurement_from_row(row)
        latency = latency_of(target, row["protocol"], measurement)
        if latency is not None and latency > 0:
            yield StoredLabel(row, target, measurement, latency)


def target_label(target: Target, targets: Sequence[Target]) -> str:
    """The target's name, with its id when several stored targets share the name."""
    shared = sum(t.name == target.name for t in targets) > 1
    return f"{target.name}@{target.id[:8]}" if shared else target.name


def resolve_target(store: Store, name: str) -> Target:
    """The stored target called ``name`` (its backend or import name, ``name@id``, or an id
    prefix); a LennaError lists what is stored when none or several match."""
    stored = store.targets()
    labels = {target_label(t, stored): t for t in stored}
    if name in labels:
        return labels[name]
    matches = [t for t in stored if t.name == name or t.id.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(labels)) or "none"
    if matches:
        raise LennaError(f"target {name!r} is ambiguous: give one of "
                         f"{', '.join(target_label(t, stored) for t in matches)}")
    raise LennaError(f"unknown target {name!r}; targets in the store: {known}")


def load_dataset(store: Store, source: Any, targets: Sequence[Target], *,
                 family_key: str = "model",
                 architectures: dict[str, Architecture] | None = None) -> Dataset:
    """Every successful measurement of ``source``'s workloads on ``targets``.

    The family of a row is its spec's ``family_key`` field (the model of a training workload
    or a torchvision model), or the source's name. ``architectures`` (id to architecture)
    is a cache shared between calls, so each graph is parsed once.
    """
    stored = store.targets()
    labels = {t.id: target_label(t, stored) for t in targets}
    latest: dict[tuple[str, str, str], tuple[Mapping[str, Any], float]] = {}
    for label in stored_labels(store, source.name, targets):
        key = (label.row["arch_id"], _settings_key(label.row), label.target.id)
        latest[key] = (label.row, label.latency_ns)
    canonical = optional(source, "canonical_spec")
    kept: dict[tuple[str, ...], tuple[Mapping[str, Any], str, float]] = {}
    for (_, settings, target_id), (row, latency) in latest.items():
        spec = spec_from_row(row)
        with plugin_call(source, "canonical_spec"):
            identity = (row["arch_id"] if canonical is None
                        else json.dumps(canonical(spec), sort_keys=True))
        kept.setdefault((identity, settings, target_id), (row, target_id, latency))
    architectures = {} if architectures is None else architectures
    workloads, latencies, target_names, families = [], [], [], []
    for row, target_id, latency in kept.values():
        workload = workload_from_row(row, architectures)
        arch = workload.architecture
        workloads.append(workload)
        latencies.append(latency / 1e9)
        target_names.append(labels[target_id])
        families.append(str(arch.spec.get(family_key, source.name)))
    return Dataset(tuple(workloads), np.array(latencies), tuple(target_names),
                   tuple(families), len(latest) - len(kept))


def workload_from_row(row: Mapping[str, Any],
                      architectures: dict[str, Architecture]) -> Workload:
    """The workload of a stored label's row; ``architectures`` caches parsed graphs."""
    arch = architectures.get(row["arch_id"])
    if arch is None:
        arch = architectures[row["arch_id"]] = architecture_from_row(row)
    return Workload(arch, batch_size=row["batch_size"], mode=row["mode"],
                    optimizer=row["optimizer"], dtype=row["dtype"])


def _settings_key(row: Mapping[str, Any]) -> str:
    return f"{row['batch_size']}/{row['mode']}/{row['optimizer']}/{row['dtype']}"
