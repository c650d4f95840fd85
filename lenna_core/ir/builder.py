"""GraphBuilder: the convenient way for sources to emit Graph IR."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lenna_core.errors import GraphError
from lenna_core.ir.graph import Graph, Node
from lenna_core.ir.ops import OPS, OpError, Shape


class GraphBuilder:
    """Appends nodes in order, infers shapes as it goes and names nodes ``op_k``.

    >>> b = GraphBuilder()
    >>> x = b.input((3, 32, 32))
    >>> y = b.add_node("conv2d", x, out_channels=8, kernel_size=3, padding=1)
    >>> b.shape(y)
    (8, 32, 32)
    """

    def __init__(self) -> None:
        self._nodes: list[Node] = []
        self._shapes: dict[str, Shape] = {}
        self._counts: Counter[str] = Counter()

    def input(self, shape: Shape, name: str = "input") -> str:
        return self.add_node("input", name=name, shape=list(shape))

    def add_node(self, op: str, *inputs: str, name: str | None = None, **attributes: Any) -> str:
        """Append one node and return its name; raises GraphError on a bad node."""
        spec = OPS.get(op)
        if spec is None:
            raise GraphError(f"unknown op '{op}'; known ops: {', '.join(sorted(OPS))}")
        if name is None:
            name = f"{op}_{self._counts[op]}"
            self._counts[op] += 1
        try:
            normal = spec.normalize(attributes)
            shape = spec.infer([self._shapes[i] for i in inputs], normal)
        except OpError as exc:
            raise GraphError(f"node '{name}' ({op}): {exc}") from None
        except KeyError as exc:
            raise GraphError(
                f"node '{name}' ({op}): input {exc} is not defined before it"
            ) from None
        self._nodes.append(Node(name, op, inputs, normal))
        self._shapes[name] = tuple(shape)
        return name

    def shape(self, name: str) -> Shape:
        return self._shapes[name]

    def build(self, *outputs: str) -> Graph:
        return Graph(tuple(self._nodes), outputs)
