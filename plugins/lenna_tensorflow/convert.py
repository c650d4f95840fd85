"""Graph IR -> Keras model computing the graph channels-last with the IR's weights.

Image tensors, ``(C, H, W)`` in the IR, are NHWC inside the model (TensorFlow's CPU-native
layout); feature vectors ``(F,)`` and sequences ``(T, F)`` keep the IR's layout.
:func:`to_model_layout` and :func:`from_model_layout` convert batches at the boundaries.
"""

from __future__ import annotations

import os
import re
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from lenna_core.api import Graph, Node, Shape, Weights

if TYPE_CHECKING:
    import keras

BATCHNORM_MOMENTUM = 0.1
"""Weight of the batch statistics in the running averages of a training step (as torch)."""


def import_tensorflow() -> Any:
    """Import TensorFlow, quiet (``TF_CPP_MIN_LOG_LEVEL=2``) unless the user chose a level.

    oneDNN kernels are turned on unless the user chose otherwise: TensorFlow enables them by
    default only on CPUs with AVX-512, and without them it cannot train a dilated convolution
    on the CPU ("Current CPU implementations do not yet support dilation rates larger than 1").
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    import tensorflow as tf

    return tf


def to_model_layout(x: np.ndarray) -> np.ndarray:
    """An IR-layout batch (NCHW images) in the model's layout (NHWC)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)) if x.ndim == 4 else x


