"""The op vocabulary of the Graph IR: attributes, defaults and shape inference.

Shapes exclude the batch dimension: an image tensor is ``(C, H, W)``, a feature vector
``(F,)``, a sequence ``(T, F)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs

Shape = tuple[int, ...]


class OpError(ValueError):
    """Raised by shape inference; the graph turns it into a GraphError naming the node."""


def _pair(value: Any, attr: str) -> list[int]:
    if isinstance(value, bool):
        raise OpError(f"attribute '{attr}' must be an int or a pair of ints, got {value!r}")
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, list | tuple) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return [int(value[0]), int(value[1])]
    raise OpError(f"attribute '{attr}' must be an int or a pair of ints, got {value!r}")


def _int(value: Any, attr: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OpError(f"attribute '{attr}' must be an int, got {value!r}")
    return int(value)


def _bool(value: Any, attr: str) -> bool:
    if not isinstance(value, bool):
        raise OpError(f"attribute '{attr}' must be true or false, got {value!r}")
    return value


def _float(value: Any, attr: str) -> float:
    """A float rounded to 6 significant digits, so float32 round trips keep the graph id."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OpError(f"attribute '{attr}' must be a number, got {value!r}")
    try:
        return float(f"{float(value):.6g}")
    except OverflowError:
        raise OpError(f"attribute '{attr}' must be a float, got {value!r}") from None


def _shape(value: Any, attr: str) -> list[int]:
    if not isinstance(value, list | tuple) or not value:
        raise OpError(f"attribute '{attr}' must be a non-empty list of ints, got {value!r}")
    return [_positive(_int(v, attr), attr) for v in value]


def _positive(value: int, attr: str) -> int:
    if value <= 0:
        raise OpError(f"attribute '{attr}' must be positive, got {value}")
    return value


_REQUIRED = object()


@attrs.frozen
class Attr:
    """One attribute of an op: its converter and its default (or required)."""

    convert: Callable[[Any, str], Any]
    default: Any = _REQUIRED
    omit_default: bool = False
    """Leave the attribute out of the normalised attributes when it has its default. For an
    attribute added to an op after graphs of it were stored: their canonical forms, and so
    their ids, stay as they were; readers take its absence as the default."""


