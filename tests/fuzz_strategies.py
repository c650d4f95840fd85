"""Hypothesis strategies for LENNA's readers of untrusted input, and the one property they
share: reading fails only with a LennaError, whatever the input. tests/test_fuzz_readers.py
runs each reader on a few hundred examples; bench/fuzz.py on ten thousand.

Each reader is generated input and the call that reads it: source specs (``from_spec`` of
every installed source), architecture objects (``Architecture.from_dict``), Graph IR JSON
(``Graph.from_json``), CSV imports into a real SQLite store (``import_file``), and ONNX models
(``load_onnx_graph`` on mutated bytes of real models, ``onnx_to_graph`` on mutated protos).
Most inputs are real ones mutated a few times, so the fuzzing reaches past the first check.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import attrs
from hypothesis import strategies as st

from lenna_core.errors import LennaError

#: Numbers at the edges: zero, signs, 32- and 64-bit limits, beyond a float, not finite.
EDGE_NUMBERS = (0, 1, -1, 2, 3, 7, 2**31, 2**32 + 1, 2**63, -(2**63), 2**64, 10**30, 10**400,
                0.5, -0.0, 1e-300, 1e308, float("nan"), float("inf"), float("-inf"))

json_leaves = (st.none() | st.booleans() | st.sampled_from(EDGE_NUMBERS)
               | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12))
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)
"""Any JSON value, NaN and infinities included (Python's json reads and writes them)."""


def _mostly(usual: st.SearchStrategy, other: st.SearchStrategy) -> st.SearchStrategy:
    """``usual`` three times in four, else ``other``."""
    return st.one_of(usual, usual, usual, other)


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path into ``value``: keys of objects, indices of lists."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _nudged(draw: Callable, value: Any) -> Any:
    """A value near ``value``: a number off by a little or a lot, a string edited."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return draw(st.sampled_from([value + 1, value - 1, -value, value * 2**40, 0,
                                     value // 2, str(value)]) | st.sampled_from(EDGE_NUMBERS))
    if isinstance(value, str):
        return draw(_edited_text(value))
    return draw(json_values)


def _edited_text(text: str) -> st.SearchStrategy[str]:
    """``text`` with a character inserted, removed or replaced."""
    if not text:
        return st.text(max_size=3)
    return st.builds(lambda i, c, kind: (text[:i] + c + text[i + (kind != "insert"):]
                                         if kind != "delete" else text[:i] + text[i + 1:]),
                     st.integers(0, len(text) - 1), st.characters(), st.sampled_from(
                         ["insert", "delete", "replace"]))


@st.composite
def mutated(draw: Callable, value: Any, max_rounds: int = 3) -> Any:
    """``value`` (a JSON value) after one to ``max_rounds`` mutations, each at a random place:
    replaced by any JSON value, nudged, deleted, or given a sibling."""
    value = copy.deepcopy(value)
    for _ in range(draw(st.integers(1, max_rounds))):
        path = draw(st.sampled_from(_paths(value)[1:] or [()]))
        action = draw(st.sampled_from(["nudge", "replace", "delete", "add"]))
        if not path:
            value = draw(json_values) if action == "replace" else _nudged(draw, value)
            continue
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        key = path[-1]
        if action == "replace":
            parent[key] = draw(json_values)
        elif action == "nudge":
            parent[key] = _nudged(draw, parent[key])
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(json_values)
        else:
            parent.insert(key, draw(json_values))
    return value


def _mutated_bytes(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` truncated, with bytes flipped, or with a slice of itself repeated or dropped."""
    size = len(data)
    flips = st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1,
                     max_size=8).map(lambda edits: _flip(data, edits))
    cuts = st.integers(0, size - 1).map(lambda n: data[:n])
    splices = st.tuples(st.integers(0, size), st.integers(0, size), st.integers(0, size)).map(
        lambda t: data[:t[0]] + data[min(t[1], t[2]):max(t[1], t[2])] + data[t[0]:])
    drops = st.tuples(st.integers(0, size), st.integers(0, 64)).map(
        lambda t: data[:t[0]] + data[t[0] + t[1]:])
    return flips | cuts | splices | drops