def from_model_layout(x: np.ndarray) -> np.ndarray:
    """A model-layout batch (NHWC images) back in the IR's layout (NCHW)."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


def _model_axis(axis: int, rank: int) -> int:
    """The batched model axis of an IR axis of a rank-``rank`` tensor."""
    return (3, 1, 2)[axis] if rank == 3 else axis + 1


def _pool_window(size: int, out: int, kernel: int, stride: int, pad: int,
                 count_include_pad: bool) -> tuple[int, np.ndarray]:
    """Extra end padding that ceil mode needs, and the divisor of each window (as torch)."""
    extra = max(0, (out - 1) * stride + kernel - (size + 2 * pad))
    starts = np.arange(out) * stride - pad
    ends = starts + kernel
    if count_include_pad:
        counts = np.minimum(ends, size + pad) - starts
    else:
        counts = np.minimum(ends, size) - np.maximum(starts, 0)
    return extra, counts


def _layer_name(node: Node) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", node.name)


def _constant(value: np.ndarray) -> Any:
    """A Keras initializer returning ``value`` (the IR weight, converted)."""
    return lambda shape, dtype=None: np.asarray(value, dtype=np.float32).reshape(shape)


@cache
def _classes() -> dict[str, type]:
    """The layer classes, defined on first use so that importing this file skips TensorFlow."""
    tf = import_tensorflow()
    import keras

    class NodeLayer(keras.layers.Layer):
        """Computes one IR node from the list of its inputs' tensors."""

        def __init__(self, node: Node, **kwargs: Any) -> None:
            super().__init__(name=_layer_name(node), **kwargs)
            self.node_name = node.name
            self.node_inputs = list(node.inputs)

        def constant(self, name: str, value: np.ndarray, trainable: bool = True) -> Any:
            return self.add_weight(shape=value.shape, initializer=_constant(value),
                                   trainable=trainable, name=name)

    class Stateless(NodeLayer):
        """An op without weights, as a function of the input tensors."""

        def __init__(self, node: Node, fn: Any) -> None:
            super().__init__(node)
            self.fn = fn
            self.built = True

        def call(self, xs: list[Any], training: bool = False) -> Any:
            return self.fn(*xs)

    class Conv2D(NodeLayer):
        """Conv2D (grouped through the filter depth) or DepthwiseConv2dNative.

        Padding is the kernel's own explicit padding where TensorFlow's CPU gradients support
        it (no groups and no dilation, or depthwise), else a Pad before a VALID convolution.
        Depthwise convolutions with dilation or unequal strides are grouped Conv2Ds, whose
        CPU gradients exist.
        """

        def __init__(self, node: Node, params: dict[str, np.ndarray], in_channels: int) -> None:
            super().__init__(node)
            a = node.attrs
            weight = params["weight"]
            _, _, kh, kw = weight.shape
            dilated = a["dilation"] != [1, 1]
            self.depthwise = (a["groups"] == in_channels > 1 and not dilated
                              and a["stride"][0] == a["stride"][1])
            if self.depthwise:  # OIHW with O = C * multiplier -> (kh, kw, C, multiplier)
                kernel = weight.reshape(in_channels, -1, kh, kw).transpose(2, 3, 0, 1)
            else:  # OIHW -> HWIO
                kernel = weight.transpose(2, 3, 1, 0)
            self.kernel = self.constant("kernel", kernel)
            self.bias = self.constant("bias", params["bias"]) if a["bias"] else None
            self.strides = [1, *a["stride"], 1]
            self.dilations = [1, *a["dilation"], 1]
            ph, pw = a["padding"]
            self.pads = [[0, 0], [ph, ph], [pw, pw], [0, 0]] if ph or pw else None
            self.explicit = self.depthwise or (a["groups"] == 1 and not dilated)
            self.built = True

        def call(self, xs: list[Any], training: bool = False) -> Any:
            (x,) = xs
            padding, explicit_paddings = "VALID", []
            if self.pads and self.explicit:
                padding, explicit_paddings = "EXPLICIT", sum(self.pads, [])
            elif self.pads:
                x = tf.pad(x, self.pads)
            op = tf.raw_ops.DepthwiseConv2dNative if self.depthwise else tf.raw_ops.Conv2D
            y = op(input=x, filter=self.kernel, strides=self.strides, padding=padding,
                   explicit_paddings=explicit_paddings, dilations=self.dilations)
            return y if self.bias is None else tf.nn.bias_add(y, self.bias)

    class BatchNorm(NodeLayer):
        """FusedBatchNormV3 on NHWC (feature vectors as N x 1 x 1 x C)."""

        def __init__(self, node: Node, params: dict[str, np.ndarray]) -> None:
            super().__init__(node)
            self.eps = node.attrs["eps"]
            self.scale = self.constant("scale", params["scale"])
            self.offset = self.constant("offset", params["bias"])
            self.moving_mean = self.constant("moving_mean", params["mean"], trainable=False)
            self.moving_var = self.constant("moving_var", params["var"], trainable=False)
            self.built = True

        def call(self, xs: list[Any], training: bool = False) -> Any:
            (x,) = xs
            image = len(x.shape) == 4
            y = x if image else tf.reshape(x, [-1, 1, 1, x.shape[-1]])
            y, mean, var, *_ = tf.raw_ops.FusedBatchNormV3(
                x=y, scale=self.scale, offset=self.offset, mean=self.moving_mean,
                variance=self.moving_var, epsilon=self.eps,
                exponential_avg_factor=BATCHNORM_MOMENTUM if training else 1.0,
                is_training=bool(training))
            if training:
                self.moving_mean.assign(mean)
                self.moving_var.assign(var)
            return y if image else tf.reshape(y, [-1, x.shape[-1]])

    class Linear(NodeLayer):
        """MatMul and BiasAdd with the IR's (out, in) weight transposed."""

        def __init__(self, node: Node, params: dict[str, np.ndarray]) -> None:
            super().__init__(node)
            self.kernel = self.constant("kernel", params["weight"].T)
            self.bias = self.constant("bias", params["bias"]) if "bias" in params else None
            self.built = True

        def call(self, xs: list[Any], training: bool = False) -> Any:
            y = tf.matmul(xs[0], self.kernel)
            return y if self.bias is None else tf.nn.bias_add(y, self.bias)

    class LSTM(NodeLayer):
        """Stacked batch-first ``keras.layers.LSTM`` layers returning the output sequence;
        bidirectional ones in ``keras.layers.Bidirectional``, which concatenates the forward
        and reverse outputs as torch does."""

        def __init__(self, node: Node, params: dict[str, np.ndarray], shape: Shape) -> None:
            super().__init__(node)
            hidden = node.attrs["hidden_size"]
            bidirectional = node.attrs.get("bidirectional", False)
            self.layers_ = []
            size_in = shape[1]
            for k in range(node.attrs["num_layers"]):
                name = f"{_layer_name(node)}_{k}"
                layer = keras.layers.LSTM(hidden, return_sequences=True, name=name)
                if bidirectional:
                    layer = keras.layers.Bidirectional(layer, merge_mode="concat", name=name)
                layer.build((None, shape[0], size_in))
                directions = ([(layer.forward_layer, ""), (layer.backward_layer, "_reverse")]
                              if bidirectional else [(layer, "")])
                for rnn, s in directions:
                    # Keras gates are i, f, c, o: the IR's (torch's) order, transposed.
                    rnn.set_weights([params[f"w_ih_{k}{s}"].T, params[f"w_hh_{k}{s}"].T,
                                     params[f"b_ih_{k}{s}"] + params[f"b_hh_{k}{s}"]])
                self.layers_.append(layer)
                size_in = len(directions) * hidden
            self.built = True

        def call(self, xs: list[Any], training: bool = False) -> Any:
            (x,) = xs
            for layer in self.layers_:
                x = layer(x, training=training)
            return x

    class GraphModel(keras.Model):
        """Runs one layer per non-input node in order, feeding outputs by node name."""

        def __init__(self, graph: Graph, node_layers: list[NodeLayer]) -> None:
            super().__init__(name="lenna")
            self.graph_inputs = [n.name for n in graph.inputs]
            self.graph_outputs = list(graph.outputs)
            self.node_layers = node_layers

        def call(self, inputs: Any, training: bool = False) -> Any:
            given = inputs if isinstance(inputs, list | tuple) else [inputs]
            env = dict(zip(self.graph_inputs, given, strict=True))
            for layer in self.node_layers:
                env[layer.node_name] = layer([env[i] for i in layer.node_inputs],
                                             training=training)
            outputs = tuple(env[name] for name in self.graph_outputs)
            return outputs[0] if len(outputs) == 1 else outputs

    return {"Stateless": Stateless, "Conv2D": Conv2D, "BatchNorm": BatchNorm,
            "Linear": Linear, "LSTM": LSTM, "GraphModel": GraphModel}


