"""The torch networks of the DARTS search: ops, mixed and derived cells, the whole network.

Imported by :mod:`lenna_darts.search` when a search runs, never when the plugin loads. The
ops are those :func:`lenna_darts.blocks.mixed_op` builds as Graph IR, so that a derived cell
trained here is the darts-cells child that is measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lenna_darts.blocks import NONE, OPS, edges


class FactorizedReduce(nn.Module):
    """ReLU, two strided 1×1 convs to C_out/2 each, concatenated, BN."""

    def __init__(self, c_in: int, c_out: int, stride: int, affine: bool) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c, 1, stride, bias=False)
                                   for c in (c_out // 2, c_out - c_out // 2))
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([conv(x) for conv in self.convs], dim=1))


def make_op(op: str, c_in: int, c_out: int, stride: int, affine: bool) -> nn.Module:
    """One op of :data:`OPS` other than ``none`` (which adds nothing and has no module)."""
    if op.startswith("sep_conv"):
        k = int(op[-1])
        return nn.Sequential(
            nn.ReLU(), nn.Conv2d(c_in, c_in, k, stride, k // 2, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, bias=False), nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(), nn.Conv2d(c_in, c_in, k, 1, k // 2, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=affine))
    if op.startswith("dil_conv"):
        k = int(op[-1])
        return nn.Sequential(
            nn.ReLU(), nn.Conv2d(c_in, c_in, k, stride, k // 2 * 2, dilation=2, groups=c_in,
                                 bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out, affine=affine))
    if op.endswith("pool_3x3"):
        pool = (nn.MaxPool2d(3, stride, 1) if op.startswith("max")
                else nn.AvgPool2d(3, stride, 1, count_include_pad=False))
        widen = [nn.Conv2d(c_in, c_out, 1, bias=False)] if c_in != c_out else []
        return nn.Sequential(pool, *widen, nn.BatchNorm2d(c_out, affine=affine))
    if op == "skip_connect":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return FactorizedReduce(c_in, c_out, stride, affine)
    raise ValueError(f"op {op!r} has no module")


class Cell(nn.Module):
    """A darts-cells block: layer i sums its edges from the input (twice, as both cell inputs)
    and from every earlier layer. ``choice`` gives the op indices of each edge: all of them
    for a supernet cell (weighted by softmax(α) in ``forward``), one for a derived cell."""

    def __init__(self, block: str, layers: int, channels: int,
                 choice: Sequence[Sequence[int]], affine: bool) -> None:
        super().__init__()
        self.reduce = block == "reduction"
        self.width = 2 * channels if self.reduce else channels
        self.layers = layers
        self.edges = nn.ModuleList()
        self.ops = [[i for i in c if i != NONE] for c in choice]
        """The op indices each edge computes (``none`` adds nothing)."""
        for (_layer, source), ops in zip(edges(layers), self.ops, strict=True):
            from_input = source < 2
            stride = 2 if self.reduce and from_input else 1
            c_in = channels if from_input else self.width
            self.edges.append(nn.ModuleList(
                make_op(OPS[i], c_in, self.width, stride, affine) for i in ops))

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        nodes = [x, x]
        edge = 0
        for layer in range(1, self.layers + 1):
            total = None
            for source in range(layer + 1):
                for module, i in zip(self.edges[edge], self.ops[edge], strict=True):
                    y = module(nodes[source])
                    if weights is not None:
                        y = weights[edge, i] * y
                    total = y if total is None else total + y
                edge += 1
            if total is None:  # every edge none: the layer's output is zero
                shape = list(nodes[0].shape)
                shape[1] = self.width
                if self.reduce:
                    shape[2], shape[3] = (shape[2] + 1) // 2, (shape[3] + 1) // 2
                total = nodes[0].new_zeros(shape)
            nodes.append(total)
        return nodes[-1]


class Network(nn.Module):
    """Stem, cells, global average pooling and a linear classifier."""

    def __init__(self, input_channels: int, classes: int, channels: int, layers: int,
                 cells: Sequence[tuple[str, int, Sequence[Sequence[int]]]],
                 affine: bool) -> None:
        """``cells`` holds (block, input channels, op indices per edge) of each cell."""
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(input_channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        self.blocks = [block for block, _, _ in cells]
        self.cells = nn.ModuleList()
        for block, c, choice in cells:
            cell = Cell(block, layers, c, choice, affine)
            self.cells.append(cell)
            channels = cell.width
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x: torch.Tensor,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        x = self.stem(x)
        for block, cell in zip(self.blocks, self.cells, strict=True):
            x = cell(x, None if weights is None else weights[block])
        return self.classifier(x.mean(dim=(2, 3)))