def _flip(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for index, byte in edits:
        out[index] = byte
    return bytes(out)


@attrs.frozen
class Reader:
    """One reader of untrusted input: what to generate, and how to read it."""

    name: str
    examples: st.SearchStrategy
    read: Callable[[Any], object]


def read_only_lenna_errors(reader: Reader, example: Any) -> bool:
    """The property: reading ``example`` succeeds (True) or raises a LennaError (False);
    anything else escapes to the caller, which counts it as a bug."""
    try:
        reader.read(example)
    except LennaError:
        return False
    return True


class FuzzInputs:
    """The real inputs that the strategies mutate, and the files and store that reading
    writes to, all under ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @cached_property
    def registry(self):
        from lenna_core.plugins.registry import make_registry

        return make_registry()

    @cached_property
    def sources(self) -> dict[str, Any]:
        """Every installed source with its default options."""
        return {name: self.registry.create("source", name)
                for name in self.registry.names("source")}

    @cached_property
    def specs(self) -> list[tuple[str, dict[str, Any]]]:
        """Real specs of every source: sampled ones (and their children, for a supernet),
        and one file path for onnx-file; for torchvision (whose valid specs take seconds to
        trace) an unknown model."""
        import numpy as np

        from lenna_core.plugins.interfaces import optional

        specs = [("onnx-file", {"path": str(self.onnx_paths[0])}),
                 ("torchvision", {"model": "resnet_nope", "input_size": 224})]
        for name, source in self.sources.items():
            if name in ("onnx-file", "torchvision"):
                continue
            for seed in range(2):
                rng = np.random.default_rng(seed)
                arch = source.sample(rng)
                specs.append((name, dict(arch.spec)))
                children = optional(source, "children")
                if children is not None:
                    specs.append((name, dict(children(arch, rng).spec)))
        return specs

    @cached_property
    def graphs(self) -> list[Any]:
        from conftest import GRAPHS

        return [make() for make in GRAPHS.values()]

    @cached_property
    def onnx_models(self) -> list[Any]:
        """Real ONNX models of the test graphs (every op the importer reads), as LENNA's
        onnxruntime backend writes them."""
        from lenna_core.ir import init_weights
        from lenna_onnxruntime.convert import graph_to_onnx

        return [graph_to_onnx(graph, init_weights(graph)) for graph in self.graphs]

    @cached_property
    def onnx_paths(self) -> list[Path]:
        paths = []
        for index, model in enumerate(self.onnx_models):
            path = self.workdir / f"model{index}.onnx"
            path.write_bytes(model.SerializeToString())
            paths.append(path)
        return paths

    @cached_property
    def store(self):
        from lenna_core.data.store import Store

        return Store(str(self.workdir / "fuzz.db"))

    @cached_property
    def arch_strings(self) -> list[str]:
        from lenna_nasbench201.cells import all_arch_strings

        return all_arch_strings()[:50:7]


def spec_reader(inputs: FuzzInputs) -> Reader:
    """(a) ``from_spec`` of each source on mutated real specs and on any JSON value."""
    examples = st.sampled_from(inputs.specs).flatmap(
        lambda pair: st.tuples(st.just(pair[0]), _mostly(mutated(pair[1]), json_values)))
    return Reader("spec", examples, lambda pair: inputs.sources[pair[0]].from_spec(pair[1]))


def architecture_reader(inputs: FuzzInputs) -> Reader:
    """(a) ``Architecture.from_dict`` on mutated architecture objects (a prediction's
    ``--arch`` file)."""
    from lenna_core.records import Architecture

    architectures = [{"source": "file", "spec": {"model": "x"}, "graph": graph.to_dict()}
                     for graph in inputs.graphs]
    examples = _mostly(st.sampled_from(architectures).flatmap(lambda a: mutated(a, 4)),
                       json_values)
    return Reader("architecture", examples, Architecture.from_dict)


def graph_reader(inputs: FuzzInputs) -> Reader:
    """(b) ``Graph.from_json`` on mutated graphs, edited JSON text and any JSON; a graph that
    is read must survive its own round trip with its id."""
    from lenna_core.ir import Graph

    texts = [graph.to_json() for graph in inputs.graphs]
    edited = st.sampled_from(texts).flatmap(lambda t: _mutated_bytes(t.encode())).map(
        lambda b: b.decode("utf-8", "replace"))
    examples = _mostly(st.sampled_from([g.to_dict() for g in inputs.graphs]).flatmap(
        lambda g: mutated(g, 4)).map(json.dumps), edited | json_values.map(json.dumps))

    def read(text: str) -> None:
        graph = Graph.from_json(text)
        assert Graph.from_json(graph.to_json()).id == graph.id

    return Reader("graph-json", examples, read)


@st.composite
def _csv_file(draw: Callable, arch_strings: list[str]) -> str:
    """A CSV of latencies: mostly the columns an import asks for, with cells that are real
    nasbench201 arch strings, edited ones, JSON specs, numbers or anything."""
    header = draw(_mostly(st.sampled_from([["arch", "device", "ms"],
                                           ["arch", "device", "ms", "extra"]]),
                          st.lists(st.text(max_size=6), max_size=4)))
    arch = (st.sampled_from(arch_strings) | st.sampled_from(arch_strings).flatmap(_edited_text)
            | st.sampled_from(arch_strings).map(lambda a: json.dumps({"arch": a}))
            | json_values.map(json.dumps) | st.text(max_size=10))
    number = _mostly(st.floats(0.001, 100).map(str), st.sampled_from(EDGE_NUMBERS).map(str)
                     | st.floats().map(str) | st.text(max_size=5))
    device = _mostly(st.sampled_from(["pi5", "gpu"]), st.sampled_from(["", " "]) | st.text())
    cells = {"arch": arch, "device": device, "ms": number, "extra": number}
    row = st.tuples(*(_mostly(cells.get(name, arch | number), arch | number | device)
                      for name in header)).map(list)
    rows = draw(st.lists(row, min_size=1, max_size=6))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8", "replace")  # a file holds no lone surrogate
    return draw(_mostly(st.just(data.decode()), _mutated_bytes(data).map(
        lambda b: b.decode("utf-8", "replace"))))


def csv_reader(inputs: FuzzInputs) -> Reader:
    """(c) ``import_file`` of generated CSV files into a real SQLite store, long or wide,
    with any unit and sometimes a ``--where``."""
    from lenna_core.data.importing import ImportOptions, import_file

    units = st.sampled_from(["ms", "us", "s"])
    where = _mostly(st.just(()), st.sampled_from([("device=pi5",), ("ms=1",), ("nope=1",)]))
    long = st.builds(ImportOptions, arch_col=st.sampled_from(["arch", "arch", "ms"]),
                     target_cols=st.just(("device",)), latency_col=st.just("ms"), unit=units,
                     where=where)
    wide = st.builds(ImportOptions, arch_col=st.sampled_from(["arch", "device"]),
                     wide=st.just(True), ignore_cols=st.sampled_from([(), ("extra",)]),
                     unit=units, where=where)
    options = _mostly(long, wide)
    examples = st.tuples(_csv_file(inputs.arch_strings), options)
    path = inputs.workdir / "latencies.csv"
    source = inputs.sources["nasbench201"]

    def read(example: tuple[str, Any]) -> None:
        text, chosen = example
        path.write_text(text)
        import_file(path, source, chosen, inputs.store)

    return Reader("csv-import", examples, read)


def onnx_bytes_reader(inputs: FuzzInputs) -> Reader:
    """(d) ``load_onnx_graph`` on real ONNX files with bytes flipped, cut or spliced."""
    from lenna_onnx_file.importer import load_onnx_graph

    models = [path.read_bytes() for path in inputs.onnx_paths]
    path = inputs.workdir / "mutated.onnx"

    def read(data: bytes) -> None:
        path.write_bytes(data)
        load_onnx_graph(path)

    return Reader("onnx-bytes", st.sampled_from(models).flatmap(_mutated_bytes), read)


ONNX_OPS = ("Conv", "Relu", "Clip", "MaxPool", "AveragePool", "Add", "Mul", "Div", "Concat",
            "Gemm", "MatMul", "Flatten", "Reshape", "Slice", "Split", "Squeeze", "Transpose",
            "LSTM", "Constant", "ConstantOfShape", "Shape", "Gather", "Unsqueeze", "Cast",
            "Expand", "Sub", "Erf", "ReduceMean", "BatchNormalization", "Gelu", "Sum", "Loop")
ATTRIBUTE_NAMES = ("kernel_shape", "strides", "pads", "dilations", "group", "axis", "axes",
                   "perm", "auto_pad", "ceil_mode", "count_include_pad", "epsilon", "transB",
                   "transA", "hidden_size", "direction", "layout", "value", "to", "min", "max",
                   "keepdims", "split", "allowzero", "alpha", "beta", "start", "end")
attribute_values = (st.integers(-(2**40), 2**40) | st.sampled_from([0, 1, -1, 2**62])
                    | st.floats(width=32) | st.lists(st.integers(-5, 2**33), min_size=1, max_size=6)
                    | st.binary(max_size=8) | st.sampled_from([b"SAME_UPPER", b"VALID",
                                                               b"forward", b"reverse"]))


@st.composite
def _mutated_model(draw: Callable, models: list[Any]) -> Any:
    """A real ONNX model with a few structural edits: a node's op, attributes or inputs; an
    initializer's dims or data location; an input's dims."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.ModelProto()
    model.CopyFrom(draw(st.sampled_from(models)))
    graph = model.graph
    names = ([i.name for i in graph.input] + [t.name for t in graph.initializer]
             + [o for n in graph.node for o in n.output] + ["", "nowhere"])
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["op", "attribute", "drop-attribute", "input", "dims",
                                     "external", "input-dims", "drop-node"]))
        node = graph.node[draw(st.integers(0, len(graph.node) - 1))] if graph.node else None
        if edit == "op" and node is not None:
            node.op_type = draw(st.sampled_from(ONNX_OPS))
        elif edit == "attribute" and node is not None:
            name = draw(st.sampled_from(ATTRIBUTE_NAMES))
            kept = [a for a in node.attribute if a.name != name]
            del node.attribute[:]
            node.attribute.extend(kept)
            node.attribute.append(helper.make_attribute(name, draw(attribute_values)))
        elif edit == "drop-attribute" and node is not None and node.attribute:
            del node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
        elif edit == "input" and node is not None and node.input:
            node.input[draw(st.integers(0, len(node.input) - 1))] = draw(st.sampled_from(names))
        elif edit == "drop-node" and node is not None:
            graph.node.remove(node)
        elif edit in ("dims", "external") and graph.initializer:
            tensor = graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
            if edit == "dims":
                del tensor.dims[:]
                tensor.dims.extend(draw(st.lists(st.integers(-2, 2**40), max_size=4)))
            else:
                tensor.data_location = TensorProto.EXTERNAL
                entry = tensor.external_data.add()
                entry.key, entry.value = "location", draw(st.sampled_from(
                    ["../../etc/passwd", "/etc/passwd", "missing.bin", "model0.onnx", ""]))
        elif edit == "input-dims" and graph.input:
            dims = graph.input[0].type.tensor_type.shape.dim
            if dims:
                dims[draw(st.integers(0, len(dims) - 1))].dim_value = draw(
                    st.sampled_from([0, -1, 1, 2**40, 2**62]))
    return model


def onnx_proto_reader(inputs: FuzzInputs) -> Reader:
    """(d) ``onnx_to_graph`` on real ONNX models with structural edits."""
    from lenna_onnx_file.importer import onnx_to_graph

    models = inputs.onnx_models
    return Reader("onnx-proto", _mutated_model(models),
                  lambda model: onnx_to_graph(model, "mutated.onnx", str(inputs.workdir)))


READERS = (spec_reader, architecture_reader, graph_reader, csv_reader, onnx_bytes_reader,
           onnx_proto_reader)
"""Every reader, each made from a :class:`FuzzInputs`."""
