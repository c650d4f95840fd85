"""The ``fbnet`` source: FBNet's 22 searchable layers inside its macro network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import Architecture, LennaError, check_spec_fields
from lenna_fbnet.blocks import BLOCKS, NUM_LAYERS, SETTINGS, build_network, parse_blocks

FIELDS = ("blocks", "input_size", "num_classes")


def _input_size(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in SETTINGS:
        raise LennaError(f"fbnet {where} must be {' or '.join(map(str, SETTINGS))} "
                         f"(CIFAR-100 or ImageNet setting), got {value!r}")
    return value


def _positive(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LennaError(f"fbnet {where} must be a positive int, got {value!r}")
    return value


class FbnetSource:
    """FBNet's space as HW-NAS-Bench and HELP measure it; the defaults are CIFAR-100's
    (3x32x32, 100 classes), ``input_size=224`` is FBNet's ImageNet network.

    A spec may override ``input_size`` and ``num_classes``; the options are its defaults.
    """

    name: ClassVar[str] = "fbnet"
    spec_field: ClassVar[str] = "blocks"
    default_features: ClassVar[str] = "fbnet-encoding"

    def __init__(self, input_size: int = 32, num_classes: int = 100) -> None:
        self.input_size = _input_size(input_size, "option input_size")
        self.num_classes = _positive(num_classes, "option num_classes")

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Each layer's block drawn uniformly from the 9 candidates."""
        return self.from_spec({"blocks": [int(i) for i in
                                          rng.integers(len(BLOCKS), size=NUM_LAYERS)]})

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """``{"blocks": [22 names or indices 0-8]}`` plus optional ``input_size`` and
        ``num_classes``; the architecture's spec has all three, blocks as names. LennaError
        names a bad field or layer."""
        check_spec_fields(self.name, spec, FIELDS)
        if "blocks" not in spec:
            raise LennaError(f"fbnet spec needs 'blocks', a list of {NUM_LAYERS} block names")
        blocks = parse_blocks(spec["blocks"])
        size = _input_size(spec.get("input_size", self.input_size), "spec field 'input_size'")
        classes = _positive(spec.get("num_classes", self.num_classes), "spec field 'num_classes'")
        clean = {"blocks": list(blocks), "input_size": size, "num_classes": classes}
        return Architecture(self.name, clean, build_network(blocks, size, classes))
