"""ONNX model -> Graph IR.

The importer walks the ONNX nodes in order and tracks what each tensor is: a constant
(initializers, ``Constant`` nodes and shape arithmetic on them are folded with numpy), an IR
tensor, or part of a multi-node pattern (gelu's erf formula, silu's ``x * Sigmoid(x)``,
``MatMul`` + ``Add`` as linear, ``Slice`` + ``Mul`` by zero as a strided zero, a channel
shuffle's ``Reshape`` + ``Transpose`` + ``Reshape``, LSTM's transposes and squeezes). Only the
structure is imported; weights are not (backends use :func:`lenna_core.ir.init_weights`).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from lenna_core.api import OPS, Graph, LennaError, Node, OpError, first_line

if TYPE_CHECKING:
    import onnx

CONSTANT_OPS = frozenset({
    "Constant", "ConstantOfShape", "Shape", "Gather", "Unsqueeze", "Cast", "Expand", "Sub",
})
"""Ops imported only when all their inputs are constants (or, for Shape, known shapes)."""
SUPPORTED_OPS = CONSTANT_OPS | frozenset({
    "Conv", "BatchNormalization", "Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "Gelu",
    "Erf", "Identity", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "Add", "Sum",
    "Mul", "Div", "Concat", "Gemm", "MatMul", "Flatten", "Reshape", "Slice", "Split", "Squeeze",
    "Transpose", "LSTM",
})
FLOAT_TYPES = (1, 10, 11, 16)  # FLOAT, FLOAT16, DOUBLE, BFLOAT16
MAX_FOLDED = 1 << 22
"""Elements a folded constant may have: shape arithmetic needs a few; more is a memory bomb."""
_SQRT2 = math.sqrt(2.0)


class _Const:
    """A constant; initializers are read only when their values (not shapes) are needed."""

    def __init__(self, shape: tuple[int, ...], load: Callable[[], np.ndarray]) -> None:
        self.shape = shape
        self._load = load
        self._value: np.ndarray | None = None

    @classmethod
    def of(cls, value: Any) -> _Const:
        array = np.asarray(value)
        return cls(array.shape, lambda: array)

    @property
    def value(self) -> np.ndarray:
        if self._value is None:
            self._value = self._load()
        return self._value

    def is_scalar(self, target: float, rel: float = 1e-4) -> bool:
        return self.value.size == 1 and math.isclose(float(self.value.reshape(())), target,
                                                     rel_tol=rel, abs_tol=1e-12)


@attrs.frozen
class _Tensor:
    """An IR node's output; a sequence may be time-major (T, B, F) between LSTM transposes."""

    node: str
    time_major: bool = False
    lstm_tail: bool = False
    """True for the squeezed output of an LSTM used by nothing else: a next layer may stack."""


@attrs.frozen
class _LstmOutput:
    """An ONNX LSTM's ``Y``, which carries a num_directions axis until it is squeezed."""

    node: str
    time_major: bool
    single_use: bool


@attrs.frozen
class _Partial:
    """A step of a pattern on IR tensor ``node``: ``x/sqrt2``, ``erf``, ``1+erf``,
    ``x(1+erf)``, ``x/2``, ``matmul`` (``size`` = out features), ``strided`` (``size``), or a
    channel shuffle's ``grouped`` (N, g, C/g, H, W) and ``swapped`` (N, C/g, g, H, W) with
    ``size`` = g."""

    kind: str
    node: str
    size: int = 0


Value = _Const | _Tensor | _LstmOutput | _Partial


class _Attributes(dict):
    """A node's attributes; a missing one that the op needs is the node's error."""

    def __missing__(self, key: str) -> Any:
        raise _NodeError(f"has no attribute '{key}'")


def _attributes(node: onnx.NodeProto) -> _Attributes:
    from onnx import helper

    return _Attributes((a.name, helper.get_attribute_value(a)) for a in node.attribute)


