"""Featurizers of DARTS blocks: the study's α encoding and the expected FLOPs over children.

``darts-encoding`` reconstructs the LENNA study's 167 numbers for a 5-layer block as
2 + 1 + 160 + 4: the block type one-hot (2), the input channels (1), the softmax probability
of each of the 8 ops on each of the 20 edges of a five-node DARTS cell (160), and the four
numbers that fix the block's shapes besides C: input size, output channels, output size and
layers. A child (spec with ``choice``) is encoded with its chosen ops as probability 1, so
children and supernets share one feature space.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import GraphBuilder, LennaError, Workload
from lenna_darts.blocks import BLOCKS, OPS, edge_probabilities, edges, mixed_op
from lenna_layer_stats.stats import count_macs, count_params


def _probabilities(workload: Workload, featurizer: str) -> tuple[Mapping[str, Any], np.ndarray]:
    """The supernet spec of a darts-cells block or child and its op probabilities per edge."""
    spec = workload.architecture.spec
    if workload.architecture.source != "darts-cells" or not (
            "alpha" in spec or "choice" in spec):
        raise LennaError(f"featurizer {featurizer} needs darts-cells blocks, "
                         f"not {workload.architecture.source} architectures")
    return edge_probabilities(spec)


class DartsEncodingFeaturizer:
    """Block type, channels, sizes and the per-edge softmax(α): 167 numbers for 5 layers."""

    name: ClassVar[str] = "darts-encoding"
    version: ClassVar[str] = "1"

    def featurize(self, workload: Workload) -> dict[str, float]:
        spec, probabilities = _probabilities(workload, self.name)
        values = shape_values(spec)
        for e, row in enumerate(probabilities):
            values.update({edge_feature(e, op): float(p) for op, p in zip(OPS, row, strict=True)})
        return values


def shape_values(spec: Mapping[str, Any]) -> dict[str, float]:
    """The encoding's numbers that α does not change: block type, channels and sizes."""
    reduce = spec["block"] == "reduction"
    values = {f"block_{b}": float(spec["block"] == b) for b in BLOCKS}
    values.update({
        "channels": float(spec["channels"]),
        "input_size": float(spec["input_size"]),
        "output_channels": float(spec["channels"] * (2 if reduce else 1)),
        "output_size": float(spec["input_size"] // (2 if reduce else 1)),
        "layers": float(spec["layers"]),
    })
    return values


def edge_feature(edge: int, op: str) -> str:
    """The name of the probability of ``op`` on edge ``edge``."""
    return f"edge{edge}_{op}"


@cache
def _op_cost(op: str, c_in: int, c_out: int, size: int, stride: int) -> tuple[int, int]:
    b = GraphBuilder()
    graph = b.build(mixed_op(b, op, b.input((c_in, size, size)), c_in, c_out, stride))
    return count_macs(graph), count_params(graph)


class DartsFlopsFeaturizer:
    """Expected FLOPs and parameters of the block under softmax(α), and of its argmax child.

    FLOPs are 2 × the multiply-accumulates of the convs for the workload's batch; for a child
    both the expectation and the argmax are the child itself.
    """

    name: ClassVar[str] = "darts-flops"
    version: ClassVar[str] = "2"

    def featurize(self, workload: Workload) -> dict[str, float]:
        spec, probabilities = _probabilities(workload, self.name)
        channels, size = spec["channels"], spec["input_size"]
        reduce = spec["block"] == "reduction"
        width, inner = (2 * channels, size // 2) if reduce else (channels, size)
        expected = np.zeros(2)
        argmax = np.zeros(2)
        for (_layer, source), row in zip(edges(spec["layers"]), probabilities, strict=True):
            from_input = source < 2
            position = (channels, width, size, 2 if reduce else 1) if from_input else (
                width, width, inner, 1)
            costs = np.array([_op_cost(op, *position) for op in OPS], dtype=np.float64)
            expected += row @ costs
            argmax += costs[int(row.argmax())]
        batch = workload.batch_size
        return {"expected_flops": float(2 * batch * expected[0]),
                "expected_params": float(expected[1]),
                "argmax_flops": float(2 * batch * argmax[0]), "argmax_params": float(argmax[1])}