@attrs.frozen
class OpSpec:
    """An op: how many inputs it takes, its attributes and its shape function."""

    name: str
    min_inputs: int
    max_inputs: int | None
    attributes: Mapping[str, Attr]
    infer: Callable[[list[Shape], dict[str, Any]], Shape]
    complete: Callable[[dict[str, Any]], None] | None = None
    """Resolves attributes that default to others, so equal ops get equal canonical forms."""

    def normalize(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults and canonicalise values; raise OpError on unknown or bad attributes."""
        unknown = sorted(set(given) - set(self.attributes))
        if unknown:
            raise OpError(
                f"unknown attribute(s) {', '.join(unknown)}; "
                f"{self.name} takes {', '.join(self.attributes) or 'none'}"
            )
        out: dict[str, Any] = {}
        for key, spec in self.attributes.items():
            if key in given and given[key] is not None:
                value = spec.convert(given[key], key)
            elif spec.default is _REQUIRED:
                raise OpError(f"missing required attribute '{key}'")
            else:
                value = spec.convert(spec.default, key) if spec.default is not None else None
            if not (spec.omit_default and value == spec.default):
                out[key] = value
        if self.complete is not None:
            self.complete(out)
        return out


def _expect_rank(shape: Shape, rank: int, what: str) -> None:
    if len(shape) != rank:
        raise OpError(f"expects a rank-{rank} {what} input, got shape {list(shape)}")


def _spatial_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1,
                 ceil: bool = False) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    if not ceil:
        return span // stride + 1
    out = -(-span // stride) + 1  # ceil in integers: sizes may be past a float's range
    # As PyTorch and ONNX do: the last window must start inside the input or left padding.
    return out - 1 if (out - 1) * stride >= size + pad else out


def _infer_input(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    return tuple(a["shape"])


def _infer_conv2d(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    (shape,) = inputs
    _expect_rank(shape, 3, "(C, H, W)")
    c, h, w = shape
    groups, out_channels = a["groups"], a["out_channels"]
    if c % groups or out_channels % groups:
        raise OpError(
            f"groups={groups} must divide input channels ({c}) and out_channels ({out_channels})"
        )
    oh, ow = (
        _spatial_out(size, k, s, p, d)
        for size, k, s, p, d in zip(
            (h, w), a["kernel_size"], a["stride"], a["padding"], a["dilation"], strict=True
        )
    )
    if oh < 1 or ow < 1:
        raise OpError(
            f"output would be empty: input {h}x{w}, kernel {a['kernel_size']}, "
            f"stride {a['stride']}, padding {a['padding']}, dilation {a['dilation']}"
        )
    return (out_channels, oh, ow)


def _infer_pool(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    (shape,) = inputs
    _expect_rank(shape, 3, "(C, H, W)")
    c, h, w = shape
    stride = a["stride"]
    for k, p in zip(a["kernel_size"], a["padding"], strict=True):
        if p * 2 > k:
            raise OpError(f"padding {a['padding']} must be at most half the kernel {k}")
    oh, ow = (
        _spatial_out(size, k, s, p, ceil=a.get("ceil_mode", False))
        for size, k, s, p in zip((h, w), a["kernel_size"], stride, a["padding"], strict=True)
    )
    if oh < 1 or ow < 1:
        raise OpError(f"output would be empty: input {h}x{w}, kernel {a['kernel_size']}")
    return (c, oh, ow)


def _infer_same(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    return inputs[0]


def _infer_channels(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    (shape,) = inputs
    if len(shape) not in (1, 3):
        raise OpError(f"expects a (C,) or (C, H, W) input, got shape {list(shape)}")
    return shape


def _infer_global_avgpool(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    (shape,) = inputs
    _expect_rank(shape, 3, "(C, H, W)")
    return (shape[0], 1, 1)


def _infer_add(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    first = inputs[0]
    for other in inputs[1:]:
        if other != first:
            raise OpError(f"inputs must have equal shapes, got {[list(s) for s in inputs]}")
    return first


def _infer_mul(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    """Elementwise product; an axis of size 1 in one input broadcasts (scales (C, 1, 1))."""
    first, second = inputs
    if len(first) != len(second) or any(
        x != y and 1 not in (x, y) for x, y in zip(first, second, strict=True)
    ):
        raise OpError(f"input shapes {list(first)} and {list(second)} do not broadcast: each "
                      "axis must be equal or 1 in one of them")
    return tuple(max(x, y) for x, y in zip(first, second, strict=True))


def _infer_channel_shuffle(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    """ShuffleNet's shuffle: channels seen as (groups, C / groups), transposed, flattened."""
    (shape,) = inputs
    _expect_rank(shape, 3, "(C, H, W)")
    if shape[0] % a["groups"]:
        raise OpError(f"groups={a['groups']} must divide the input channels ({shape[0]})")
    return shape


def _infer_slice(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    """The range [start, end) of one axis (0 = channels, as concat's axis)."""
    (shape,) = inputs
    axis, start, end = a["axis"], a["start"], a["end"]
    if not 0 <= axis < len(shape):
        raise OpError(f"axis {axis} is out of range for a rank-{len(shape)} input")
    if not start < end <= shape[axis]:
        raise OpError(f"range [{start}, {end}) must be non-empty and within axis {axis} "
                      f"of size {shape[axis]}")
    return shape[:axis] + (end - start,) + shape[axis + 1 :]


def _infer_concat(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    axis = a["axis"]
    rank = len(inputs[0])
    if not 0 <= axis < rank:
        raise OpError(f"axis {axis} is out of range for rank-{rank} inputs")
    for other in inputs[1:]:
        if len(other) != rank or any(
            x != y for i, (x, y) in enumerate(zip(inputs[0], other, strict=True)) if i != axis
        ):
            raise OpError(
                f"inputs must agree except on axis {axis}, got {[list(s) for s in inputs]}"
            )
    total = sum(s[axis] for s in inputs)
    return inputs[0][:axis] + (total,) + inputs[0][axis + 1 :]


def _infer_linear(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    (shape,) = inputs
    _expect_rank(shape, 1, "(F,)")
    return (a["out_features"],)


def _infer_flatten(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    return (math.prod(inputs[0]),)


def _infer_zero(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    (shape,) = inputs
    if a["stride"] == 1:
        return shape
    _expect_rank(shape, 3, "(C, H, W)")
    c, h, w = shape
    return (c, -(-h // a["stride"]), -(-w // a["stride"]))


def _infer_lstm(inputs: list[Shape], a: dict[str, Any]) -> Shape:
    """Every step's hidden state; a bidirectional LSTM's forward and reverse ones concatenated."""
    (shape,) = inputs
    _expect_rank(shape, 2, "(T, F)")
    directions = 2 if a.get("bidirectional", False) else 1
    return (shape[0], directions * a["hidden_size"])


def _stride_defaults_to_kernel(a: dict[str, Any]) -> None:
    if a["stride"] is None:
        a["stride"] = list(a["kernel_size"])


def _positive_int(value: Any, attr: str) -> int:
    return _positive(_int(value, attr), attr)


def _non_negative_int(value: Any, attr: str) -> int:
    value = _int(value, attr)
    if value < 0:
        raise OpError(f"attribute '{attr}' must not be negative, got {value}")
    return value


def _non_negative_pair(value: Any, attr: str) -> list[int]:
    pair = _pair(value, attr)
    if min(pair) < 0:
        raise OpError(f"attribute '{attr}' must not be negative, got {value!r}")
    return pair


def _positive_pair(value: Any, attr: str) -> list[int]:
    pair = _pair(value, attr)
    if min(pair) <= 0:
        raise OpError(f"attribute '{attr}' must be positive, got {value!r}")
    return pair


def _optional_positive_pair(value: Any, attr: str) -> list[int] | None:
    return None if value is None else _positive_pair(value, attr)


_ACTIVATIONS = ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu",
                "identity")
"""Elementwise ops of one input; hardsigmoid is relu6(x + 3) / 6 and silu x * sigmoid(x)."""
_POOL_ATTRS = {
    "kernel_size": Attr(_positive_pair),
    "stride": Attr(_optional_positive_pair, None),
    "padding": Attr(_non_negative_pair, 0),
}

OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in [
        OpSpec("input", 0, 0, {"shape": Attr(_shape)}, _infer_input),
        OpSpec(
            "conv2d",
            1,
            1,
            {
                "out_channels": Attr(_positive_int),
                "kernel_size": Attr(_positive_pair),
                "stride": Attr(_positive_pair, 1),
                "padding": Attr(_non_negative_pair, 0),
                "dilation": Attr(_positive_pair, 1),
                "groups": Attr(_positive_int, 1),
                "bias": Attr(_bool, False),
            },
            _infer_conv2d,
        ),
        OpSpec("batchnorm", 1, 1, {"eps": Attr(_float, 1e-5)}, _infer_channels),
        *(OpSpec(name, 1, 1, {}, _infer_same) for name in _ACTIVATIONS),
        OpSpec("maxpool", 1, 1, {**_POOL_ATTRS, "ceil_mode": Attr(_bool, False)}, _infer_pool,
               _stride_defaults_to_kernel),
        OpSpec(
            "avgpool",
            1,
            1,
            {**_POOL_ATTRS, "ceil_mode": Attr(_bool, False),
             "count_include_pad": Attr(_bool, False)},
            _infer_pool,
            _stride_defaults_to_kernel,
        ),
        OpSpec("global_avgpool", 1, 1, {}, _infer_global_avgpool),
        OpSpec("add", 2, None, {}, _infer_add),
        OpSpec("mul", 2, 2, {}, _infer_mul),
        OpSpec("concat", 1, None, {"axis": Attr(_int, 0)}, _infer_concat),
        OpSpec(
            "slice", 1, 1,
            {"axis": Attr(_int, 0), "start": Attr(_non_negative_int),
             "end": Attr(_non_negative_int)},
            _infer_slice,
        ),
        OpSpec("channel_shuffle", 1, 1, {"groups": Attr(_positive_int)}, _infer_channel_shuffle),
        OpSpec(
            "linear", 1, 1, {"out_features": Attr(_positive_int), "bias": Attr(_bool, True)},
            _infer_linear,
        ),
        OpSpec("flatten", 1, 1, {}, _infer_flatten),
        OpSpec("zero", 1, 1, {"stride": Attr(_positive_int, 1)}, _infer_zero),
        OpSpec(
            "lstm",
            1,
            1,
            {"hidden_size": Attr(_positive_int), "num_layers": Attr(_positive_int, 1),
             # absent when false: forward LSTMs keep the ids they had before it existed
             "bidirectional": Attr(_bool, False, omit_default=True)},
            _infer_lstm,
        ),
    ]
}
