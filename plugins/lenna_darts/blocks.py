"""DARTS blocks as Graph IR.

A block has L layers. As in a DARTS cell, layer i (1..L) has i + 1 mixed edges: one from
each of the two cell inputs (both are the block's input here) and one from each earlier
layer's output; the layer's output is the sum of its edges and the block's output is the last
layer's (not DARTS's concatenation of all layers, so a block keeps its C×H×W contract).
A ``normal`` block keeps C×H×W; a ``reduction`` block's edges from the inputs have stride 2
and map C to 2C, so the block doubles the channels and halves H and W; edges between layers
work at 2C, H/2. Five layers give 2 + 3 + 4 + 5 + 6 = 20 edges, as a five-node DARTS cell has.

The ops are those of the DARTS search supernet (its ``MixedOp``), with three adaptations the
IR needs: pools are followed by a BN as in DARTS's search, and by a 1×1 conv first when they
must widen C to 2C; ``skip_connect`` on a reducing edge is DARTS's FactorizedReduce without
its one-pixel shift (the IR has no slice op; the two convs then read the same pixels, at the
same cost); and ``none`` on a widening edge is its zeros concatenated twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lenna_core.api import Graph, GraphBuilder

OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3",
       "avg_pool_3x3", "skip_connect", "none")
NONE = OPS.index("none")
BLOCKS = ("normal", "reduction")


def edges(layers: int) -> list[tuple[int, int]]:
    """(layer, source) of every edge in order; sources 0 and 1 are the two cell inputs and
    source k + 1 is the output of layer k."""
    return [(layer, source) for layer in range(1, layers + 1) for source in range(layer + 1)]


def softmax(alpha: np.ndarray) -> np.ndarray:
    """Row-wise softmax of α (one row per edge)."""
    z = np.exp(alpha - alpha.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def edge_probabilities(spec: Mapping[str, Any]) -> tuple[Mapping[str, Any], np.ndarray]:
    """The supernet spec and the op probabilities per edge of a clean darts-cells spec:
    softmax(α) for a supernet, the chosen ops one-hot for a child."""
    if "choice" in spec:
        return spec["parent"], np.eye(len(OPS))[spec["choice"]]
    return spec, softmax(np.asarray(spec["alpha"], dtype=np.float64))


def _sep_conv(b: GraphBuilder, x: str, c_in: int, c_out: int, k: int, stride: int) -> str:
    """DARTS SepConv: twice [ReLU, depthwise k×k, pointwise 1×1, BN]; stride on the first."""
    for channels, s in ((c_in, stride), (c_out, 1)):
        x = b.add_node("relu", x)
        x = b.add_node("conv2d", x, out_channels=c_in, kernel_size=k, stride=s,
                       padding=k // 2, groups=c_in)
        x = b.add_node("conv2d", x, out_channels=channels, kernel_size=1)
        x = b.add_node("batchnorm", x)
    return x


def _dil_conv(b: GraphBuilder, x: str, c_in: int, c_out: int, k: int, stride: int) -> str:
    """DARTS DilConv: ReLU, depthwise k×k with dilation 2, pointwise 1×1, BN."""
    x = b.add_node("relu", x)
    x = b.add_node("conv2d", x, out_channels=c_in, kernel_size=k, stride=stride,
                   padding=k // 2 * 2, dilation=2, groups=c_in)
    x = b.add_node("conv2d", x, out_channels=c_out, kernel_size=1)
    return b.add_node("batchnorm", x)


def mixed_op(b: GraphBuilder, op: str, x: str, c_in: int, c_out: int, stride: int) -> str:
    """One DARTS op from ``x`` (C_in) to C_out channels with the given stride."""
    if op.startswith("sep_conv"):
        return _sep_conv(b, x, c_in, c_out, int(op[-1]), stride)
    if op.startswith("dil_conv"):
        return _dil_conv(b, x, c_in, c_out, int(op[-1]), stride)
    if op.endswith("pool_3x3"):
        y = b.add_node(op[:3] + "pool", x, kernel_size=3, stride=stride, padding=1)
        if c_in != c_out:
            y = b.add_node("conv2d", y, out_channels=c_out, kernel_size=1)
        return b.add_node("batchnorm", y)
    if op == "skip_connect":
        if stride == 1 and c_in == c_out:
            return b.add_node("identity", x)
        return _factorized_reduce(b, x, c_out, stride)
    zeros = b.add_node("zero", x, stride=stride)  # DARTS "none"
    return zeros if c_in == c_out else b.add_node("concat", zeros, zeros)


def _factorized_reduce(b: GraphBuilder, x: str, c_out: int, stride: int) -> str:
    """DARTS FactorizedReduce: ReLU, two strided 1×1 convs to C_out/2 each, concat, BN."""
    x = b.add_node("relu", x)
    halves = [b.add_node("conv2d", x, out_channels=c, kernel_size=1, stride=stride)
              for c in (c_out // 2, c_out - c_out // 2)]
    return b.add_node("batchnorm", b.add_node("concat", *halves))


def build_block(block: str, layers: int, channels: int, input_size: int,
                choice: Sequence[Sequence[int]]) -> Graph:
    """The block with, on each edge (in :func:`edges` order), the ops whose indices
    ``choice`` lists, summed."""
    b = GraphBuilder()
    x = b.input((channels, input_size, input_size))
    reduce = block == "reduction"
    width = 2 * channels if reduce else channels
    nodes = [x, x]
    per_edge = iter(choice)
    for _layer in range(layers):
        terms = []
        for source, node in enumerate(nodes):
            from_input = source < 2
            stride = 2 if reduce and from_input else 1
            c_in = channels if from_input else width
            terms += [mixed_op(b, OPS[i], node, c_in, width, stride) for i in next(per_edge)]
        nodes.append(terms[0] if len(terms) == 1 else b.add_node("add", *terms))
    return b.build(nodes[-1])
