"""Deterministic random weights for a graph, shared by every backend.

Backends compile the same arrays, so the same IR and seed give the same outputs in every
framework. LSTM gates are stacked in the order input, forget, cell, output; the reverse
direction of a bidirectional LSTM has the same arrays with torch's suffix ``_reverse``.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from lenna_core.ir.graph import Graph

Weights = dict[str, dict[str, np.ndarray]]


POOL_SIZE = 1 << 20


@attrs.frozen
class Param:
    """One parameter array: its shape and how it is initialised (``N(offset, std)``)."""

    shape: tuple[int, ...]
    std: float
    offset: float = 0.0
    positive: bool = False


def parameter_specs(graph: Graph) -> dict[str, dict[str, Param]]:
    """Every node's parameter arrays (weights, biases, batchnorm statistics) by name."""
    shapes = graph.shapes
    out: dict[str, dict[str, Param]] = {}
    for node in graph.nodes:
        a = node.attrs
        if node.op == "conv2d":
            c_in = shapes[node.inputs[0]][0]
            kh, kw = a["kernel_size"]
            fan_in = c_in // a["groups"] * kh * kw
            params = {"weight": Param((a["out_channels"], c_in // a["groups"], kh, kw),
                                      float(np.sqrt(2.0 / fan_in)))}
            if a["bias"]:
                params["bias"] = Param((a["out_channels"],), 0.01)
        elif node.op == "batchnorm":
            c = (shapes[node.inputs[0]][0],)
            params = {"scale": Param(c, 0.1, 1.0), "bias": Param(c, 0.1),
                      "mean": Param(c, 0.1), "var": Param(c, 0.1, 1.0, positive=True)}
        elif node.op == "linear":
            f_in = shapes[node.inputs[0]][0]
            params = {"weight": Param((a["out_features"], f_in), float(np.sqrt(1.0 / f_in)))}
            if a["bias"]:
                params["bias"] = Param((a["out_features"],), 0.01)
        elif node.op == "lstm":
            hidden = a["hidden_size"]
            suffixes = ("", "_reverse") if a.get("bidirectional", False) else ("",)
            f_in = shapes[node.inputs[0]][1]
            std = float(np.sqrt(1.0 / hidden))
            params = {}
            for layer in range(a["num_layers"]):
                size_in = f_in if layer == 0 else len(suffixes) * hidden
                for s in suffixes:
                    params[f"w_ih_{layer}{s}"] = Param((4 * hidden, size_in), std)
                    params[f"w_hh_{layer}{s}"] = Param((4 * hidden, hidden), std)
                    params[f"b_ih_{layer}{s}"] = Param((4 * hidden,), 0.01)
                    params[f"b_hh_{layer}{s}"] = Param((4 * hidden,), 0.01)
        else:
            continue
        out[node.name] = params
    return out


def parameter_bytes(graph: Graph) -> int:
    """Bytes of all float32 parameter arrays."""
    return 4 * sum(math.prod(p.shape) for params in parameter_specs(graph).values()
                   for p in params.values())


def init_weights(graph: Graph, seed: int = 0) -> Weights:
    """He-normal weights, small biases and non-trivial batchnorm statistics, float32.

    Values are drawn from one pool of 2**20 normal numbers at random offsets, so that
    models with hundreds of millions of parameters get their weights in a fraction of a
    second; latency does not depend on the values, only on their being ordinary floats.
    """
    rng = np.random.default_rng(seed)
    pool = rng.standard_normal(POOL_SIZE, dtype=np.float32)

    def draw(param: Param) -> np.ndarray:
        start = int(rng.integers(POOL_SIZE))
        values = np.resize(np.roll(pool, -start), param.shape)
        values *= np.float32(param.std)
        if param.positive:
            np.abs(values, out=values)
        values += np.float32(param.offset)
        return values

    return {node: {name: draw(p) for name, p in params.items()}
            for node, params in parameter_specs(graph).items()}