def _stateless(node: Node, graph: Graph) -> Any:
    """The function of the input tensors computing a weightless node."""
    tf = import_tensorflow()
    a, op = node.attrs, node.op
    in_shape = graph.shapes[node.inputs[0]]
    simple = {"relu": tf.nn.relu, "relu6": tf.nn.relu6, "sigmoid": tf.sigmoid,
              "identity": lambda x: x,
              "hardswish": lambda x: x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0),
              "hardsigmoid": lambda x: tf.nn.relu6(x + 3.0) * (1.0 / 6.0),
              "silu": lambda x: x * tf.sigmoid(x),
              "gelu": lambda x: tf.nn.gelu(x, approximate=False),
              "mul": lambda x, y: x * y}
    if op in simple:
        return simple[op]
    if op == "add":
        def add(*xs: Any) -> Any:
            out = xs[0]
            for x in xs[1:]:
                out = out + x
            return out
        return add
    if op in ("maxpool", "avgpool"):
        return _pool(node, graph)
    if op == "global_avgpool":
        return lambda x: tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    if op == "concat":
        axis = _model_axis(a["axis"], len(in_shape))
        return lambda *xs: tf.concat(xs, axis=axis)
    if op == "slice":
        index = [slice(None)] * (len(in_shape) + 1)
        index[_model_axis(a["axis"], len(in_shape))] = slice(a["start"], a["end"])
        return lambda x: x[tuple(index)]
    if op == "channel_shuffle":
        return _channel_shuffle(node, graph)
    if op == "flatten":
        features = int(np.prod(in_shape))
        if len(in_shape) == 3 and in_shape[1] * in_shape[2] > 1:  # flatten in (C, H, W) order
            return lambda x: tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, features])
        return lambda x: tf.reshape(x, [-1, features])
    if op == "zero":
        s = a["stride"]
        if s > 1:
            return lambda x: x[:, ::s, ::s, :] * 0.0
        return lambda x: x * 0.0
    raise NotImplementedError(f"no TensorFlow conversion for op '{op}'")  # pragma: no cover


