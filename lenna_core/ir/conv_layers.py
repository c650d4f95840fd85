"""The conv2d layers of a graph, described the way layer-level latency studies list them, and
each one cut out as a graph of its own."""

from __future__ import annotations

from typing import Any

from lenna_core.ir.builder import GraphBuilder
from lenna_core.ir.graph import Graph

LAYER_NODE = "conv"
"""The name of the conv2d node in a single-layer graph."""


def conv_layers(graph: Graph) -> list[dict[str, Any]]:
    """One entry per conv2d node: name, kernel, filters, input channels, input H and W, stride
    (plus groups and dilation, which depthwise and dilated convolutions need)."""
    layers = []
    for node in graph.nodes:
        if node.op != "conv2d":
            continue
        channels, height, width = graph.shapes[node.inputs[0]]
        kernel, stride = node.attrs["kernel_size"], node.attrs["stride"]
        layers.append({
            "name": node.name,
            "kernel": kernel[0] if kernel[0] == kernel[1] else kernel,
            "filters": node.attrs["out_channels"],
            "in_channels": channels,
            "H": height,
            "W": width,
            "stride": stride[0] if stride[0] == stride[1] else stride,
            "groups": node.attrs["groups"],
            "dilation": node.attrs["dilation"][0],
        })
    return layers


def single_conv_graph(input_shape: tuple[int, int, int], **attrs: Any) -> Graph:
    """``input -> conv2d`` with the given conv2d attributes; equal layers get equal ids."""
    b = GraphBuilder()
    x = b.input(input_shape)
    return b.build(b.add_node("conv2d", x, name=LAYER_NODE, **attrs))


def layer_graph(graph: Graph, name: str) -> Graph:
    """The conv2d node ``name`` of ``graph`` alone, on an input of the shape it sees there."""
    node = graph.node(name)
    return single_conv_graph(graph.shapes[node.inputs[0]], **node.attrs)
