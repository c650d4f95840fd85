"""Graph structure: depth, width, branching, merges and paths, whatever the ops compute."""

from __future__ import annotations

import math
from collections import Counter
from typing import ClassVar

from lenna_core.api import Graph, Workload

MERGE_OPS = ("add", "concat", "mul")
PATH_CAP = 10**300
"""Path counts stop here (log1p about 690.8), so they stay finite floats on any graph."""


def graph_stats(graph: Graph) -> dict[str, float]:
    """Depth and width of the DAG, branching and merging, and input-to-output paths.

    ``depth`` is the longest input-to-output path in edges (steps from an input);
    ``width`` the most nodes at one depth level; ``skip_connections`` the merge nodes whose
    inputs sit at different depths; ``log_paths`` is log1p of the number of input-to-output
    paths, capped at :data:`PATH_CAP`.
    """
    consumers: Counter[str] = Counter(i for node in graph.nodes for i in node.inputs)
    level: dict[str, int] = {}
    paths: dict[str, int] = {}
    for node in graph.nodes:
        level[node.name] = 1 + max((level[i] for i in node.inputs), default=-1)
        paths[node.name] = min(PATH_CAP, sum(paths[i] for i in node.inputs)) if node.inputs else 1
    merges = [n for n in graph.nodes if n.op in MERGE_OPS]
    skips = sum(1 for n in merges if len({level[i] for i in n.inputs}) > 1)
    edges = sum(len(n.inputs) for n in graph.nodes)
    computing = [n for n in graph.nodes if n.op != "input"]
    return {
        "depth": float(max(level[o] for o in graph.outputs)),
        "width": float(max(Counter(level.values()).values())),
        "nodes": float(len(graph.nodes)),
        "edges": float(edges),
        "branch_nodes": float(sum(1 for c in consumers.values() if c > 1)),
        "max_out_degree": float(max(consumers.values(), default=0)),
        "merge_nodes": float(len(merges)),
        "skip_connections": float(skips),
        "mean_in_degree": edges / len(computing) if computing else 0.0,
        "log_paths": math.log1p(min(PATH_CAP, sum(paths[o] for o in graph.outputs))),
    }


class GraphStatsFeaturizer:
    """Depth, width, branching, merges, skip connections and the number of paths (log)."""

    name: ClassVar[str] = "graph-stats"
    version: ClassVar[str] = "2"

    def featurize(self, workload: Workload) -> dict[str, float]:
        return graph_stats(workload.architecture.graph)
