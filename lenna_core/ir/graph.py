"""The Graph IR: a framework-neutral DAG of typed ops with inferred shapes.

A graph is a tuple of nodes in topological order; inputs are nodes of op ``input``.
Its canonical JSON (nodes renamed by position, attributes normalised) hashes to its id.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import attrs

from lenna_core.errors import GraphError
from lenna_core.ir.ops import OPS, OpError, Shape

FORMAT = "lenna-graph/1"
MAX_ELEMENTS = 1 << 31
"""Elements one node's output may have (without the batch), 8 GiB of float32: larger is no
network a backend can run, and its sizes overflow the 64-bit arithmetic of featurizers."""


@attrs.frozen
class Node:
    """One op application. ``attrs`` are normalised (defaults filled) by the Graph."""

    name: str
    op: str
    inputs: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    attrs: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "inputs": list(self.inputs),
                "attrs": dict(self.attrs)}


def _normalise(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    out = []
    for node in nodes:
        spec = OPS.get(node.op)
        if spec is None:
            raise GraphError(
                f"node '{node.name}': unknown op '{node.op}'; known ops: {', '.join(sorted(OPS))}"
            )
        try:
            normal = spec.normalize(node.attrs)
        except OpError as exc:
            raise GraphError(f"node '{node.name}' ({node.op}): {exc}") from None
        out.append(attrs.evolve(node, attrs=normal))
    return tuple(out)


@attrs.frozen
class Graph:
    """A validated DAG; construction raises GraphError naming the offending node."""

    nodes: tuple[Node, ...] = attrs.field(converter=_normalise)
    outputs: tuple[str, ...] = attrs.field(converter=tuple)

    def __attrs_post_init__(self) -> None:
        self.shapes  # noqa: B018 - validates the graph eagerly

    @cached_property
    def shapes(self) -> dict[str, Shape]:
        """Output shape (without batch) of every node, by node name."""
        shapes: dict[str, Shape] = {}
        if not self.nodes:
            raise GraphError("graph has no nodes")
        for node in self.nodes:
            if not isinstance(node.name, str) or not node.name:
                raise GraphError(f"a node of op '{node.op}' has no name")
            if node.name in shapes:
                raise GraphError(f"node '{node.name}': the name is used twice")
            spec = OPS[node.op]
            count = len(node.inputs)
            if count < spec.min_inputs or (spec.max_inputs is not None and count > spec.max_inputs):
                expected = (
                    f"{spec.min_inputs}" if spec.min_inputs == spec.max_inputs
                    else f"at least {spec.min_inputs}"
                )
                raise GraphError(
                    f"node '{node.name}' ({node.op}): takes {expected} input(s), got {count}"
                )
            for name in node.inputs:
                if name not in shapes:
                    raise GraphError(
                        f"node '{node.name}' ({node.op}): input '{name}' is not defined before it"
                    )
            try:
                shape = tuple(spec.infer([shapes[i] for i in node.inputs], dict(node.attrs)))
            except OpError as exc:
                raise GraphError(f"node '{node.name}' ({node.op}): {exc}") from None
            if math.prod(shape) > MAX_ELEMENTS:
                raise GraphError(f"node '{node.name}' ({node.op}): its output of shape "
                                 f"{list(shape)} has more than {MAX_ELEMENTS} elements")
            shapes[node.name] = shape
        if not self.outputs:
            raise GraphError("graph has no outputs")
        for name in self.outputs:
            if name not in shapes:
                raise GraphError(f"output '{name}' is not a node of the graph")
        return shapes

    @property
    def inputs(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.op == "input")

    @property
    def input_shape(self) -> Shape:
        """Shape of the single input (without batch); GraphError if there are several."""
        if len(self.inputs) != 1:
            raise GraphError(f"graph has {len(self.inputs)} inputs; expected exactly one")
        return self.shapes[self.inputs[0].name]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "nodes": [n.to_dict() for n in self.nodes],
                "outputs": list(self.outputs)}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> Graph:
        """Build a graph from its JSON form, with a GraphError naming what is malformed."""
        if not isinstance(data, Mapping):
            raise GraphError("a graph must be a JSON object with 'nodes' and 'outputs'")
        if data.get("format", FORMAT) != FORMAT:
            raise GraphError(f"unsupported graph format {data.get('format')!r}; expected {FORMAT}")
        raw_nodes, outputs = data.get("nodes"), data.get("outputs")
        if not isinstance(raw_nodes, list) or not isinstance(outputs, list):
            raise GraphError("a graph needs a 'nodes' list and an 'outputs' list")
        if not all(isinstance(name, str) for name in outputs):
            raise GraphError("a graph's 'outputs' must be a list of node names")
        nodes = []
        for i, raw in enumerate(raw_nodes):
            if not isinstance(raw, Mapping) or not isinstance(raw.get("op"), str):
                raise GraphError(f"node #{i} must be an object with at least 'name' and 'op'")
            inputs = raw.get("inputs", [])
            if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
                raise GraphError(f"node '{raw.get('name')}': 'inputs' must be a list of names")
            node_attrs = raw.get("attrs", {})
            if not isinstance(node_attrs, Mapping):
                raise GraphError(f"node '{raw.get('name')}': 'attrs' must be an object")
            nodes.append(Node(raw.get("name"), raw["op"], tuple(inputs), dict(node_attrs)))
        return cls(tuple(nodes), tuple(outputs))

    @classmethod
    def from_json(cls, text: str) -> Graph:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise GraphError(f"malformed graph JSON: {exc}") from None
        return cls.from_dict(data)

    def canonical(self) -> dict[str, Any]:
        """The graph with nodes renamed by position: equal structures give equal forms."""
        rename = {node.name: f"n{i}" for i, node in enumerate(self.nodes)}
        return {
            "nodes": [
                [node.op, [rename[i] for i in node.inputs], dict(sorted(node.attrs.items()))]
                for node in self.nodes
            ],
            "outputs": [rename[o] for o in self.outputs],
        }

    @cached_property
    def id(self) -> str:
        """Content hash of the canonical form: the architecture id."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]
