"""Per-sample cost counts of Graph IR nodes: parameters, MACs and elementwise ops."""

from __future__ import annotations

import math
from collections.abc import Mapping

from lenna_core.api import Graph, Node, Shape

_ELEMENTWISE_PER_OUTPUT = {"batchnorm": 2, "relu": 1, "relu6": 1, "hardswish": 1,
                           "hardsigmoid": 1, "sigmoid": 1, "silu": 1, "gelu": 1, "mul": 1}
"""Elementwise operations per output element (batchnorm: one multiply, one add); slices and
channel shuffles move data without arithmetic."""
_LSTM_ELEMENTWISE_PER_HIDDEN = 17
"""Per step and hidden unit: 8 bias adds, 4 gate activations, 3 for c and 2 for h updates."""


def _lstm_gate_inputs(node: Node, shapes: Mapping[str, Shape]) -> list[int]:
    """Per layer and direction of an lstm, the width its gates read: its input plus hidden.

    A bidirectional LSTM runs each layer twice, and its layers after the first read both
    directions' outputs (2 * hidden)."""
    a = node.attrs
    hidden, f_in = a["hidden_size"], shapes[node.inputs[0]][1]
    directions = 2 if a.get("bidirectional", False) else 1
    return [(f_in if layer == 0 else directions * hidden) + hidden
            for layer in range(a["num_layers"]) for _ in range(directions)]


def node_params(node: Node, shapes: Mapping[str, Shape]) -> int:
    """Learned parameters of one node (batchnorm: scale and bias; running stats excluded)."""
    a = node.attrs
    if node.op == "conv2d":
        c_in = shapes[node.inputs[0]][0]
        kh, kw = a["kernel_size"]
        out = a["out_channels"]
        return out * (c_in // a["groups"]) * kh * kw + (out if a["bias"] else 0)
    if node.op == "batchnorm":
        return 2 * shapes[node.inputs[0]][0]
    if node.op == "linear":
        f_in, out = shapes[node.inputs[0]][0], a["out_features"]
        return f_in * out + (out if a["bias"] else 0)
    if node.op == "lstm":
        hidden = a["hidden_size"]
        return sum(4 * hidden * width + 8 * hidden for width in _lstm_gate_inputs(node, shapes))
    return 0


def node_macs(node: Node, shapes: Mapping[str, Shape]) -> int:
    """Multiply-accumulates of one node for one sample (conv2d, linear and lstm only)."""
    a = node.attrs
    if node.op == "conv2d":
        c_in = shapes[node.inputs[0]][0]
        kh, kw = a["kernel_size"]
        return math.prod(shapes[node.name]) * (c_in // a["groups"]) * kh * kw
    if node.op == "linear":
        return shapes[node.inputs[0]][0] * a["out_features"]
    if node.op == "lstm":
        steps = shapes[node.inputs[0]][0]
        return sum(4 * a["hidden_size"] * width * steps
                   for width in _lstm_gate_inputs(node, shapes))
    return 0


def node_elementwise(node: Node, shapes: Mapping[str, Shape]) -> int:
    """Non-MAC arithmetic of one node for one sample: biases, norms, activations, pools, adds
    and products."""
    a = node.attrs
    out = math.prod(shapes[node.name])
    if node.op in ("conv2d", "linear"):
        return out if a["bias"] else 0
    if node.op in _ELEMENTWISE_PER_OUTPUT:
        return out * _ELEMENTWISE_PER_OUTPUT[node.op]
    if node.op in ("maxpool", "avgpool"):
        return out * math.prod(a["kernel_size"])
    if node.op == "global_avgpool":
        return math.prod(shapes[node.inputs[0]])
    if node.op == "add":
        return out * (len(node.inputs) - 1)
    if node.op == "lstm":
        steps = shapes[node.inputs[0]][0]
        runs = len(_lstm_gate_inputs(node, shapes))  # layers times directions
        return _LSTM_ELEMENTWISE_PER_HIDDEN * a["hidden_size"] * steps * runs
    return 0


def count_params(graph: Graph) -> int:
    """Learned parameters of the whole graph."""
    shapes = graph.shapes
    return sum(node_params(node, shapes) for node in graph.nodes)


def count_macs(graph: Graph) -> int:
    """Multiply-accumulates of the whole graph for one sample."""
    shapes = graph.shapes
    return sum(node_macs(node, shapes) for node in graph.nodes)
