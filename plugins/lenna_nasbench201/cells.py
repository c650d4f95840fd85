"""NAS-Bench-201 arch strings: parsing, enumeration and the macro network as Graph IR.

An arch string such as ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|
nor_conv_3x3~1|skip_connect~2|`` has three groups separated by ``+``, for nodes 1 to 3; each
entry is ``op~input_node``. Node j is the sum of its edges' outputs; node 3 is the cell output.
"""

from __future__ import annotations

import functools
import itertools

from lenna_core.api import Graph, GraphBuilder, LennaError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(to node, from node) of the six edges, in arch-string order."""
STAGE_CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5

Cell = tuple[str, ...]
"""The op of each of the six edges, in :data:`EDGES` order."""


def parse_arch(text: str) -> Cell:
    """The six edge ops of an arch string; LennaError names the bad token."""
    if not isinstance(text, str):
        raise LennaError(f"nasbench201 arch must be a string, got {type(text).__name__}")
    groups = text.strip().split("+")
    if len(groups) != 3:
        raise LennaError(f"nasbench201 arch string needs 3 groups separated by '+', "
                         f"got {len(groups)} in {text!r}")
    ops: list[str] = []
    for node, group in enumerate(groups, start=1):
        if not (group.startswith("|") and group.endswith("|")):
            raise LennaError(f"nasbench201 arch string: group {group!r} must look like "
                             f"|op~input|...| in {text!r}")
        entries = group.strip("|").split("|")
        if len(entries) != node:
            raise LennaError(f"nasbench201 arch string: node {node} needs {node} edge(s), "
                             f"got {len(entries)} in {group!r}")
        for source, entry in enumerate(entries):
            op, sep, index = entry.partition("~")
            if op not in OPS:
                raise LennaError(f"nasbench201 arch string: unknown op {op!r} in {text!r}; "
                                 f"ops are {', '.join(OPS)}")
            if not sep or index != str(source):
                raise LennaError(f"nasbench201 arch string: token {entry!r} must read "
                                 f"'{op}~{source}' in {text!r}")
            ops.append(op)
    return tuple(ops)


def arch_string(cell: Cell) -> str:
    """The arch string of six edge ops (the inverse of :func:`parse_arch`)."""
    groups, k = [], 0
    for node in (1, 2, 3):
        groups.append("|" + "|".join(f"{cell[k + i]}~{i}" for i in range(node)) + "|")
        k += node
    return "+".join(groups)


def all_arch_strings() -> list[str]:
    """All 5**6 = 15,625 cells, in a fixed order."""
    return [arch_string(cell) for cell in itertools.product(OPS, repeat=len(EDGES))]


def _isomorphism_key(cell: Cell) -> str:
    """NAS-Bench-201's ``Structure.to_unique_str(consider_zero=True)`` of a cell."""
    nodes = ["0"]
    for to in (1, 2, 3):
        terms = []
        for (node, src), op in zip(EDGES, cell, strict=True):
            if node != to:
                continue
            if op == "none" or nodes[src] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(nodes[src])
            else:
                terms.append(f"({nodes[src]})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[3]


@functools.cache
def _representatives() -> dict[str, str]:
    first: dict[str, str] = {}
    for text in all_arch_strings():
        first.setdefault(_isomorphism_key(parse_arch(text)), text)
    return first


def canonical_arch(text: str) -> str:
    """The representative of the isomorphism class of an arch string.

    Two cells are isomorphic when NAS-Bench-201's own rule
    (``Structure.to_unique_str(consider_zero=True)``) gives them the same expression for the
    output node: node 0 is ``0``; an edge contributes ``#`` (zero) if its op is ``none`` or
    its input node is exactly ``#``, its input node's expression if it is ``skip_connect``,
    and ``(input)@op`` otherwise; a node is its sorted terms joined by ``+``. So edges that
    cannot reach the output, and ops fed by node 1 when node 1 is zero, do not count; terms
    commute, and a sum passed on by ``skip_connect`` merges into the next node's sum. As in
    NAS-Bench-201's code, only node 1 can be zero: node 2 reads ``#+#`` when both its edges
    are zero, and ops on it still count. The rule splits the 15,625 cells into 6,466
    classes, exactly HW-NAS-Bench-360's ``rep_arch_idx`` groups. Runtimes that execute every
    op (ONNX Runtime, PyTorch) may still time cells of one class differently.
    The representative is the class's first cell in :func:`all_arch_strings` order, which puts
    ``none`` on every edge that does not count.
    """
    return _representatives()[_isomorphism_key(parse_arch(text))]


def _relu_conv_bn(b: GraphBuilder, x: str, channels: int, kernel: int, stride: int = 1) -> str:
    x = b.add_node("relu", x)
    x = b.add_node("conv2d", x, out_channels=channels, kernel_size=kernel, stride=stride,
                   padding=kernel // 2)
    return b.add_node("batchnorm", x)


def _edge(b: GraphBuilder, op: str, x: str, channels: int) -> str:
    if op == "none":
        return b.add_node("zero", x)
    if op == "skip_connect":
        return b.add_node("identity", x)
    if op == "avg_pool_3x3":
        return b.add_node("avgpool", x, kernel_size=3, stride=1, padding=1)
    return _relu_conv_bn(b, x, channels, 1 if op == "nor_conv_1x1" else 3)


def _cell(b: GraphBuilder, x: str, cell: Cell, channels: int) -> str:
    nodes = [x]
    for to in (1, 2, 3):
        terms = [_edge(b, op, nodes[src], channels)
                 for (node, src), op in zip(EDGES, cell, strict=True) if node == to]
        nodes.append(terms[0] if len(terms) == 1 else b.add_node("add", *terms))
    return nodes[3]


def _reduction(b: GraphBuilder, x: str, channels: int) -> str:
    """NAS-Bench-201's residual reduction block: a stride-2 basic block with an
    avg-pool + 1x1 conv shortcut."""
    main = _relu_conv_bn(b, x, channels, 3, stride=2)
    main = _relu_conv_bn(b, main, channels, 3)
    short = b.add_node("avgpool", x, kernel_size=2, stride=2)
    short = b.add_node("conv2d", short, out_channels=channels, kernel_size=1)
    return b.add_node("add", short, main)


def build_network(cell: Cell, input_shape: tuple[int, int, int], num_classes: int) -> Graph:
    """The macro network: stem, three stages of five cells joined by reductions, classifier."""
    b = GraphBuilder()
    x = b.input(input_shape)
    x = b.add_node("conv2d", x, out_channels=STAGE_CHANNELS[0], kernel_size=3, padding=1)
    x = b.add_node("batchnorm", x)
    for stage, channels in enumerate(STAGE_CHANNELS):
        if stage:
            x = _reduction(b, x, channels)
        for _ in range(CELLS_PER_STAGE):
            x = _cell(b, x, cell, channels)
    x = b.add_node("batchnorm", x)
    x = b.add_node("relu", x)
    x = b.add_node("global_avgpool", x)
    x = b.add_node("flatten", x)
    return b.build(b.add_node("linear", x, out_features=num_classes))
