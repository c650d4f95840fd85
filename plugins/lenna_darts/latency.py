"""The ``darts-encoding`` of a block as a differentiable function of its α, in torch, so that
a latency predictor fitted on that encoding (``torch-mlp``) can put a latency term into a
DARTS search loss whose gradient reaches α."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lenna_core.api import LennaError
from lenna_darts.blocks import OPS
from lenna_darts.encoding import DartsEncodingFeaturizer, edge_feature, shape_values

if TYPE_CHECKING:
    import torch

PREFIX = f"{DartsEncodingFeaturizer.name}."
"""How a feature table names the encoding's features."""


class BlockEncoding:
    """Maps α (edges × ops) of one block to the encoding's features, in a predictor's order.

    ``spec`` fixes the block type, layers, channels and input size; ``feature_names`` are the
    predictor's (``darts-encoding.channels``, …), each an encoding feature.
    """

    def __init__(self, spec: Mapping[str, Any], feature_names: Sequence[str]) -> None:
        import torch

        constants = shape_values(spec)
        edges = sum(layer + 1 for layer in range(1, spec["layers"] + 1))
        probability = {edge_feature(e, op): e * len(OPS) + i
                       for e in range(edges) for i, op in enumerate(OPS)}
        values, index = [], []
        for name in feature_names:
            key = name.removeprefix(PREFIX)
            if not name.startswith(PREFIX) or (key not in constants and key not in probability):
                raise LennaError(f"feature {name} is not one of {DartsEncodingFeaturizer.name}'s "
                                 f"for a {spec['layers']}-layer block")
            if key in probability:
                index.append(probability[key])
            else:
                index.append(edges * len(OPS) + len(values))
                values.append(constants[key])
        self.edges = edges
        self._constants = torch.tensor(values, dtype=torch.float32)
        self._index = torch.tensor(index, dtype=torch.long)

    def __call__(self, alpha: torch.Tensor) -> torch.Tensor:
        """The 1 × features encoding of the block with op weights softmax(``alpha``)."""
        import torch

        if tuple(alpha.shape) != (self.edges, len(OPS)):
            raise LennaError(f"α must be {self.edges} × {len(OPS)}, got "
                             f"{tuple(alpha.shape)}")
        probabilities = torch.softmax(alpha.float(), dim=1).flatten()
        return torch.cat([probabilities, self._constants])[self._index].unsqueeze(0)
