"""The Graph IR every plugin speaks."""

from lenna_core.ir.builder import GraphBuilder
from lenna_core.ir.graph import Graph, Node
from lenna_core.ir.ops import OPS, Shape
from lenna_core.ir.weights import init_weights

__all__ = ["OPS", "Graph", "GraphBuilder", "Node", "Shape", "init_weights"]
