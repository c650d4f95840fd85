"""Deterministic random weights for a graph, shared by every backend.

Backends compile the same arrays, so the same IR and seed give the same outputs in every
framework. LSTM gates are stacked in the order input, forget, cell, output.
"""

from __future__ import annotations

import numpy as np

from lenna_core.ir.graph import Graph

Weights = dict[str, dict[str, np.ndarray]]


POOL_SIZE = 1 << 20


def init_weights(graph: Graph, seed: int = 0) -> Weights:
    """He-normal weights, small biases and non-trivial batchnorm statistics, float32.

    Values are drawn from one pool of 2**20 normal numbers at random offsets, so that
    models with hundreds of millions of parameters get their weights in a fraction of a
    second; latency does not depend on the values, only on their being ordinary floats.
    """
    rng = np.random.default_rng(seed)
    pool = rng.standard_normal(POOL_SIZE, dtype=np.float32)
    shapes = graph.shapes
    out: Weights = {}

    def normal(shape: tuple[int, ...], std: float) -> np.ndarray:
        start = int(rng.integers(POOL_SIZE))
        values = np.resize(np.roll(pool, -start), shape)
        values *= np.float32(std)
        return values

    for node in graph.nodes:
        a = node.attrs
        if node.op == "conv2d":
            c_in = shapes[node.inputs[0]][0]
            kh, kw = a["kernel_size"]
            fan_in = c_in // a["groups"] * kh * kw
            params = {"weight": normal((a["out_channels"], c_in // a["groups"], kh, kw),
                                       np.sqrt(2.0 / fan_in))}
            if a["bias"]:
                params["bias"] = normal((a["out_channels"],), 0.01)
        elif node.op == "batchnorm":
            c = shapes[node.inputs[0]][0]
            params = {
                "scale": (1.0 + normal((c,), 0.1)),
                "bias": normal((c,), 0.1),
                "mean": normal((c,), 0.1),
                "var": (1.0 + np.abs(normal((c,), 0.1))),
            }
        elif node.op == "linear":
            f_in = shapes[node.inputs[0]][0]
            params = {"weight": normal((a["out_features"], f_in), np.sqrt(1.0 / f_in))}
            if a["bias"]:
                params["bias"] = normal((a["out_features"],), 0.01)
        elif node.op == "lstm":
            hidden = a["hidden_size"]
            f_in = shapes[node.inputs[0]][1]
            params = {}
            std = np.sqrt(1.0 / hidden)
            for layer in range(a["num_layers"]):
                size_in = f_in if layer == 0 else hidden
                params[f"w_ih_{layer}"] = normal((4 * hidden, size_in), std)
                params[f"w_hh_{layer}"] = normal((4 * hidden, hidden), std)
                params[f"b_ih_{layer}"] = normal((4 * hidden,), 0.01)
                params[f"b_hh_{layer}"] = normal((4 * hidden,), 0.01)
        else:
            continue
        out[node.name] = {k: v.astype(np.float32, copy=False) for k, v in params.items()}
    return out
