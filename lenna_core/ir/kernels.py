"""Kernels: the units a backend actually runs, after fusing ops such as conv+batchnorm+relu.

ONNX Runtime and TensorFlow fold a batchnorm into the convolution before it and fuse the
activation after it (and an activation after a linear layer); eager PyTorch runs every op on
its own. A kernel can be cut out as a graph of its own, so its latency can be measured and an
estimator can predict per kernel and sum (L(model) = Σ L(kernel)).
"""

from __future__ import annotations

import math

import attrs

from lenna_core.ir.builder import GraphBuilder
from lenna_core.ir.graph import Graph

ACTIVATIONS = ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu")
FREE_OPS = ("input", "identity", "flatten")
"""Ops that run no kernel (views and the input itself)."""

#: Backend name -> whether it fuses conv+batchnorm+activation and linear+activation.
FUSING_BACKENDS = {"onnxruntime": True, "onnxruntime-cuda": True, "tensorflow": True,
                   "torch-cpu": False, "torch-cuda": False}


@attrs.frozen
class Kernel:
    """A run of nodes executed as one kernel; ``kind`` joins their ops with ``+``."""

    nodes: tuple[str, ...]
    kind: str


def split_kernels(graph: Graph, fuse: bool = True) -> list[Kernel]:
    """Group the graph's nodes into kernels, in execution order."""
    consumers: dict[str, list[str]] = {n.name: [] for n in graph.nodes}
    for node in graph.nodes:
        for name in node.inputs:
            consumers[name].append(node.name)
    by_name = {n.name: n for n in graph.nodes}
    taken: set[str] = set()
    kernels = []
    for node in graph.nodes:
        if node.name in taken or node.op in FREE_OPS:
            continue
        chain = [node.name]
        if fuse and node.op in ("conv2d", "linear"):
            follow = ("batchnorm", *ACTIVATIONS) if node.op == "conv2d" else ACTIVATIONS
            while len(consumers[chain[-1]]) == 1 and chain[-1] not in graph.outputs:
                nxt = by_name[consumers[chain[-1]][0]]
                if nxt.op not in follow:
                    break
                chain.append(nxt.name)
                follow = ACTIVATIONS if nxt.op == "batchnorm" else ()
        taken.update(chain)
        kernels.append(Kernel(tuple(chain), "+".join(by_name[n].op for n in chain)))
    return kernels


def kernel_graph(graph: Graph, kernel: Kernel) -> Graph:
    """The kernel as a standalone graph whose inputs have the shapes it sees in ``graph``."""
    b = GraphBuilder()
    rename: dict[str, str] = {}
    first = graph.node(kernel.nodes[0])
    for index, name in enumerate(first.inputs):
        if name not in rename:
            rename[name] = b.input(graph.shapes[name], name=f"input_{index}")
    for name in kernel.nodes:
        node = graph.node(name)
        rename[name] = b.add_node(node.op, *(rename[i] for i in node.inputs), name=name,
                                  **node.attrs)
    return b.build(rename[kernel.nodes[-1]])


def kernel_features(graph: Graph, kernel: Kernel) -> dict[str, float]:
    """Configuration and size of one kernel: what a per-kernel estimator needs."""
    main = graph.node(kernel.nodes[0])
    in_shape = graph.shapes[main.inputs[0]]
    out_shape = graph.shapes[kernel.nodes[-1]]
    a = main.attrs
    features = {
        "input_elements": float(sum(math.prod(graph.shapes[i]) for i in main.inputs)),
        "output_elements": float(math.prod(out_shape)),
        "in_channels": float(in_shape[0]),
        "out_channels": float(out_shape[0]),
        "spatial": float(math.prod(out_shape[1:])) if len(out_shape) == 3 else 1.0,
        "kernel_size": float(a["kernel_size"][0]) if "kernel_size" in a else 0.0,
        "stride": float(a["stride"][0]) if isinstance(a.get("stride"), list) else 1.0,
        "groups": float(a.get("groups", 1)),
        "fused_ops": float(len(kernel.nodes) - 1),
    }
    if main.op == "conv2d":
        kh, kw = a["kernel_size"]
        features["macs"] = features["output_elements"] * in_shape[0] / a["groups"] * kh * kw
    elif main.op == "linear":
        features["macs"] = float(in_shape[0] * a["out_features"])
    else:
        features["macs"] = 0.0
    return features
