"""Data sets for evaluation: a source's measured workloads on chosen targets, from the store.

Rows are (workload, target) pairs with their latency. One row is kept per workload and
target (the latest measurement), and, for sources with ``canonical_spec``, one per
isomorphism class, so that copies of one network cannot sit on both sides of a split.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from lenna_core.data.store import Store
from lenna_core.errors import LennaError
from lenna_core.ir.graph import Graph
from lenna_core.records import Architecture, Target, Workload


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

    def rows(self, index: np.ndarray) -> Dataset:
        """The rows at ``index``."""
        return Dataset(tuple(self.workloads[i] for i in index), self.latency[index],
                       tuple(self.targets[i] for i in index),
                       tuple(self.families[i] for i in index), self.dropped_isomorphic)


def target_label(target: Target, targets: Sequence[Target]) -> str:
    """The target's name, with its id when several stored targets share the name."""
    shared = sum(t.backend == target.backend for t in targets) > 1
    return f"{target.backend}@{target.id[:8]}" if shared else target.backend


def resolve_target(store: Store, name: str) -> Target:
    """The stored target called ``name`` (its backend or import name, ``name@id``, or an id
    prefix); a LennaError lists what is stored when none or several match."""
    stored = store.targets()
    labels = {target_label(t, stored): t for t in stored}
    if name in labels:
        return labels[name]
    matches = [t for t in stored if t.backend == name or t.id.startswith(name)]
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
    baselines: dict[tuple[str, str], float | None] = {}
    latest: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}
    for row, target_id, protocol, measured in store.successful(source.name, list(labels)):
        key = (target_id, protocol)
        if key not in baselines:
            target = next(t for t in targets if t.id == target_id)
            baselines[key] = store.reference_baseline(target, protocol)
        latency = measured.latency_ns(baselines[key])
        if latency is not None and latency > 0:
            latest[(row["arch_id"], _settings_key(row), target_id)] = (row, latency)
    canonical = getattr(source, "canonical_spec", None)
    kept: dict[tuple[str, ...], tuple[dict[str, Any], str, float]] = {}
    for (_, settings, target_id), (row, latency) in latest.items():
        spec = json.loads(row["spec"])
        identity = (json.dumps(canonical(spec), sort_keys=True) if callable(canonical)
                    else row["arch_id"])
        kept.setdefault((identity, settings, target_id), (row, target_id, latency))
    architectures = {} if architectures is None else architectures
    workloads, latencies, target_names, families = [], [], [], []
    for row, target_id, latency in kept.values():
        workload = workload_from_row(row, source.name, architectures)
        arch = workload.architecture
        workloads.append(workload)
        latencies.append(latency / 1e9)
        target_names.append(labels[target_id])
        families.append(str(arch.spec.get(family_key, source.name)))
    return Dataset(tuple(workloads), np.array(latencies), tuple(target_names),
                   tuple(families), len(latest) - len(kept))


def workload_from_row(row: dict[str, Any], source: str,
                      architectures: dict[str, Architecture]) -> Workload:
    """The workload of a ``Store.successful`` row; ``architectures`` caches parsed graphs."""
    arch = architectures.get(row["arch_id"])
    if arch is None:
        arch = architectures[row["arch_id"]] = Architecture(
            source, json.loads(row["spec"]), Graph.from_json(row["graph"]),
            None if row["params"] is None else json.loads(row["params"]))
    return Workload(arch, batch_size=row["batch_size"], mode=row["mode"],
                    optimizer=row["optimizer"], dtype=row["dtype"])


def _settings_key(row: dict[str, Any]) -> str:
    return f"{row['batch_size']}/{row['mode']}/{row['optimizer']}/{row['dtype']}"
