"""LayerStatsFeaturizer: analytic features of a workload's graph, with a fixed key set."""

from __future__ import annotations

import math
from typing import ClassVar

from lenna_core.api import OPS, Workload
from lenna_layer_stats.stats import node_elementwise, node_macs, node_params

FLOAT32_BYTES = 4
OP_NAMES = tuple(op for op in OPS if op != "input")
CONV_STATS = ("kernel", "stride", "in_channels", "out_channels", "out_size", "groups")


class LayerStatsFeaturizer:
    """Counts of a workload: MACs, FLOPs, parameters, bytes, depth, op mix and conv shapes.

    Every key is always present (zeros included) so feature tables align: ``macs``,
    ``flops``, ``activation_bytes`` and ``input_bytes`` and ``macs_<op>`` cover the whole
    batch; ``activation_bytes`` sums the float32 outputs of all nodes, the input included.
    ``depth`` is the longest path in nodes. ``conv_<stat>_mean``/``_max`` describe conv2d
    layers; kernel, stride and output size are side lengths (geometric mean of the two
    sides when not square). The key set follows the op vocabulary of ``lenna_core.ir.OPS``.
    """

    name: ClassVar[str] = "layer-stats"
    version: ClassVar[str] = "2"

    def featurize(self, workload: Workload) -> dict[str, float]:
        """Features of ``workload``'s graph at its batch size."""
        graph = workload.architecture.graph
        batch = workload.batch_size
        shapes = graph.shapes
        counts = dict.fromkeys(OP_NAMES, 0)
        macs = dict.fromkeys(OP_NAMES, 0)
        params = elementwise = output_elems = input_elems = 0
        depth: dict[str, int] = {}
        conv: dict[str, list[float]] = {stat: [] for stat in CONV_STATS}
        for node in graph.nodes:
            depth[node.name] = 1 + max((depth[i] for i in node.inputs), default=0)
            size = math.prod(shapes[node.name])
            output_elems += size
            if node.op == "input":
                input_elems += size
                continue
            counts[node.op] += 1
            macs[node.op] += node_macs(node, shapes)
            params += node_params(node, shapes)
            elementwise += node_elementwise(node, shapes)
            if node.op == "conv2d":
                a = node.attrs
                conv["kernel"].append(math.sqrt(math.prod(a["kernel_size"])))
                conv["stride"].append(math.sqrt(math.prod(a["stride"])))
                conv["in_channels"].append(shapes[node.inputs[0]][0])
                conv["out_channels"].append(a["out_channels"])
                conv["out_size"].append(math.sqrt(math.prod(shapes[node.name][1:])))
                conv["groups"].append(a["groups"])

        total_macs = sum(macs.values())
        features = {
            "batch_size": batch,
            "macs": total_macs * batch,
            "flops": (2 * total_macs + elementwise) * batch,
            "params": params,
            "activation_bytes": output_elems * FLOAT32_BYTES * batch,
            "input_bytes": input_elems * FLOAT32_BYTES * batch,
            "depth": max(depth[name] for name in graph.outputs),
            "nodes": len(graph.nodes),
        }
        for op in OP_NAMES:
            features[f"count_{op}"] = counts[op]
            features[f"macs_{op}"] = macs[op] * batch
        features["conv_count"] = counts["conv2d"]
        for stat, values in conv.items():
            features[f"conv_{stat}_mean"] = sum(values) / len(values) if values else 0.0
            features[f"conv_{stat}_max"] = max(values, default=0.0)
        return {key: float(value) for key, value in features.items()}
