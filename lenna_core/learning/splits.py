"""Train/test splits for evaluation: random, by model family, and by device.

- ``random``: repeated random splits of one target's rows, one seed per repeat (the ResNet
  study).
- ``family``: each repeat holds out one family (a whole model or source) and trains on the
  others (the cross-instance study trained on LeNet-5 and ResNet-small and validated on
  VGG-small).
- ``device``: each repeat holds out one target device and trains on the others. A device is
  described by its log latencies on a few anchor architectures measured on every device
  (HELP's hardware embedding), so the held-out device contributes only those measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import numpy as np

from lenna_core.errors import LennaError

if TYPE_CHECKING:  # a split of row counts needs no store (SQLAlchemy)
    from lenna_core.data.dataset import Dataset

KINDS = ("random", "family", "device")
MIN_TRAIN = 5
DEFAULT_ANCHORS = 10


@attrs.frozen
class Split:
    """Row indices to train and test on, and what the split holds out."""

    train: np.ndarray
    test: np.ndarray
    label: str


def make_splits(data: Dataset, kind: str, *, repeats: int, seed: int,
                train_size: int | None = None, holdout: Sequence[str] = (),
                anchors: int = DEFAULT_ANCHORS) -> list[Split]:
    """``repeats`` splits of ``data``; LennaError when the data cannot support them."""
    if kind not in KINDS:
        raise LennaError(f"unknown split {kind!r}; choose one of {', '.join(KINDS)}")
    if repeats < 1:
        raise LennaError(f"--repeats must be at least 1, got {repeats}")
    if train_size is not None and train_size < MIN_TRAIN:
        raise LennaError(f"--train-size must be at least {MIN_TRAIN}, got {train_size}")
    targets = sorted(set(data.targets))
    if kind != "device" and len(targets) > 1:
        raise LennaError(f"a {kind} split needs one target, got {', '.join(targets)}; "
                         "give one --target, or use --split device")
    if kind == "random":
        n = len(data)
        size = round(0.8 * n) if train_size is None else train_size
        if n < MIN_TRAIN + 1 or size > n - 1 or size < MIN_TRAIN:
            raise LennaError(f"target {data.targets[0] if n else '?'} has {n} measurement(s); "
                             f"a random split training on {size} needs at least {size + 1}")
        return random_splits(n, repeats, seed, size)
    groups = data.families if kind == "family" else data.targets
    excluded = anchor_rows(data, anchors, seed) if kind == "device" else np.zeros(0, int)
    return _held_out(data, groups, kind, repeats, seed, train_size, holdout, excluded)


def random_splits(n: int, repeats: int, seed: int, train_size: int) -> list[Split]:
    """``repeats`` random splits of ``n`` rows, one per seed ``seed``, ``seed + 1``, ...: the
    first ``train_size`` rows of the seed's permutation train, the others test."""
    splits = []
    for k in range(repeats):
        order = np.random.default_rng(seed + k).permutation(n)
        splits.append(Split(np.sort(order[:train_size]), np.sort(order[train_size:]),
                            f"seed {seed + k}"))
    return splits


def _held_out(data: Dataset, groups: Sequence[str], kind: str, repeats: int, seed: int,
              train_size: int | None, holdout: Sequence[str],
              excluded: np.ndarray) -> list[Split]:
    names = sorted(set(groups))
    what = "families" if kind == "family" else "targets"
    if len(names) < 2:
        raise LennaError(f"a {kind} split needs at least two {what}, got {names or 'none'}")
    unknown = [h for h in holdout if h not in names]
    if unknown:
        raise LennaError(f"--holdout {', '.join(unknown)} is not among the {what}: "
                         f"{', '.join(names)}")
    order = list(holdout) or names
    labels = np.array(groups)
    splits = []
    for k in range(repeats):
        held = order[k % len(order)]
        train = np.flatnonzero(labels != held)
        test = np.setdiff1d(np.flatnonzero(labels == held), excluded)
        if train_size is not None and train_size < len(train):
            rng = np.random.default_rng(seed + k)
            train = np.sort(rng.choice(train, size=train_size, replace=False))
        if len(train) < MIN_TRAIN or len(test) == 0:
            raise LennaError(f"holding out {held} leaves {len(train)} training and "
                             f"{len(test)} test rows; need {MIN_TRAIN} and 1")
        splits.append(Split(train, test, f"held out {held}"))
    return splits


def anchor_rows(data: Dataset, anchors: int, seed: int) -> np.ndarray:
    """The rows of ``anchors`` workloads measured on every target, drawn with ``seed``."""
    by_target: dict[str, set[str]] = {}
    for workload, target in zip(data.workloads, data.targets, strict=True):
        by_target.setdefault(target, set()).add(workload.id)
    common = sorted(set.intersection(*by_target.values())) if by_target else []
    if len(common) < anchors:
        raise LennaError(f"the targets have {len(common)} architecture(s) in common; the "
                         f"device embedding needs {anchors} measured on every target")
    chosen = set(np.random.default_rng(seed).choice(common, size=anchors, replace=False))
    return np.array([i for i, w in enumerate(data.workloads) if w.id in chosen], dtype=int)


def device_embedding(data: Dataset, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Per row, its target's log latencies on the anchor workloads at ``rows``."""
    anchor_ids = sorted({data.workloads[i].id for i in rows})
    table = {(data.targets[i], data.workloads[i].id): np.log(data.latency[i]) for i in rows}
    names = [f"device.anchor_{k}" for k in range(len(anchor_ids))]
    matrix = np.array([[table[(t, a)] for a in anchor_ids] for t in data.targets])
    return names, matrix
