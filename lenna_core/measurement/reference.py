"""The reference workload interleaved with every measurement to cancel host drift."""

from __future__ import annotations

from lenna_core.ir import GraphBuilder
from lenna_core.records import Architecture, Workload


def reference_workload() -> Workload:
    """A small fixed CNN (about a millisecond on one CPU core), batch 1, inference."""
    b = GraphBuilder()
    x = b.input((3, 32, 32))
    for channels in (32, 64):
        x = b.add_node("conv2d", x, out_channels=channels, kernel_size=3, padding=1)
        x = b.add_node("relu", x)
        x = b.add_node("conv2d", x, out_channels=channels, kernel_size=3, padding=1)
        x = b.add_node("relu", x)
        x = b.add_node("maxpool", x, kernel_size=2)
    x = b.add_node("global_avgpool", x)
    x = b.add_node("flatten", x)
    graph = b.build(b.add_node("linear", x, out_features=10))
    return Workload(Architecture("lenna-reference", {"name": "cnn-2x2"}, graph))
