"""The conv2d layers of a graph, described the way layer-level latency studies list them."""

from __future__ import annotations

from typing import Any

from lenna_core.ir.graph import Graph


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
