"""``torch.nn.Module`` -> Graph IR, through ``torch.fx.symbolic_trace``.

Node names keep where each op comes from. A module call is named by its path in
``named_modules()`` (``layer1.0.conv1``); a function or method call by the path of the module
whose ``forward`` makes it plus the function's name (``layer1.0.add``; ``flatten`` at the top).
A piece of a ``chunk`` or ``split`` adds its index (``stage2.1.chunk.1``), ShuffleNet's
view/transpose/view is ``channel_shuffle``. A name already taken gets ``@1``, ``@2``... as in
torch.fx's module stacks (torchvision's BasicBlock calls its ``relu`` twice:
``layer1.0.relu``, ``layer1.0.relu@1``).
:func:`weights_from_module` uses these names to find each node's parameters.

Shapes come from the IR's own inference, checked node by node against torch's, which are
propagated with fake tensors: the module is not run and its buffers are not touched.
Everything the IR cannot express is collected, so one error names all of it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import math
import sys
import warnings
from collections import Counter
from typing import TYPE_CHECKING, Any

import attrs

from lenna_core.api import (
    OPS,
    Graph,
    LennaError,
    Node,
    OpError,
    Shape,
    Weights,
    conv_layers,
    first_line,
    parameter_specs,
)

if TYPE_CHECKING:
    import torch
    from torch import fx

__all__ = ["conv_layers", "module_to_graph", "weights_from_module"]

BATCH = 2
"""Batch size of the fake input; not 1, so that the batch axis stands out in reshapes."""
_OPAQUE = object()
"""The value of a tensor that no IR node computes (its producer could not be imported)."""
_META = object()
"""The value of a non-tensor: sizes, shapes and arithmetic on them."""


@attrs.frozen
class _Pieces:
    """The value of a ``chunk`` or ``split``: where its pieces start on IR axis ``axis``."""

    source: fx.Node
    axis: int
    starts: tuple[int, ...]
    label: str


_METHODS = {"relu": ("activation", "relu"), "relu_": ("activation", "relu"),
            "sigmoid": ("activation", "sigmoid"), "sigmoid_": ("activation", "sigmoid"),
            "add": ("add", None), "add_": ("add", None), "mul": ("mul", None),
            "mul_": ("mul", None), "chunk": ("split", None), "split": ("split", None),
            "view": ("reshape", None), "reshape": ("reshape", None), "flatten": ("reshape", None),
            "contiguous": ("alias", None), "mean": ("mean", None)}
"""Tensor methods LENNA imports: method name -> (handler, IR op for activations)."""
_ARGS = {
    "add": (("input", "other", "alpha"), {"alpha": 1}),
    "mul": (("input", "other"), {}),
    "split": (("input", "sections", "dim"), {"dim": 0}),
    "cat": (("tensors", "dim"), {"dim": 0}),
    "mean": (("input", "dim", "keepdim"), {"dim": None, "keepdim": False}),
    "gelu": (("input", "approximate"), {"approximate": "none"}),
    "max_pool2d": (("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                    "return_indices"),
                   {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
                    "return_indices": False}),
    "avg_pool2d": (("input", "kernel_size", "stride", "padding", "ceil_mode",
                    "count_include_pad", "divisor_override"),
                   {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True,
                    "divisor_override": None}),
}
"""Positional parameter names and defaults of the calls whose arguments matter."""


def _functions() -> dict[Any, tuple[str, str | None]]:
    """Functions LENNA imports: callable -> (handler, IR op for activations)."""
    import operator

    import torch
    import torch.nn.functional as F

    functions = {
        operator.add: ("add", None), operator.iadd: ("add", None), torch.add: ("add", None),
        operator.mul: ("mul", None), operator.imul: ("mul", None), torch.mul: ("mul", None),
        torch.chunk: ("split", None), torch.split: ("split", None),
        torch.cat: ("cat", None), torch.concat: ("cat", None), torch.concatenate: ("cat", None),
        torch.flatten: ("reshape", None), torch.reshape: ("reshape", None),
        torch.relu: ("activation", "relu"), torch.relu_: ("activation", "relu"),
        F.relu: ("activation", "relu"), F.relu_: ("activation", "relu"),
        F.relu6: ("activation", "relu6"), F.hardswish: ("activation", "hardswish"),
        F.hardsigmoid: ("activation", "hardsigmoid"), F.silu: ("activation", "silu"),
        torch.sigmoid: ("activation", "sigmoid"), F.sigmoid: ("activation", "sigmoid"),
        F.gelu: ("gelu", None),
        F.dropout: ("activation", "identity"), F.dropout2d: ("activation", "identity"),
        F.max_pool2d: ("max_pool2d", None), F.avg_pool2d: ("avg_pool2d", None),
        F.adaptive_avg_pool2d: ("adaptive", None), torch.mean: ("mean", None),
        operator.getitem: ("getitem", None),
    }
    # torchvision's stochastic depth is the identity at inference. A model using it has
    # imported torchvision.ops (whose StochasticDepth module traces into this function).
    torchvision_ops = sys.modules.get("torchvision.ops")
    if torchvision_ops is not None:
        functions[torchvision_ops.stochastic_depth] = ("activation", "identity")
    return functions


def _modules() -> dict[type, tuple[str, str | None]]:
    """Leaf modules LENNA imports: class -> (handler, IR op for activations)."""
    from torch import nn

    return {
        nn.Conv2d: ("conv", None), nn.BatchNorm2d: ("batchnorm", None),
        nn.BatchNorm1d: ("batchnorm", None), nn.Linear: ("linear", None),
        nn.ReLU: ("activation", "relu"), nn.ReLU6: ("activation", "relu6"),
        nn.Hardswish: ("activation", "hardswish"), nn.Hardsigmoid: ("activation", "hardsigmoid"),
        nn.Sigmoid: ("activation", "sigmoid"), nn.SiLU: ("activation", "silu"),
        nn.GELU: ("gelu_module", None), nn.Identity: ("activation", "identity"),
        nn.Dropout: ("activation", "identity"), nn.Dropout2d: ("activation", "identity"),
        nn.MaxPool2d: ("maxpool_module", None), nn.AvgPool2d: ("avgpool_module", None),
        nn.AdaptiveAvgPool2d: ("adaptive", None), nn.Flatten: ("reshape", None),
    }


def _bind(node: fx.Node, kind: str) -> dict[str, Any]:
    names, defaults = _ARGS[kind]
    values = dict(defaults)
    values.update(zip(names, node.args, strict=False))
    values.update(node.kwargs)
    if kind == "cat" and "axis" in values:
        values["dim"] = values.pop("axis")
    return values


class _Importer:
    def __init__(self, traced: fx.GraphModule) -> None:
        self.traced = traced
        self.modules = dict(traced.named_modules())
        self.functions = _functions()
        self.module_kinds = _modules()
        self.nodes: list[Node] = []
        # Per torch.fx node: the name of the IR node computing it, _OPAQUE or _META.
        self.env: dict[fx.Node, Any] = {}
        self.used: Counter[str] = Counter()
        self.unsupported: dict[str, list[str]] = {}
        self.invalid: list[str] = []
        self.shuffles = self.channel_shuffles()

    # -- torch's view of a node ------------------------------------------------------------
    @staticmethod
    def is_tensor(value: Any) -> bool:
        from torch.fx.passes.shape_prop import TensorMetadata

        return hasattr(value, "meta") and isinstance(value.meta.get("tensor_meta"),
                                                     TensorMetadata)

    @staticmethod
    def full_shape(node: fx.Node) -> tuple[int, ...]:
        return tuple(node.meta["tensor_meta"].shape)

    def computed(self, value: Any) -> bool:
        """Whether ``value`` is a tensor computed by the model, not a number or an attribute."""
        return self.is_tensor(value) and value.op != "get_attr"

    def shape(self, node: fx.Node) -> Shape:
        return self.full_shape(node)[1:]

    def name(self, node: fx.Node, what: str) -> str:
        """The node's IR name (or its label in errors), unique in the graph."""
        if node.op in ("call_module", "get_attr"):
            base = str(node.target)
        else:
            stack = node.meta.get("nn_module_stack") or {}
            scope = next(reversed(stack.values()))[0] if stack else ""
            base = f"{scope}.{what}" if scope else what
        count = self.used[base]
        self.used[base] += 1
        return base if count == 0 else f"{base}@{count}"

    def kind_of(self, node: fx.Node) -> tuple[str | None, str | None, str]:
        """(handler, IR op, label) of a call; the handler is None if LENNA cannot import it."""
        if node.op == "call_module":
            module = self.modules[str(node.target)]
            return (*self.module_kinds.get(type(module), (None, None)), type(module).__name__)
        if node.op == "call_method":
            return (*_METHODS.get(str(node.target), (None, None)), str(node.target))
        label = getattr(node.target, "__name__", str(node.target))
        try:
            return (*self.functions.get(node.target, (None, None)), label)
        except TypeError:  # an unhashable target
            return None, None, label

    def channel_shuffles(self) -> dict[fx.Node, tuple[fx.Node, int] | None]:
        """ShuffleNet's view/transpose/contiguous/view: its last member -> (the shuffled
        tensor, groups), the others -> None (only the chain reads them)."""
        members: dict[fx.Node, tuple[fx.Node, int] | None] = {}
        for node in self.traced.graph.nodes:
            target = node.target if node.op == "call_method" else getattr(
                node.target, "__name__", None)
            if node.op not in ("call_method", "call_function") or target != "transpose":
                continue
            first = node.args[0]
            chain = [first, node]
            while len(chain[-1].users) == 1:
                chain.append(next(iter(chain[-1].users)))
                if self.kind_of(chain[-1])[0] != "alias":
                    break
            last = chain[-1]
            if not (len(first.users) == 1 and self.is_tensor(last)
                    and all(self.kind_of(n)[0] == "reshape" for n in (first, last))
                    and self.is_tensor(first.args[0])):
                continue
            source = first.args[0]
            shape, grouped = self.full_shape(source), self.full_shape(first)
            dims = sorted(d % 5 for d in node.args[1:3] if isinstance(d, int))
            if (len(shape) == 4 and len(grouped) == 5 and grouped[0] == shape[0]
                    and grouped[1] * grouped[2] == shape[1] and grouped[3:] == shape[2:]
                    and dims == [1, 2] and self.full_shape(last) == shape):
                members.update(dict.fromkeys(chain))
                members[last] = (source, grouped[1])
        return members

    # -- emitting IR nodes and problems ----------------------------------------------------
    def emit(self, name: str, label: str, op: str, inputs: list[tuple[Any, Shape]],
             **attributes: Any) -> tuple[Any, Shape] | None:
        """Add an IR node (not if an input is opaque); None if the IR rejects it."""
        spec = OPS[op]
        try:
            normal = spec.normalize(attributes)
            shape = tuple(spec.infer([s for _, s in inputs], normal))
        except OpError as exc:
            self.invalid.append(f"node '{name}' ({label}): {exc}")
            return None
        if all(value is not _OPAQUE for value, _ in inputs):
            self.nodes.append(Node(name, op, tuple(v for v, _ in inputs), normal))
        return (_OPAQUE if any(v is _OPAQUE for v, _ in inputs) else name), shape

    def add(self, node: fx.Node, label: str, op: str, inputs: list[fx.Node],
            **attributes: Any) -> None:
        """The IR node computing ``node``; its shape must be torch's."""
        name = self.name(node, label)
        out = self.emit(name, label, op, [(self.env[i], self.shape(i)) for i in inputs],
                        **attributes)
        self.finish(node, name, label, out)

    def finish(self, node: fx.Node, name: str, label: str,
               out: tuple[Any, Shape] | None) -> None:
        self.env[node] = _OPAQUE
        if out is None:
            return
        if out[1] != self.shape(node):
            self.invalid.append(f"node '{name}' ({label}): the IR infers shape {list(out[1])}, "
                                f"torch computes {list(self.shape(node))}")
            return
        self.env[node] = out[0]

    def reject(self, node: fx.Node, what: str, label: str | None = None) -> None:
        """Record that LENNA cannot import ``node`` (described as ``what``)."""
        self.unsupported.setdefault(what, []).append(self.name(node, label or what))
        self.env[node] = _OPAQUE

    # -- driver ------------------------------------------------------------------------------
    def run(self) -> tuple[list[Node], list[str]]:
        outputs: list[str] = []
        for node in self.traced.graph.nodes:
            if node.op == "placeholder":
                name = self.name(node, "input")
                self.finish(node, name, "input",
                            self.emit(name, "input", "input", [], shape=list(self.shape(node))))
            elif node.op == "output":
                outputs = self.outputs(node.args[0])
            elif node.op == "get_attr":
                self.reject(node, "tensor attribute", str(node.target))
            elif node in self.shuffles:
                shuffle = self.shuffles[node]
                if shuffle is None:
                    self.env[node] = _OPAQUE
                else:
                    self.add(node, "channel_shuffle", "channel_shuffle", [shuffle[0]],
                             groups=shuffle[1])
            elif node.meta.get("tensor_meta") is None:
                self.env[node] = _META
            else:
                self.call(node)
        return self.nodes, outputs

    def outputs(self, value: Any) -> list[str]:
        values = list(value) if isinstance(value, tuple | list) else [value]
        names = []
        for item in values:
            if not self.is_tensor(item) or self.env.get(item) is _META:
                self.invalid.append("the model's outputs must be tensors or a tuple of tensors")
            elif self.env[item] is not _OPAQUE:
                names.append(self.env[item])
        return names

    def call(self, node: fx.Node) -> None:
        handler, op, label = self.kind_of(node)
        if handler is None:
            self.reject(node, label)
            return
        if handler == "getitem":
            self.getitem(node)
            return
        module = self.modules.get(str(node.target)) if node.op == "call_module" else None
        getattr(self, f"op_{handler}")(node, label, op, module)

    def getitem(self, node: fx.Node) -> None:
        """A piece of a chunk or split becomes a slice; other indexing is not imported."""
        pieces, index = self.env.get(node.args[0]), node.args[1]
        if isinstance(pieces, _Pieces) and isinstance(index, int):
            index %= len(pieces.starts)
            start = pieces.starts[index]
            size = self.shape(node)[pieces.axis]
            self.add(node, f"{pieces.label}.{index}", "slice", [pieces.source],
                     axis=pieces.axis, start=start, end=start + size)
        elif self.is_tensor(node.args[0]) or isinstance(pieces, _Pieces):
            self.reject(node, "getitem")
        else:  # an item of a tuple from an unsupported op
            self.env[node] = _OPAQUE

    # -- handlers ----------------------------------------------------------------------------
    def op_activation(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        self.add(node, label, op, [node.args[0]])

    def op_alias(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        self.env[node] = self.env[node.args[0]]

    def op_gelu(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        approximate = _bind(node, "gelu")["approximate"]
        if approximate != "none":
            self.reject(node, f"{label}(approximate={approximate!r})", label)
            return
        self.add(node, label, "gelu", [node.args[0]])

    def op_gelu_module(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        if module.approximate != "none":
            self.reject(node, f"GELU(approximate={module.approximate!r})")
            return
        self.add(node, label, "gelu", [node.args[0]])

    def op_add(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        args = _bind(node, "add")
        if not (self.computed(args["input"]) and self.computed(args["other"])):
            self.reject(node, f"{label} of a constant", label)
        elif args["alpha"] != 1:
            self.reject(node, f"{label}(alpha={args['alpha']})", label)
        else:
            self.add(node, label, "add", [args["input"], args["other"]])

    def op_mul(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        args = _bind(node, "mul")
        if not (self.computed(args["input"]) and self.computed(args["other"])):
            self.reject(node, f"{label} by a constant", label)
        else:
            self.add(node, label, "mul", [args["input"], args["other"]])

    def op_split(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        """chunk/split: getitem turns its pieces into slices."""
        x = node.args[0]
        dim = _bind(node, "split")["dim"] % len(self.full_shape(x))
        if dim == 0:
            self.reject(node, f"{label}(dim=0)", label)
            return
        sizes = [piece.shape[dim] for piece in node.meta["tensor_meta"]]
        starts = tuple(itertools.accumulate(sizes[:-1], initial=0))
        self.env[node] = _Pieces(x, dim - 1, starts, label)

    def op_cat(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        args = _bind(node, "cat")
        tensors = list(args["tensors"])
        dim = args["dim"] % len(self.full_shape(node))
        if dim == 0:
            self.reject(node, f"{label}(dim=0)", label)
            return
        self.add(node, label, "concat", tensors, axis=dim - 1)

    def op_reshape(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        """view/reshape/flatten: a flatten to (batch, features), a no-op, or unsupported."""
        x = node.args[0]
        before, after = self.full_shape(x), self.full_shape(node)
        if after == before:
            self.env[node] = self.env[x]
        elif after == (before[0], math.prod(before[1:])):
            self.add(node, label, "flatten", [x])
        else:
            self.reject(node, label)

    def op_mean(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        """``x.mean((2, 3))`` with or without keepdim: a global average pool."""
        args = _bind(node, "mean")
        x, dims = node.args[0], args["dim"]
        rank = len(self.full_shape(x))
        dims = [dims] if isinstance(dims, int) else list(dims or [])
        if rank != 4 or sorted(d % rank for d in dims) != [2, 3]:
            self.reject(node, f"{label} over other axes than (H, W)", label)
            return
        name = self.name(node, label)
        out = self.emit(name, label, "global_avgpool", [(self.env[x], self.shape(x))])
        if out is not None and not args["keepdim"]:
            out = self.emit(f"{name}.flatten", label, "flatten", [out])
        self.finish(node, name, label, out)

    def op_conv(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        if module.padding_mode != "zeros":
            self.reject(node, f"Conv2d(padding_mode={module.padding_mode!r})")
            return
        padding = module.padding
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            totals = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size,
                                                   strict=True)]
            if any(t % 2 for t in totals):
                self.reject(node, "Conv2d(padding='same', asymmetric)")
                return
            padding = tuple(t // 2 for t in totals)
        self.add(node, label, "conv2d", [node.args[0]], out_channels=module.out_channels,
                 kernel_size=list(module.kernel_size), stride=list(module.stride),
                 padding=list(padding), dilation=list(module.dilation), groups=module.groups,
                 bias=module.bias is not None)

    def op_batchnorm(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        if not module.track_running_stats:
            self.reject(node, f"{label}(track_running_stats=False)")
            return
        self.add(node, label, "batchnorm", [node.args[0]], eps=module.eps)

    def op_linear(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        self.add(node, label, "linear", [node.args[0]], out_features=module.out_features,
                 bias=module.bias is not None)

    def op_maxpool_module(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        self.max_pool(node, label, module.kernel_size, module.stride, module.padding,
                      module.dilation, module.ceil_mode, module.return_indices)

    def op_max_pool2d(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        a = _bind(node, "max_pool2d")
        self.max_pool(node, label, a["kernel_size"], a["stride"], a["padding"], a["dilation"],
                      a["ceil_mode"], a["return_indices"])

    def max_pool(self, node: fx.Node, label: str, kernel: Any, stride: Any, padding: Any,
                 dilation: Any, ceil_mode: bool, return_indices: bool) -> None:
        if dilation not in (1, (1, 1), [1, 1]) or return_indices:
            self.reject(node, f"{label}(dilation or return_indices)", label)
            return
        self.add(node, label, "maxpool", [node.args[0]], kernel_size=kernel,
                 stride=stride or None, padding=padding, ceil_mode=ceil_mode)

    def op_avgpool_module(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        self.avg_pool(node, label, module.kernel_size, module.stride, module.padding,
                      module.ceil_mode, module.count_include_pad, module.divisor_override)

    def op_avg_pool2d(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        a = _bind(node, "avg_pool2d")
        self.avg_pool(node, label, a["kernel_size"], a["stride"], a["padding"], a["ceil_mode"],
                      a["count_include_pad"], a["divisor_override"])

    def avg_pool(self, node: fx.Node, label: str, kernel: Any, stride: Any, padding: Any,
                 ceil_mode: bool, count_include_pad: bool, divisor_override: Any) -> None:
        if divisor_override is not None:
            self.reject(node, f"{label}(divisor_override)", label)
            return
        self.add(node, label, "avgpool", [node.args[0]], kernel_size=kernel,
                 stride=stride or None, padding=padding, ceil_mode=ceil_mode,
                 count_include_pad=count_include_pad)

    def op_adaptive(self, node: fx.Node, label: str, op: str, module: Any) -> None:
        """Adaptive average pooling: global, a no-op, or an exact fixed-window pool."""
        x = node.args[0]
        (_, *size), (_, *out) = self.shape(x), self.shape(node)
        if out == [1, 1]:
            self.add(node, label, "global_avgpool", [x])
        elif out == size:
            self.add(node, label, "identity", [x])
        elif all(s % o == 0 for s, o in zip(size, out, strict=True)):
            self.add(node, label, "avgpool", [x], kernel_size=[s // o for s, o in
                                                                 zip(size, out, strict=True)])
        else:
            self.reject(node, f"{label}({size[0]}x{size[1]} -> {out[0]}x{out[1]})", label)


def module_to_graph(module: torch.nn.Module, input_shape: tuple[int, ...],
                    name: str = "the model") -> Graph:
    """The Graph IR of ``module`` for inputs of ``input_shape`` (without the batch axis).

    Raises a one-line LennaError naming every module and function the IR cannot express
    (``name`` labels the message), or the reason torch.fx cannot trace the module.
    """
    import torch
    from torch import fx
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.passes.shape_prop import ShapeProp

    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                            for d in shape):
        raise LennaError(f"{name}: the input shape must be positive ints, got {list(shape)}")
    try:
        traced = fx.symbolic_trace(module)
    except Exception as exc:
        raise LennaError(f"{name}: torch.fx cannot trace the model: {first_line(exc)}") from None
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise LennaError(f"{name}: forward takes {len(placeholders)} inputs; LENNA imports "
                         "models with one input")
    # Fake tensors log, and ShapeProp prints, the traceback of a failing op before raising.
    fake_tensor_log = logging.getLogger("torch._subclasses.fake_tensor")
    disabled, fake_tensor_log.disabled = fake_tensor_log.disabled, True
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")  # torch's performance hints are for real runs
            ShapeProp(traced, fake_mode=FakeTensorMode()).propagate(torch.zeros(BATCH, *shape))
    except Exception as exc:
        raise LennaError(f"{name}: the model does not run on inputs of shape {list(shape)} "
                         f"(without batch): {first_line(exc.__cause__ or exc)}") from None
    finally:
        fake_tensor_log.disabled = disabled
    importer = _Importer(traced)
    nodes, outputs = importer.run()
    problems = list(importer.invalid)
    if importer.unsupported:
        problems.insert(0, "LENNA cannot import " + ", ".join(
            f"{what} ({', '.join(where)})" for what, where in importer.unsupported.items()))
    if problems:
        raise LennaError(f"{name}: {'; '.join(problems)}")
    return Graph(tuple(nodes), tuple(outputs))


def _arrays(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A conv, linear or batchnorm module's tensors under their IR parameter names."""
    import torch
    from torch import nn

    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        affine = module.affine
        return {"scale": module.weight if affine else torch.ones_like(module.running_var),
                "bias": module.bias if affine else torch.zeros_like(module.running_var),
                "mean": module.running_mean, "var": module.running_var}
    arrays = {"weight": module.weight}
    if getattr(module, "bias", None) is not None:
        arrays["bias"] = module.bias
    return arrays


def weights_from_module(module: torch.nn.Module, graph: Graph) -> Weights:
    """The IR weights of ``graph`` (from :func:`module_to_graph`) copied from ``module``.

    Each conv2d, batchnorm and linear node finds its module by its name (``@k`` suffixes of
    repeated calls removed), so ``graph_to_module(graph, weights)`` computes what ``module``
    computes in eval mode.
    """
    weights: Weights = {}
    for node, params in parameter_specs(graph).items():
        path = node.split("@")[0]
        try:
            arrays = _arrays(module.get_submodule(path))
        except AttributeError:
            raise LennaError(f"node '{node}': the module has no conv, linear or batchnorm "
                             f"submodule '{path}'") from None
        weights[node] = {}
        for key, param in params.items():
            tensor = arrays.get(key)
            array = None if tensor is None else tensor.detach().cpu().float().numpy().copy()
            if array is None or array.shape != param.shape:
                found = "nothing" if array is None else f"shape {list(array.shape)}"
                raise LennaError(f"node '{node}': its {key} needs shape {list(param.shape)}, "
                                 f"module '{path}' has {found}")
            weights[node][key] = array
    return weights
