"""Graph IR -> ONNX model, with the IR's deterministic weights as initializers.

Every IR tensor keeps its node's name in the ONNX graph; helper tensors are named
``<node>/<what>`` and weights ``<node>.<param>``. The batch dimension is static.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from lenna_core.api import Graph, Node, Weights

if TYPE_CHECKING:
    import onnx

OPSET = 17
"""Opset of the emitted models; gelu is written as its erf formula (Gelu needs opset 20)."""
IR_VERSION = 8
"""The IR version that goes with opset 17: ONNX Runtime 1.13 and later load it."""
EXTERNAL_DATA_BYTES = 1_500_000_000
"""Above this many bytes of initializers a model must be saved with external data."""

_INT64_MAX = np.iinfo(np.int64).max


def _lstm_gates(array: np.ndarray, hidden: int) -> np.ndarray:
    """Reorder stacked gates from torch's (i, f, g, o) to ONNX's (i, o, f, c)."""
    i, f, g, o = (array[k * hidden:(k + 1) * hidden] for k in range(4))
    return np.concatenate([i, o, f, g])


class _Writer:
    """Accumulates nodes and initializers of one ONNX graph."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: dict[str, np.ndarray] = {}

    def const(self, name: str, value: Any, dtype: Any = np.float32) -> str:
        if name not in self.initializers:
            self.initializers[name] = np.asarray(value, dtype=dtype)
        return name

    def op(self, op_type: str, inputs: list[str], output: str, **attributes: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output


def _pool_attributes(node: Node, graph: Graph) -> dict[str, Any]:
    a = node.attrs
    kernel, stride, padding = a["kernel_size"], a["stride"] or a["kernel_size"], a["padding"]
    ceil_mode = a["ceil_mode"]
    if ceil_mode:
        # ONNX's opset-17 shape inference keeps a last window that would start in the end
        # padding, which ONNX Runtime and PyTorch drop. Where ceil mode adds no other window
        # the pooling equals floor mode, so write that and keep the inferred shapes right.
        sizes = zip(graph.shapes[node.inputs[0]][1:], graph.shapes[node.name][1:], kernel,
                    stride, padding, strict=True)
        floor, kept = [], []
        for size, out, k, s, p in sizes:
            floor.append((size + 2 * p - k) // s + 1 == out)
            kept.append(math.ceil((size + 2 * p - k) / s) + 1 == out)
        ceil_mode = not all(floor) or all(kept)
    return {
        "kernel_shape": kernel,
        "strides": stride,
        "pads": [*padding, *padding],
        "ceil_mode": int(ceil_mode),
    }


def _emit(w: _Writer, node: Node, graph: Graph, params: dict[str, np.ndarray]) -> None:
    """Append the ONNX nodes computing one IR node; its output tensor is ``node.name``."""
    a, name, xs = node.attrs, node.name, list(node.inputs)
    op = node.op
    if op == "conv2d":
        ph, pw = a["padding"]
        inputs = [xs[0], w.const(f"{name}.weight", params["weight"])]
        if a["bias"]:
            inputs.append(w.const(f"{name}.bias", params["bias"]))
        w.op("Conv", inputs, name, kernel_shape=a["kernel_size"], strides=a["stride"],
             pads=[ph, pw, ph, pw], dilations=a["dilation"], group=a["groups"])
    elif op == "batchnorm":
        inputs = [w.const(f"{name}.{p}", params[p]) for p in ("scale", "bias", "mean", "var")]
        w.op("BatchNormalization", [xs[0], *inputs], name, epsilon=a["eps"])
    elif op in ("relu", "sigmoid", "identity"):
        w.op(op.capitalize(), xs, name)
    elif op == "hardswish":
        w.op("HardSwish", xs, name)
    elif op == "hardsigmoid":
        w.op("HardSigmoid", xs, name, alpha=1.0 / 6.0, beta=0.5)
    elif op == "silu":
        w.op("Mul", [xs[0], w.op("Sigmoid", xs, f"{name}/sigmoid")], name)
    elif op == "relu6":
        w.op("Clip", [xs[0], w.const("const/zero", 0.0), w.const("const/six", 6.0)], name)
    elif op == "gelu":
        scaled = w.op("Div", [xs[0], w.const("const/sqrt2", math.sqrt(2.0))], f"{name}/div")
        erf = w.op("Erf", [scaled], f"{name}/erf")
        shifted = w.op("Add", [erf, w.const("const/one", 1.0)], f"{name}/add")
        product = w.op("Mul", [xs[0], shifted], f"{name}/mul")
        w.op("Mul", [product, w.const("const/half", 0.5)], name)
    elif op == "maxpool":
        w.op("MaxPool", xs, name, **_pool_attributes(node, graph))
    elif op == "avgpool":
        w.op("AveragePool", xs, name, **_pool_attributes(node, graph),
             count_include_pad=int(a["count_include_pad"]))
    elif op == "global_avgpool":
        w.op("GlobalAveragePool", xs, name)
    elif op == "add":
        w.op("Add" if len(xs) == 2 else "Sum", xs, name)
    elif op == "mul":
        w.op("Mul", xs, name)
    elif op == "concat":
        w.op("Concat", xs, name, axis=a["axis"] + 1)
    elif op == "slice":
        w.op("Slice", [xs[0], w.const(f"{name}/starts", [a["start"]], np.int64),
                       w.const(f"{name}/ends", [a["end"]], np.int64),
                       w.const(f"{name}/axes", [a["axis"] + 1], np.int64)], name)
    elif op == "channel_shuffle":
        _emit_channel_shuffle(w, node, graph)
    elif op == "linear":
        inputs = [xs[0], w.const(f"{name}.weight", params["weight"])]
        if a["bias"]:
            inputs.append(w.const(f"{name}.bias", params["bias"]))
        w.op("Gemm", inputs, name, transB=1)
    elif op == "flatten":
        w.op("Flatten", xs, name, axis=1)
    elif op == "zero":
        x = xs[0]
        if a["stride"] > 1:
            s = a["stride"]
            x = w.op("Slice", [x, w.const("const/starts", [0, 0], np.int64),
                               w.const("const/ends", [_INT64_MAX] * 2, np.int64),
                               w.const("const/axes_hw", [2, 3], np.int64),
                               w.const(f"const/steps{s}", [s, s], np.int64)], f"{name}/slice")
        w.op("Mul", [x, w.const("const/zero", 0.0)], name)
    elif op == "lstm":
        _emit_lstm(w, node, params)
    else:  # pragma: no cover - the IR validates ops; this catches a new op without a converter
        raise NotImplementedError(f"no ONNX conversion for op '{op}'")


def _emit_channel_shuffle(w: _Writer, node: Node, graph: Graph) -> None:
    """Reshape to (N, groups, C / groups, H, W), swap the two group axes, reshape back."""
    name, groups = node.name, node.attrs["groups"]
    channels, height, width = graph.shapes[node.name]
    grouped_shape = [0, groups, channels // groups, height, width]
    grouped = w.op("Reshape", [node.inputs[0], w.const(f"{name}/grouped_shape", grouped_shape,
                                                      np.int64)], f"{name}/grouped")
    swapped = w.op("Transpose", [grouped], f"{name}/transpose", perm=[0, 2, 1, 3, 4])
    w.op("Reshape", [swapped, w.const(f"{name}/shape", [0, channels, height, width], np.int64)],
         name)


def _emit_lstm(w: _Writer, node: Node, params: dict[str, np.ndarray]) -> None:
    """A time-major stack of ONNX LSTM nodes between two transposes (batch-first outside).

    Each LSTM outputs (T, directions, N, H): a forward one's directions axis is squeezed out,
    a bidirectional one's is moved beside H and merged with it, forward then reverse as torch.
    """
    name, hidden = node.name, node.attrs["hidden_size"]
    bidirectional = node.attrs.get("bidirectional", False)
    suffixes = ("", "_reverse") if bidirectional else ("",)
    x = w.op("Transpose", [node.inputs[0]], f"{name}/time_major", perm=[1, 0, 2])
    for k in range(node.attrs["num_layers"]):
        # one array per direction, [forward, reverse], gates in ONNX's order
        w_ih, w_hh, b_ih, b_hh = (
            np.stack([_lstm_gates(params[f"{p}_{k}{s}"], hidden) for s in suffixes])
            for p in ("w_ih", "w_hh", "b_ih", "b_hh"))
        y = w.op("LSTM", [x, w.const(f"{name}.W{k}", w_ih), w.const(f"{name}.R{k}", w_hh),
                          w.const(f"{name}.B{k}", np.concatenate([b_ih, b_hh], axis=1))],
                 f"{name}/lstm{k}", hidden_size=hidden,
                 direction="bidirectional" if bidirectional else "forward")
        if bidirectional:
            y = w.op("Transpose", [y], f"{name}/directions{k}", perm=[0, 2, 1, 3])
            x = w.op("Reshape", [y, w.const("const/merge_last2", [0, 0, -1], np.int64)],
                     f"{name}/layer{k}")
        else:
            x = w.op("Squeeze", [y, w.const("const/axes1", [1], np.int64)], f"{name}/layer{k}")
    w.op("Transpose", [x], name, perm=[1, 0, 2])


def graph_to_onnx(graph: Graph, weights: Weights, batch_size: int = 1) -> onnx.ModelProto:
    """Convert a graph and its :func:`~lenna_core.ir.init_weights` weights to an ONNX model."""
    from onnx import TensorProto, helper, numpy_helper

    w = _Writer()
    inputs = []
    for node in graph.nodes:
        if node.op == "input":
            inputs.append(helper.make_tensor_value_info(
                node.name, TensorProto.FLOAT, [batch_size, *graph.shapes[node.name]]))
        else:
            _emit(w, node, graph, weights.get(node.name, {}))
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch_size, *graph.shapes[name]])
        for name in dict.fromkeys(graph.outputs)
    ]
    initializers = [numpy_helper.from_array(v, k) for k, v in w.initializers.items()]
    onnx_graph = helper.make_graph(w.nodes, "lenna", inputs, outputs, initializers)
    model = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="lenna")
    model.ir_version = IR_VERSION
    return model


def initializer_bytes(model: onnx.ModelProto) -> int:
    """Total size of the model's initializers in bytes."""
    return sum(len(t.raw_data) for t in model.graph.initializer)


def run_onnx(graph: Graph, weights: Weights, x: np.ndarray) -> list[np.ndarray]:
    """Run the graph on ``x`` with ONNX Runtime (CPU); one array per graph output."""
    import onnxruntime as ort

    model = graph_to_onnx(graph, weights, batch_size=x.shape[0])
    options = ort.SessionOptions()
    options.log_severity_level = 3  # ONNX shape inference warns on some ceil-mode pools
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    results = dict(zip([o.name for o in model.graph.output],
                       session.run(None, {graph.inputs[0].name: x}), strict=True))
    return [results[name] for name in graph.outputs]
