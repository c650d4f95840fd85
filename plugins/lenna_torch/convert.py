"""Graph IR -> ``torch.nn.Module`` that executes the nodes in order with the IR's weights."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from lenna_core.api import Graph, Node, Weights

if TYPE_CHECKING:
    import torch


@cache
def _modules() -> dict[str, type]:
    """The module classes, defined on first use so that importing this file skips torch."""
    import torch
    from torch import nn

    class Add(nn.Module):
        def forward(self, *xs: torch.Tensor) -> torch.Tensor:
            out = xs[0]
            for x in xs[1:]:
                out = out + x
            return out

    class Mul(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x * y

    class Slice(nn.Module):
        """The range [start, end) of one axis, as the view ``torch.narrow`` gives."""

        def __init__(self, dim: int, start: int, end: int) -> None:
            super().__init__()
            self.dim, self.start, self.length = dim, start, end - start

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.narrow(x, self.dim, self.start, self.length)

    class Concat(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.dim = dim

        def forward(self, *xs: torch.Tensor) -> torch.Tensor:
            return torch.cat(xs, dim=self.dim)

    class Zero(nn.Module):
        """DARTS' "none": zeros of the (strided) input's shape."""

        def __init__(self, stride: int) -> None:
            super().__init__()
            self.stride = stride

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.stride > 1:
                x = x[:, :, :: self.stride, :: self.stride]
            return x * 0.0

    class LSTM(nn.LSTM):
        """A batch-first LSTM returning only its output sequence."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            return super().forward(x)[0]

    class GraphModule(nn.Module):
        """Runs ``layers[k]`` for the k-th non-input node, feeding outputs by name."""

        def __init__(self, graph: Graph, layers: list[nn.Module]) -> None:
            super().__init__()
            self.input_names = [n.name for n in graph.inputs]
            self.steps = [(n.name, list(n.inputs)) for n in graph.nodes if n.op != "input"]
            self.output_names = list(graph.outputs)
            self.layers = nn.ModuleList(layers)

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
            env = dict(zip(self.input_names, inputs, strict=True))
            for layer, (name, args) in zip(self.layers, self.steps, strict=True):
                env[name] = layer(*(env[a] for a in args))
            outputs = tuple(env[name] for name in self.output_names)
            return outputs[0] if len(outputs) == 1 else outputs

    return {"Add": Add, "Mul": Mul, "Slice": Slice, "Concat": Concat, "Zero": Zero,
            "LSTM": LSTM, "GraphModule": GraphModule}


def _layer(node: Node, graph: Graph, params: dict[str, np.ndarray]) -> torch.nn.Module:
    """The module computing one IR node, with its IR weights copied in."""
    import torch
    from torch import nn

    classes = _modules()
    a = node.attrs
    in_shape = graph.shapes[node.inputs[0]]
    op = node.op
    if op == "conv2d":
        layer: nn.Module = nn.Conv2d(in_shape[0], a["out_channels"], a["kernel_size"],
                                     stride=a["stride"], padding=a["padding"],
                                     dilation=a["dilation"], groups=a["groups"], bias=a["bias"])
        mapping = {"weight": "weight", "bias": "bias"}
    elif op == "batchnorm":
        cls = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
        layer = cls(in_shape[0], eps=a["eps"])
        mapping = {"scale": "weight", "bias": "bias", "mean": "running_mean",
                   "var": "running_var"}
    elif op == "linear":
        layer = nn.Linear(in_shape[0], a["out_features"], bias=a["bias"])
        mapping = {"weight": "weight", "bias": "bias"}
    elif op == "lstm":
        bidirectional = a.get("bidirectional", False)
        layer = classes["LSTM"](in_shape[1], a["hidden_size"], num_layers=a["num_layers"],
                                batch_first=True, bidirectional=bidirectional)
        mapping = {
            f"{ir}_{k}{s}": f"{pt}_l{k}{s}"
            for k in range(a["num_layers"])
            for s in (("", "_reverse") if bidirectional else ("",))
            for ir, pt in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"),
                           ("b_ih", "bias_ih"), ("b_hh", "bias_hh"))
        }
    else:
        layer = _stateless_layer(node)
        mapping = {}
    with torch.no_grad():
        for ir, pt in mapping.items():
            if ir in params:
                getattr(layer, pt).copy_(torch.from_numpy(params[ir]))
    return layer


def _stateless_layer(node: Node) -> torch.nn.Module:
    from torch import nn

    classes = _modules()
    a = node.attrs
    simple: dict[str, Any] = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish,
                              "hardsigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid,
                              "silu": nn.SiLU, "gelu": nn.GELU, "identity": nn.Identity,
                              "add": classes["Add"], "mul": classes["Mul"]}
    if node.op in simple:
        return simple[node.op]()
    if node.op == "maxpool":
        return nn.MaxPool2d(a["kernel_size"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"])
    if node.op == "avgpool":
        return nn.AvgPool2d(a["kernel_size"], a["stride"], a["padding"], ceil_mode=a["ceil_mode"],
                            count_include_pad=a["count_include_pad"])
    if node.op == "global_avgpool":
        return nn.AdaptiveAvgPool2d(1)
    if node.op == "concat":
        return classes["Concat"](a["axis"] + 1)
    if node.op == "slice":
        return classes["Slice"](a["axis"] + 1, a["start"], a["end"])
    if node.op == "channel_shuffle":
        return nn.ChannelShuffle(a["groups"])
    if node.op == "flatten":
        return nn.Flatten(1)
    if node.op == "zero":
        return classes["Zero"](a["stride"])
    raise NotImplementedError(f"no torch conversion for op '{node.op}'")  # pragma: no cover


def graph_to_module(graph: Graph, weights: Weights) -> torch.nn.Module:
    """A module whose ``forward(*inputs)`` computes the graph's outputs (a tuple if several).

    The module is in eval mode; batchnorm uses the IR's running statistics.
    """
    layers = [_layer(n, graph, weights.get(n.name, {})) for n in graph.nodes if n.op != "input"]
    return _modules()["GraphModule"](graph, layers).eval()


def run_torch(graph: Graph, weights: Weights, x: np.ndarray) -> list[np.ndarray]:
    """Run the graph on ``x`` with torch on CPU; one array per graph output."""
    import torch

    module = graph_to_module(graph, weights)
    with torch.inference_mode():
        out = module(torch.from_numpy(x))
    outputs = out if isinstance(out, tuple) else (out,)
    return [t.numpy() for t in outputs]
