"""The ``darts-cells`` source: blocks with architecture parameters α and binary-gate children."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import Architecture, LennaError, check_spec_fields
from lenna_darts.blocks import BLOCKS, NONE, OPS, build_block, edges, softmax
from lenna_darts.search import DartsSearchSpace, derived_cell

FIELDS = ("block", "layers", "channels", "input_size", "alpha", "ops")
CHILD_FIELDS = ("parent", "choice")
MAX_CHANNELS = 4096
SAMPLES = ("supernets", "cells")


def _check_choice(choice: Any, count: int) -> list[int]:
    if (not isinstance(choice, list) or len(choice) != count or any(
            isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(OPS)
            for i in choice)):
        raise LennaError(f"darts-cells spec: choice must be {count} op indices in "
                         f"[0, {len(OPS) - 1}], got {choice!r}")
    return choice


class DartsCellsSource:
    """DARTS blocks (normal or reduction) with α per edge and op, drawn uniformly in [0, 1).

    An architecture is the supernet block: its spec holds α (also kept as the architecture's
    ``params``, so blocks that differ only in α are different architectures) and its graph is
    the argmax child, a representative for featurizers that read graphs. What is measured are
    children drawn by binary gates (:meth:`children`); the label is their expected latency.
    A child's spec is ``{"parent": <supernet spec>, "choice": [op index per edge]}`` and
    :meth:`from_spec` rebuilds it. Input channels are drawn log-uniformly from
    [``min_channels``, ``max_channels``] (set both to fix them); ``input_size`` is a size or a
    list of sizes to draw from. With ``sample="cells"`` the source draws children of the
    kind DARTS derives instead (each layer keeps two of its inputs with an op other than
    ``none``, its other edges are ``none``), each measured as it is: what a latency predictor
    for ``lenna search`` must know best. Their number of convolutions is uniform from none to
    all (:func:`_mixed_alpha`), so that the cheap cells a large λ derives are as well covered
    as the costly ones of λ = 0.
    """

    name: ClassVar[str] = "darts-cells"
    default_features: ClassVar[str] = "darts-encoding"
    search_space: ClassVar[type] = DartsSearchSpace

    def __init__(self, layers: int = 5, min_channels: int = 1, max_channels: int = 1000,
                 input_size: int | list[int] = 32, block: str | None = None,
                 sample: str = "supernets") -> None:
        sizes = input_size if isinstance(input_size, list) and input_size else [input_size]
        for option, value, low in (("layers", layers, 1), ("min_channels", min_channels, 1),
                                   ("max_channels", max_channels, min_channels),
                                   *(("input_size", size, 2) for size in sizes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise LennaError(f"darts-cells option {option} must be an int >= {low}"
                                 f"{' or a list of them' if option == 'input_size' else ''}, "
                                 f"got {value!r}")
        if sample not in SAMPLES:
            raise LennaError(f"darts-cells option sample must be one of {', '.join(SAMPLES)}, "
                             f"got {sample!r}")
        if max_channels > MAX_CHANNELS:
            raise LennaError(f"darts-cells option max_channels must be at most {MAX_CHANNELS}")
        if block is not None and block not in BLOCKS:
            raise LennaError(f"darts-cells option block must be one of {', '.join(BLOCKS)}")
        self.layers, self.input_sizes, self.block = layers, sizes, block
        self.min_channels, self.max_channels, self.sample_kind = min_channels, max_channels, sample

    def sample(self, rng: np.random.Generator) -> Architecture:
        block = self.block or BLOCKS[int(rng.integers(2))]
        channels = int(round(math.exp(rng.uniform(math.log(self.min_channels),
                                                  math.log(self.max_channels)))))
        size = self.input_sizes[int(rng.integers(len(self.input_sizes)))]
        if block == "reduction" and size % 2:
            size += 1
        alpha = rng.random((len(edges(self.layers)), len(OPS)))
        supernet = self.from_spec({"block": block, "layers": self.layers, "channels": channels,
                                   "input_size": size, "alpha": np.round(alpha, 6).tolist()})
        if self.sample_kind == "supernets":
            return supernet
        return self._child(supernet.spec, derived_cell(_mixed_alpha(rng, alpha.shape),
                                                        self.layers))

    def _validate(self, spec: Any) -> dict[str, Any]:
        """The clean supernet spec (defaults filled); a LennaError names a bad field."""
        check_spec_fields(self.name, spec, FIELDS)
        block = spec.get("block")
        if block not in BLOCKS:
            raise LennaError(f"darts-cells spec: block must be one of {', '.join(BLOCKS)}, "
                             f"got {block!r}")
        clean: dict[str, Any] = {"block": block}
        for field, default, low, high in (("layers", self.layers, 1, 12),
                                          ("channels", None, 1, MAX_CHANNELS),
                                          ("input_size", self.input_sizes[0], 2, 1024)):
            value = spec.get(field, default)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise LennaError(f"darts-cells spec: {field} must be an int in [{low}, {high}], "
                                 f"got {value!r}")
            clean[field] = value
        if block == "reduction" and clean["input_size"] % 2:
            raise LennaError(f"darts-cells spec: a reduction block needs an even input_size, "
                             f"got {clean['input_size']}")
        try:
            alpha = np.asarray(spec.get("alpha"), dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise LennaError("darts-cells spec: alpha must be a list of lists of numbers"
                             ) from None
        shape = (len(edges(clean["layers"])), len(OPS))
        if alpha.shape != shape or not np.isfinite(alpha).all():
            raise LennaError(f"darts-cells spec: alpha must be {shape[0]} edges x {shape[1]} "
                             f"finite numbers, got shape {list(alpha.shape)}")
        if spec.get("ops", list(OPS)) != list(OPS):
            raise LennaError(f"darts-cells spec: ops must be {list(OPS)} in this order, "
                             f"got {spec['ops']!r}")
        clean["alpha"] = alpha.tolist()
        clean["ops"] = list(OPS)
        return clean

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """A supernet (its graph is the argmax child) or, for ``parent`` and ``choice``,
        that child."""
        if isinstance(spec, Mapping) and set(spec) & set(CHILD_FIELDS):
            check_spec_fields(self.name, spec, CHILD_FIELDS)
            if not isinstance(spec.get("parent"), Mapping):
                raise LennaError("darts-cells spec: parent must be the supernet's spec, "
                                 f"got {spec.get('parent')!r}")
            parent = self._validate(spec["parent"])
            choice = _check_choice(spec.get("choice"), len(parent["alpha"]))
            return self._child(parent, choice)
        clean = self._validate(spec)
        argmax = [[int(i)] for i in np.asarray(clean["alpha"]).argmax(axis=1)]
        graph = build_block(clean["block"], clean["layers"], clean["channels"],
                            clean["input_size"], argmax)
        return Architecture(self.name, clean, graph, {"alpha": clean["alpha"]})

    def children(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """A child with one op per edge drawn from softmax(α) (ProxylessNAS's binary gates)."""
        if "choice" in arch.spec:
            raise LennaError("darts-cells: children are drawn from a supernet, not a child")
        parent = self._validate(arch.spec)
        probabilities = softmax(np.asarray(parent["alpha"]))
        choice = [int(rng.choice(len(OPS), p=p)) for p in probabilities]
        return self._child(parent, choice)

    def _child(self, parent: dict[str, Any], choice: list[int]) -> Architecture:
        graph = build_block(parent["block"], parent["layers"], parent["channels"],
                            parent["input_size"], [[i] for i in choice])
        return Architecture(self.name, {"parent": parent, "choice": list(choice)}, graph)


def _mixed_alpha(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Random α whose derived cell has a convolution on each kept edge with a probability
    drawn uniformly per cell, so the cell's number of convolutions is uniform; the op within
    the convolutions, or within the parameter-free ops, is uniform."""
    alpha = rng.random(shape)
    conv = np.array([op.endswith("conv_3x3") or op.endswith("conv_5x5") for op in OPS])
    wants_conv = rng.random(shape[0]) < rng.random()
    alpha[:, :NONE] += np.where(wants_conv[:, None] == conv[None, :NONE], 1.0, 0.0)
    return alpha