def _channel_shuffle(node: Node, graph: Graph) -> Any:
    """On NHWC: channels as (groups, C / groups), the two swapped, channels again."""
    tf = import_tensorflow()
    groups = node.attrs["groups"]
    channels, height, width = graph.shapes[node.name]
    grouped = [-1, height, width, groups, channels // groups]
    return lambda x: tf.reshape(tf.transpose(tf.reshape(x, grouped), [0, 1, 2, 4, 3]),
                                [-1, height, width, channels])


def _pool(node: Node, graph: Graph) -> Any:
    """Max or average pooling with the IR's symmetric padding, ceil mode and divisor."""
    tf = import_tensorflow()
    a = node.attrs
    (kh, kw), (sh, sw), (ph, pw) = a["kernel_size"], a["stride"], a["padding"]
    _, h, w = graph.shapes[node.inputs[0]]
    _, oh, ow = graph.shapes[node.name]
    include = node.op == "avgpool" and a["count_include_pad"]
    eh, counts_h = _pool_window(h, oh, kh, sh, ph, include)
    ew, counts_w = _pool_window(w, ow, kw, sw, pw, include)
    pads = [[0, 0], [ph, ph + eh], [pw, pw + ew], [0, 0]]
    padded = any(p for pair in pads for p in pair)
    ksize, strides = [1, kh, kw, 1], [1, sh, sw, 1]
    if node.op == "maxpool":  # explicit padding never wins a max
        padding = pads if padded else "VALID"
        return lambda x: tf.nn.max_pool2d(x, ksize, strides, padding)
    factor = (kh * kw) / np.outer(counts_h, counts_w).astype(np.float32)
    if np.all(factor == 1.0):
        factor = None
    else:
        factor = factor.reshape(1, oh, ow, 1).astype(np.float32)

    def avgpool(x: Any) -> Any:
        if padded:
            x = tf.pad(x, pads)
        y = tf.nn.avg_pool2d(x, ksize, strides, "VALID")
        return y if factor is None else y * factor

    return avgpool


def graph_to_keras(graph: Graph, weights: Weights) -> keras.Model:
    """A Keras model computing the graph's outputs (a tuple if several) channels-last.

    ``model(x, training=False)`` uses the IR's batchnorm statistics; ``training=True`` uses
    batch statistics and updates the running ones.
    """
    classes = _classes()
    layers = []
    for node in graph.nodes:
        if node.op == "input":
            continue
        params = weights.get(node.name, {})
        in_shape = graph.shapes[node.inputs[0]]
        if node.op == "conv2d":
            layers.append(classes["Conv2D"](node, params, in_shape[0]))
        elif node.op == "batchnorm":
            layers.append(classes["BatchNorm"](node, params))
        elif node.op == "linear":
            layers.append(classes["Linear"](node, params))
        elif node.op == "lstm":
            layers.append(classes["LSTM"](node, params, in_shape))
        else:
            layers.append(classes["Stateless"](node, _stateless(node, graph)))
    return classes["GraphModel"](graph, layers)


def run_tensorflow(graph: Graph, weights: Weights, x: np.ndarray) -> list[np.ndarray]:
    """Run the graph on the IR-layout batch ``x``; one IR-layout array per graph output."""
    tf = import_tensorflow()

    model = graph_to_keras(graph, weights)
    out = model(tf.constant(to_model_layout(x)), training=False)
    outputs = out if isinstance(out, tuple) else (out,)
    return [from_model_layout(t.numpy()) for t in outputs]