def _folded(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape``, checked to be one a folded constant may have."""
    if any(d < 0 for d in shape) or math.prod(shape) > MAX_FOLDED:
        raise _NodeError(f"would fold a constant of shape {list(shape)}; LENNA folds constants "
                         f"of at most {MAX_FOLDED} elements")
    return shape


def _malformed_errors() -> tuple[type[Exception], ...]:
    """What numpy, onnx and the ops raise on a node whose attributes or constants make no
    sense; the importer reports them as the node's error."""
    from onnx.checker import ValidationError

    return (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, OverflowError,
            ValidationError)


def _label(node: onnx.NodeProto, index: int) -> str:
    return f"'{node.name}'" if node.name else f"#{index}"


def _broadcast(x: np.ndarray, y: np.ndarray) -> None:
    """Check that an elementwise op on the constants ``x`` and ``y`` folds to a small one."""
    _folded(np.broadcast_shapes(x.shape, y.shape))


def _float32(value: float) -> float:
    """The shortest decimal that a float32 attribute stands for (1e-5, not 9.99e-6)."""
    return float(str(np.float32(value)))


def _symmetric(pads: list[int], what: str) -> list[int]:
    if len(pads) != 4:
        raise _NodeError(f"expects 2-D pads, got {pads}")
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise _NodeError(f"asymmetric {what} padding {pads} is not supported")
    return [pads[0], pads[1]]


class _NodeError(Exception):
    """A problem with one ONNX node; the importer adds the model and node names."""


class _Importer:
    def __init__(self, model: onnx.ModelProto, base_dir: str | None) -> None:
        self.model = model
        self.base_dir = base_dir
        self.values: dict[str, Value] = {}
        self.nodes: list[dict[str, Any]] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.counts: Counter[str] = Counter()
        self.linear_cache: dict[_Partial, str] = {}
        self.sigmoids: dict[str, str] = {}  # IR sigmoid -> its ONNX output, for silu
        self.batch = 1
        graph = model.graph
        # Shape nodes read only shapes: they do not count as uses of a tensor's values.
        self.uses = Counter(i for n in graph.node if n.op_type != "Shape" for i in n.input if i)
        self.uses.update(o.name for o in graph.output)

    # -- IR construction ------------------------------------------------------------------
    def add(self, op: str, inputs: list[str], **attributes: Any) -> str:
        spec = OPS[op]
        try:
            normal = spec.normalize(attributes)
            shape = spec.infer([self.shapes[i] for i in inputs], normal)
        except OpError as exc:
            raise _NodeError(f"cannot be imported as {op}: {exc}") from None
        name = f"{op}_{self.counts[op]}"
        self.counts[op] += 1
        self.nodes.append({"name": name, "op": op, "inputs": inputs, "attrs": normal})
        self.shapes[name] = tuple(shape)
        return name

    def node_of(self, name: str) -> dict[str, Any]:
        return next(n for n in self.nodes if n["name"] == name)

    # -- values -----------------------------------------------------------------------------
    def const_from_proto(self, tensor: onnx.TensorProto) -> _Const:
        from onnx import numpy_helper

        def load() -> np.ndarray:
            try:
                return numpy_helper.to_array(tensor, self.base_dir)
            except (OSError, *_malformed_errors()) as exc:
                raise _NodeError(f"the data of tensor '{tensor.name}' cannot be read: "
                                 f"{first_line(exc)}") from None

        return _Const(tuple(tensor.dims), load)

    def tensor(self, value: Value | None, what: str = "input") -> str:
        """The IR node of a batch-first tensor; patterns that end here become nodes."""
        if isinstance(value, _Tensor) and not value.time_major:
            return value.node
        if isinstance(value, _Partial) and value.kind == "matmul":
            if value not in self.linear_cache:
                self.linear_cache[value] = self.add("linear", [value.node],
                                                    out_features=value.size, bias=False)
            return self.linear_cache[value]
        if isinstance(value, _Tensor | _LstmOutput):
            raise _NodeError(f"its {what} is a time-major or unsqueezed LSTM output, which "
                             "only a Transpose or Squeeze may use")
        if isinstance(value, _Const):
            raise _NodeError(f"its {what} is a constant; LENNA imports ops on tensors only")
        if value is None:
            raise _NodeError(f"its {what} is not computed by any node")
        raise _NodeError(f"its {what} is an unfinished pattern ({value.kind})")

    def const(self, value: Value | None, what: str) -> _Const:
        if not isinstance(value, _Const):
            raise _NodeError(f"its {what} must be a constant (an initializer)")
        return value

    def full_shape(self, node: str) -> tuple[int, ...]:
        return (self.batch, *self.shapes[node])

    # -- driver -------------------------------------------------------------------------------
    def run(self) -> tuple[list[dict[str, Any]], list[str]]:
        graph = self.model.graph
        for tensor in graph.initializer:
            self.values[tensor.name] = self.const_from_proto(tensor)
        self.import_inputs()
        malformed = _malformed_errors()
        for index, node in enumerate(graph.node):
            try:
                args = [self.values.get(i) if i else None for i in node.input]
                missing = [i for i, v in zip(node.input, args, strict=True) if i and v is None]
                if missing:
                    raise _NodeError(f"input '{missing[0]}' is not defined before the node")
                outputs = getattr(self, f"op_{node.op_type}")(node, args, _attributes(node))
            except _NodeError as exc:
                raise _NodeError(f"node {_label(node, index)} ({node.op_type}): {exc}") from None
            except malformed as exc:
                raise _NodeError(f"node {_label(node, index)} ({node.op_type}) is malformed: "
                                 f"{first_line(exc)}") from None
            for k, out_name in enumerate(node.output):
                if k < len(outputs):
                    self.values[out_name] = outputs[k]
                elif self.uses[out_name]:
                    raise _NodeError(f"node '{node.name}' ({node.op_type}): its output "
                                     f"'{out_name}' is used, which LENNA cannot import")
        outputs = []
        for out in graph.output:
            try:
                outputs.append(self.tensor(self.values.get(out.name), "value"))
            except _NodeError as exc:
                raise _NodeError(f"graph output '{out.name}': {exc}") from None
        return self.nodes, outputs

    def import_inputs(self) -> None:
        graph_inputs = [i for i in self.model.graph.input if i.name not in self.values]
        if not graph_inputs:
            raise _NodeError("the model has no inputs")
        for k, value_info in enumerate(graph_inputs):
            tensor_type = value_info.type.tensor_type
            if tensor_type.elem_type not in FLOAT_TYPES:
                raise _NodeError(f"input '{value_info.name}' is not a float tensor")
            dims = list(tensor_type.shape.dim)
            if len(dims) < 2:
                raise _NodeError(f"input '{value_info.name}' needs a batch and a feature "
                                 f"dimension, got rank {len(dims)}")
            if any(d.dim_value <= 0 for d in dims[1:]):
                raise _NodeError(f"input '{value_info.name}' has a dynamic dimension other "
                                 "than the batch; LENNA needs static shapes")
            if k == 0 and dims[0].dim_value > 0:
                self.batch = dims[0].dim_value
            name = "input" if len(graph_inputs) == 1 else f"input_{k}"
            self.nodes.append({"name": name, "op": "input", "inputs": [],
                               "attrs": {"shape": [d.dim_value for d in dims[1:]]}})
            self.shapes[name] = tuple(d.dim_value for d in dims[1:])
            self.values[value_info.name] = _Tensor(name)

    # -- constant ops -------------------------------------------------------------------------
    def op_Constant(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        from onnx import numpy_helper

        if "value" in a:
            return [_Const.of(numpy_helper.to_array(a["value"]))]
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in a:
                return [_Const.of(np.asarray(a[key], dtype=dtype))]
        raise _NodeError("has a kind of value LENNA cannot read")

    def op_ConstantOfShape(self, node: Any, args: list[Value | None],
                           a: dict[str, Any]) -> list[Value]:
        from onnx import numpy_helper

        fill = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        shape = _folded(tuple(int(s) for s in self.const(args[0], "shape").value.reshape(-1)))
        return [_Const.of(np.full(shape, fill.reshape(()), dtype=fill.dtype))]

    def op_Shape(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        value = args[0]
        if isinstance(value, _Const):
            shape: tuple[int, ...] = value.shape
        elif isinstance(value, _Tensor | _LstmOutput):
            shape = self.full_shape(value.node)
            if isinstance(value, _LstmOutput):
                shape = (*shape[:2], 1, shape[2])  # (B, T, 1, H)
            if value.time_major:
                shape = (shape[1], shape[0], *shape[2:])
        else:
            shape = self.full_shape(self.tensor(value))
        return [_Const.of(np.asarray(shape[a.get("start", 0):a.get("end")], dtype=np.int64))]

    def op_Gather(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        data, indices = (self.const(v, "input").value for v in args)
        axis = a.get("axis", 0) % max(data.ndim, 1)
        _folded((*data.shape[:axis], *indices.shape, *data.shape[axis + 1:]))
        return [_Const.of(np.take(data, indices, axis=axis))]

    def _axes(self, args: list[Value | None], a: dict[str, Any]) -> list[int] | None:
        if len(args) > 1 and args[1] is not None:
            return [int(x) for x in self.const(args[1], "axes").value.reshape(-1)]
        return a.get("axes")

    def op_Unsqueeze(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        data = self.const(args[0], "input").value
        axes = self._axes(args, a) or []
        rank = data.ndim + len(axes)
        return [_Const.of(np.expand_dims(data, tuple(x % rank for x in axes)))]

    def op_Cast(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        from onnx import helper

        data = self.const(args[0], "input").value
        return [_Const.of(data.astype(helper.tensor_dtype_to_np_dtype(a["to"])))]

    def op_Expand(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        data, shape = (self.const(v, "input").value for v in args)
        target = _folded(np.broadcast_shapes(data.shape,
                                             tuple(int(s) for s in shape.reshape(-1))))
        return [_Const.of(np.broadcast_to(data, target).copy())]

    def op_Sub(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x, y = (self.const(v, "input").value for v in args)
        _broadcast(x, y)
        return [_Const.of(x - y)]

    # -- activations and simple ops -----------------------------------------------------------
    def _unary(self, op: str, args: list[Value | None]) -> list[Value]:
        return [_Tensor(self.add(op, [self.tensor(args[0])]))]

    def op_Relu(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        return self._unary("relu", args)

    def op_Sigmoid(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        name = self.add("sigmoid", [self.tensor(args[0])])
        self.sigmoids[name] = node.output[0]
        return [_Tensor(name)]

    def op_HardSigmoid(self, node: Any, args: list[Value | None],
                       a: dict[str, Any]) -> list[Value]:
        alpha, beta = a.get("alpha", 0.2), a.get("beta", 0.5)
        if not (math.isclose(alpha, 1 / 6, rel_tol=1e-4) and math.isclose(beta, 0.5)):
            raise _NodeError(f"only torch's hardsigmoid (alpha 1/6, beta 0.5) is supported, got "
                             f"alpha {alpha:.6g}, beta {beta:.6g}")
        return self._unary("hardsigmoid", args)

    def op_HardSwish(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        return self._unary("hardswish", args)

    def op_Gelu(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        approximate = a.get("approximate", b"none")
        if approximate not in (b"none", "none"):
            raise _NodeError("approximate gelu is not supported (only the erf form)")
        return self._unary("gelu", args)

    def op_Identity(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        if isinstance(args[0], _Const):
            return [args[0]]
        return self._unary("identity", args)

    def op_Clip(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        low, high = a.get("min"), a.get("max")
        if len(args) > 1 and args[1] is not None:
            low = float(self.const(args[1], "min").value.reshape(()))
        if len(args) > 2 and args[2] is not None:
            high = float(self.const(args[2], "max").value.reshape(()))
        if low == 0 and high == 6:
            return self._unary("relu6", args)
        if low == 0 and high is None:
            return self._unary("relu", args)
        raise _NodeError(f"only Clip(0, 6) (relu6) and Clip(0) (relu) are supported, "
                         f"got Clip({low}, {high})")

    def op_GlobalAveragePool(self, node: Any, args: list[Value | None],
                             a: dict[str, Any]) -> list[Value]:
        return self._unary("global_avgpool", args)

    def op_ReduceMean(self, node: Any, args: list[Value | None],
                      a: dict[str, Any]) -> list[Value]:
        x = self.tensor(args[0])
        rank = len(self.full_shape(x))
        if rank != 4 or sorted(ax % rank for ax in self._axes(args, a) or []) != [2, 3]:
            raise _NodeError("only a mean over (H, W) of (N, C, H, W) is supported")
        pooled = self.add("global_avgpool", [x])
        return [_Tensor(pooled if a.get("keepdims", 1) else self.add("flatten", [pooled]))]

    def op_Flatten(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x = self.tensor(args[0])
        if a.get("axis", 1) not in (1, 1 - len(self.full_shape(x))):
            raise _NodeError(f"only Flatten(axis=1) is supported, got axis {a['axis']}")
        return [_Tensor(self.add("flatten", [x]))]

    def op_Reshape(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        data = args[0]
        if isinstance(data, _Const):
            return [_Const.of(np.reshape(data.value, self.const(args[1], "shape").value))]
        if isinstance(data, _Partial) and data.kind == "swapped":
            channels, height, width = self.shapes[data.node]
            swapped = (self.batch, channels // data.size, data.size, height, width)
            if self._target(swapped, args[1], a) != self.full_shape(data.node):
                raise _NodeError("only a reshape back to (N, C, H, W) may end a channel shuffle")
            return [_Tensor(self.add("channel_shuffle", [data.node], groups=data.size))]
        x = self.tensor(data)
        full = self.full_shape(x)
        resolved = self._target(full, args[1], a)
        if resolved == full:
            return [_Tensor(x)]
        if resolved == (self.batch, math.prod(full[1:])):
            return [_Tensor(self.add("flatten", [x]))]
        if (len(full) == 4 and len(resolved) == 5 and resolved[0] == full[0]
                and resolved[1] * resolved[2] == full[1] and resolved[3:] == full[2:]):
            return [_Partial("grouped", x, resolved[1])]
        raise _NodeError("only a reshape to (batch, features) or a channel shuffle's to "
                         f"(N, groups, C / groups, H, W) is supported, got {list(resolved)}")

    def _target(self, full: tuple[int, ...], shape: Value | None,
                a: dict[str, Any]) -> tuple[int, ...]:
        """A Reshape's target shape for an input of shape ``full``, its 0s and -1 resolved."""
        target = [int(t) for t in self.const(shape, "shape").value]
        if not a.get("allowzero", 0):
            target = [full[i] if t == 0 else t for i, t in enumerate(target)]
        known = math.prod(t for t in target if t != -1)
        if target.count(-1) > 1 or known <= 0:
            raise _NodeError(f"has an invalid target shape {target}")
        return tuple(math.prod(full) // known if t == -1 else t for t in target)

    def op_Sum(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        names = [self.tensor(v) for v in args]
        return [_Tensor(names[0] if len(names) == 1 else self.add("add", names))]

    def op_Concat(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        axis = a["axis"]
        consts = [v for v in args if isinstance(v, _Const)]
        if len(consts) == len(args):
            _folded((sum(v.value.size for v in consts),))
            return [_Const.of(np.concatenate([v.value for v in consts], axis=axis))]
        names = [self.tensor(v) for v in args]
        rank = len(self.full_shape(names[0]))
        axis = axis % rank
        if axis == 0:
            raise _NodeError("concatenation along the batch axis is not supported")
        return [_Tensor(self.add("concat", names, axis=axis - 1))]

    # -- arithmetic patterns -------------------------------------------------------------------
    def op_Add(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x, y = args
        if isinstance(x, _Const) and isinstance(y, _Const):
            _broadcast(x.value, y.value)
            return [_Const.of(x.value + y.value)]
        if isinstance(x, _Const):
            x, y = y, x
        if isinstance(y, _Const):
            if isinstance(x, _Partial) and x.kind == "erf" and y.is_scalar(1.0):
                return [_Partial("1+erf", x.node)]
            if isinstance(x, _Partial) and x.kind == "matmul" and y.value.size == x.size:
                return [_Tensor(self.add("linear", [x.node], out_features=x.size, bias=True))]
            raise _NodeError("adding a constant is only supported as a linear bias or in gelu")
        return [_Tensor(self.add("add", [self.tensor(x), self.tensor(y)]))]

    def op_Mul(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x, y = args
        if isinstance(x, _Const) and isinstance(y, _Const):
            _broadcast(x.value, y.value)
            return [_Const.of(x.value * y.value)]
        if isinstance(x, _Const) or (isinstance(x, _Partial) and isinstance(y, _Tensor)):
            x, y = y, x
        if isinstance(y, _Const):
            if not y.value.any():
                stride = x.size if isinstance(x, _Partial) and x.kind == "strided" else 1
                source = x.node if stride > 1 else self.tensor(x)  # type: ignore[union-attr]
                return [_Tensor(self.add("zero", [source], stride=stride))]
            if isinstance(x, _Tensor) and y.is_scalar(1 / _SQRT2):
                return [_Partial("x/sqrt2", self.tensor(x))]
            if isinstance(x, _Tensor) and y.is_scalar(0.5):
                return [_Partial("x/2", self.tensor(x))]
            if isinstance(x, _Partial) and x.kind == "x(1+erf)" and y.is_scalar(0.5):
                return [_Tensor(self.add("gelu", [x.node]))]
        elif isinstance(x, _Tensor) and isinstance(y, _Partial) and y.kind == "1+erf":
            if self.tensor(x) == y.node:
                return [_Partial("x(1+erf)", y.node)]
        elif isinstance(x, _Partial) and isinstance(y, _Partial):
            kinds = {x.kind, y.kind}
            if kinds == {"x/2", "1+erf"} and x.node == y.node:
                return [_Tensor(self.add("gelu", [x.node]))]
        elif isinstance(x, _Tensor) and isinstance(y, _Tensor):
            return [_Tensor(self._product(node, self.tensor(x), self.tensor(y)))]
        raise _NodeError("multiplication is only supported of two tensors, by zero (zero op) and "
                         "in gelu")

    def _product(self, node: Any, x: str, y: str) -> str:
        """x * y: silu if one factor is the sigmoid of the other and used only here, else mul."""
        for gate, other, onnx_name in ((y, x, node.input[1]), (x, y, node.input[0])):
            if (self.sigmoids.get(gate) == onnx_name and self.uses[onnx_name] == 1
                    and self.node_of(gate)["inputs"] == [other]):
                self.nodes.remove(self.node_of(gate))
                return self.add("silu", [other])
        return self.add("mul", [x, y])

    def op_Div(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x, y = args
        if isinstance(x, _Const) and isinstance(y, _Const):
            _broadcast(x.value, y.value)
            quotient = x.value / y.value  # integer division truncates, as in ONNX
            return [_Const.of(quotient.astype(np.result_type(x.value, y.value)))]
        if isinstance(x, _Tensor) and isinstance(y, _Const) and y.is_scalar(_SQRT2):
            return [_Partial("x/sqrt2", self.tensor(x))]
        raise _NodeError("division is only supported by sqrt(2) in gelu")

    def op_Erf(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        (x,) = args
        if isinstance(x, _Partial) and x.kind == "x/sqrt2":
            return [_Partial("erf", x.node)]
        raise _NodeError("Erf is only supported in gelu's erf(x / sqrt(2))")

    def op_Slice(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        params = [self.const(v, "slice parameter").value.reshape(-1) if v is not None else None
                  for v in args[1:]]
        starts, ends, axes, steps = (params + [None] * 4)[:4]
        if axes is None:
            axes = np.arange(len(starts))
        if steps is None:
            steps = np.ones(len(starts), dtype=np.int64)
        data = args[0]
        if isinstance(data, _Const):
            index = [slice(None)] * data.value.ndim
            for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
                index[int(axis)] = slice(int(start), int(end), int(step))
            return [_Const.of(data.value[tuple(index)])]
        x = self.tensor(data)
        full = self.full_shape(x)
        axes = [int(ax) % len(full) for ax in axes]
        whole = all(int(e) >= full[ax] for e, ax in zip(ends, axes, strict=True))
        if (len(full) == 4 and sorted(axes) == [2, 3] and not any(starts) and whole
                and len(set(steps.tolist())) == 1 and steps[0] > 1):
            return [_Partial("strided", x, int(steps[0]))]
        if len(axes) == 1 and steps[0] == 1 and axes[0] != 0:
            size = full[axes[0]]
            start, end = (int(np.clip(v + size if v < 0 else v, 0, size))
                          for v in (starts[0], ends[0]))
            return [_Tensor(self.add("slice", [x], axis=axes[0] - 1, start=start, end=end))]
        raise _NodeError("only a step-1 slice of one axis other than the batch, or "
                         "x[:, :, ::s, ::s] followed by a multiplication by zero, is supported")

    def op_Split(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x = self.tensor(args[0])
        full = self.full_shape(x)
        axis = a.get("axis", 0) % len(full)
        if axis == 0:
            raise _NodeError("splitting the batch axis is not supported")
        if len(args) > 1 and args[1] is not None:
            sizes = [int(v) for v in self.const(args[1], "split").value.reshape(-1)]
        elif "split" in a:
            sizes = list(a["split"])
        else:  # equal pieces, the last one smaller if need be (opset 18)
            piece = -(-full[axis] // len(node.output))
            sizes = [min(piece, full[axis] - k * piece) for k in range(len(node.output))]
        if sum(sizes) != full[axis] or min(sizes) < 1:
            raise _NodeError(f"split sizes {sizes} must be positive and add up to the size of "
                             f"axis {axis}, {full[axis]}")
        starts = itertools.accumulate(sizes[:-1], initial=0)
        return [_Tensor(self.add("slice", [x], axis=axis - 1, start=start, end=start + size))
                for start, size in zip(starts, sizes, strict=True)]

    # -- layers with weights ------------------------------------------------------------------
    def _pads(self, a: dict[str, Any], spatial: tuple[int, ...], kernel: list[int],
              strides: list[int], dilations: list[int]) -> list[int]:
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad in ("NOTSET", ""):
            return _symmetric(list(a.get("pads", [0, 0, 0, 0])), "")
        if auto_pad == "VALID":
            return [0, 0]
        pads = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            if total % 2:
                raise _NodeError(f"auto_pad {auto_pad} needs asymmetric padding here, "
                                 "which is not supported")
            pads.append(total // 2)
        return pads

    def _window(self, a: dict[str, Any], x: str, kernel: list[int]) -> dict[str, Any]:
        if len(kernel) != 2 or len(self.shapes[x]) != 3:
            raise _NodeError("only 2-D windows on (N, C, H, W) tensors are supported")
        strides = list(a.get("strides", [1, 1]))
        dilations = list(a.get("dilations", [1, 1]))
        padding = self._pads(a, self.shapes[x][1:], kernel, strides, dilations)
        return {"kernel_size": kernel, "stride": strides, "padding": padding,
                "dilation": dilations}

    def op_Conv(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x = self.tensor(args[0])
        weight = self.const(args[1], "weight")
        bias = len(args) > 2 and args[2] is not None
        kernel = list(a.get("kernel_shape", weight.shape[2:]))
        window = self._window(a, x, kernel)
        groups = a.get("group", 1)
        if weight.shape[1] * groups != self.shapes[x][0]:
            raise _NodeError(f"weight shape {list(weight.shape)} with group={groups} does not "
                             f"fit {self.shapes[x][0]} input channels")
        return [_Tensor(self.add("conv2d", [x], out_channels=weight.shape[0], groups=groups,
                                 bias=bias, **window))]

    def _pool(self, op: str, args: list[Value | None], a: dict[str, Any],
              **extra: Any) -> list[Value]:
        x = self.tensor(args[0])
        window = self._window(a, x, list(a["kernel_shape"]))
        if window.pop("dilation") != [1, 1]:
            raise _NodeError("dilated pooling is not supported")
        if window["stride"] == window["kernel_size"]:
            window["stride"] = None  # the IR's default, so equal graphs hash equally
        return [_Tensor(self.add(op, [x], ceil_mode=bool(a.get("ceil_mode", 0)), **window,
                                 **extra))]

    def op_MaxPool(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        return self._pool("maxpool", args, a)

    def op_AveragePool(self, node: Any, args: list[Value | None],
                       a: dict[str, Any]) -> list[Value]:
        return self._pool("avgpool", args, a,
                          count_include_pad=bool(a.get("count_include_pad", 0)))

    def op_BatchNormalization(self, node: Any, args: list[Value | None],
                              a: dict[str, Any]) -> list[Value]:
        if a.get("training_mode", 0):
            raise _NodeError("training-mode batch normalization is not supported")
        for k, what in enumerate(("scale", "bias", "mean", "variance"), start=1):
            self.const(args[k], what)
        x = self.tensor(args[0])
        return [_Tensor(self.add("batchnorm", [x], eps=_float32(a.get("epsilon", 1e-5))))]

    def op_Gemm(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x = self.tensor(args[0])
        weight = self.const(args[1], "weight")
        if a.get("transA", 0):
            raise _NodeError("a transposed first input is not supported")
        f_in, f_out = weight.shape[::-1] if a.get("transB", 0) else weight.shape
        self._check_features(x, f_in)
        bias = len(args) > 2 and args[2] is not None
        return [_Tensor(self.add("linear", [x], out_features=f_out, bias=bias))]

    def op_MatMul(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x = self.tensor(args[0])
        weight = self.const(args[1], "weight")
        if len(weight.shape) != 2:
            raise _NodeError("only a product with a 2-D weight is supported")
        self._check_features(x, weight.shape[0])
        return [_Partial("matmul", x, weight.shape[1])]

    def _check_features(self, x: str, features: int) -> None:
        if self.shapes[x] != (features,):
            raise _NodeError(f"expects a (batch, {features}) input, got "
                             f"{list(self.full_shape(x))}")

    # -- LSTM and its layout ops ---------------------------------------------------------------
    def op_Transpose(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        (x,) = args
        if isinstance(x, _Const):
            return [_Const.of(np.transpose(x.value, a.get("perm")))]
        if isinstance(x, _Tensor) and len(self.shapes[x.node]) == 2 and a.get("perm") == [1, 0, 2]:
            return [_Tensor(x.node, time_major=not x.time_major)]
        if isinstance(x, _Partial) and x.kind == "grouped" and a.get("perm") == [0, 2, 1, 3, 4]:
            return [_Partial("swapped", x.node, x.size)]
        raise _NodeError("only swapping the batch and time axes of a sequence, or the group "
                         "axes of a channel shuffle, is supported")

    def op_Squeeze(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x, axes = args[0], self._axes(args, a)
        if isinstance(x, _Const):
            return [_Const.of(np.squeeze(x.value, tuple(axes) if axes else None))]
        if isinstance(x, _LstmOutput) and axes in ([1], [-3]) and x.time_major:
            return [_Tensor(x.node, time_major=True, lstm_tail=x.single_use)]
        if isinstance(x, _LstmOutput) and axes in ([2], [-2]) and not x.time_major:
            return [_Tensor(x.node, lstm_tail=x.single_use)]
        raise _NodeError("only squeezing the directions axis of an LSTM output is supported")

    def op_LSTM(self, node: Any, args: list[Value | None], a: dict[str, Any]) -> list[Value]:
        x = args[0]
        layout = a.get("layout", 0)
        if not isinstance(x, _Tensor) or len(self.shapes[x.node]) != 2:
            raise _NodeError("expects a (batch, time, features) sequence input")
        if x.time_major != (layout == 0):
            raise _NodeError("its input layout does not match its layout attribute; LENNA "
                             "reads the first input axis as the batch")
        weight = self.const(args[1], "W")
        self.const(args[2], "R")
        for k, what in ((3, "B"), (4, "sequence_lens"), (5, "initial_h"), (6, "initial_c")):
            if len(args) > k and args[k] is not None:
                self.const(args[k], what)
        direction = a.get("direction", b"forward")
        if direction not in (b"forward", "forward"):
            raise _NodeError(f"only forward LSTMs are supported, got {direction!r}")
        if a.get("activations") not in (None, [b"Sigmoid", b"Tanh", b"Tanh"]):
            raise _NodeError(f"custom activations {a['activations']} are not supported")
        if "clip" in a or a.get("input_forget", 0):
            raise _NodeError("clip and input_forget are not supported")
        hidden = a.get("hidden_size", weight.shape[1] // 4)
        if weight.shape[2] != self.shapes[x.node][1]:
            raise _NodeError(f"W shape {list(weight.shape)} does not fit input features "
                             f"{self.shapes[x.node][1]}")
        single_use = self.uses[node.output[0]] == 1
        previous = self.node_of(x.node)
        if (x.lstm_tail and self.uses[node.input[0]] == 1 and previous["op"] == "lstm"
                and previous["attrs"]["hidden_size"] == hidden):
            previous["attrs"]["num_layers"] += 1
            return [_LstmOutput(x.node, x.time_major, single_use)]
        lstm = self.add("lstm", [x.node], hidden_size=hidden)
        return [_LstmOutput(lstm, x.time_major, single_use)]


def onnx_to_graph(model: onnx.ModelProto, name: str = "the model",
                  base_dir: str | None = None) -> Graph:
    """The Graph IR of an ONNX model; LennaError names unsupported ops or the failing node.

    ``name`` labels error messages (a file name); ``base_dir`` is where the model's external
    data lives, needed only if a small constant was saved externally.
    """
    unsupported = sorted({  # str(): a name that is not UTF-8 is read as bytes
        str(n.op_type) if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        for n in model.graph.node
        if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED_OPS
    })
    if unsupported:
        raise LennaError(f"{name} uses ops LENNA cannot import: {', '.join(unsupported)}")
    try:
        nodes, outputs = _Importer(model, base_dir).run()
    except _NodeError as exc:
        raise LennaError(f"{name}: {exc}") from None
    if not outputs:
        raise LennaError(f"{name}: the model has no outputs")
    graph = Graph(tuple(Node(n["name"], n["op"], tuple(n["inputs"]), n["attrs"]) for n in nodes),
                  tuple(outputs))
    return graph


def load_onnx_graph(path: Path) -> Graph:
    """Read an ONNX file (not its external weights) and import its graph."""
    import onnx

    if not path.is_file():
        raise LennaError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise LennaError(f"{path} is not a valid ONNX model: {first_line(exc)}") from None
    if model.ir_version <= 0 or not model.graph.node:
        raise LennaError(f"{path} is not a valid ONNX model: it has no IR version or no nodes")
    return onnx_to_graph(model, path.name, str(path.parent))
