"""The ``nasbench201`` source: NAS-Bench-201 cells inside the standard macro network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from lenna_core.errors import LennaError
from lenna_core.records import Architecture
from lenna_core.specs import check_spec_fields
from lenna_nasbench201.cells import OPS, arch_string, build_network, parse_arch


def _size(value: Any) -> tuple[int, int]:
    """``32`` or ``"52x16"`` as (H, W)."""
    if isinstance(value, int) and not isinstance(value, bool):
        height = width = value
    else:
        try:
            height, width = (int(v) for v in str(value).lower().split("x"))
        except ValueError:
            raise LennaError(f"nasbench201 input_size must be an int or 'HxW', got {value!r}"
                             ) from None
    if height < 4 or width < 4 or height % 4 or width % 4:
        raise LennaError(f"nasbench201 input_size {value!r}: H and W must be multiples of 4 "
                         "(two reductions halve them)")
    return height, width


class NasBench201Source:
    """NAS-Bench-201 cells; the defaults are CIFAR-10's input (3x32x32, 10 classes).

    HW-NAS-Bench-360's tasks: cifar100 ``input_size=32, num_classes=100``; ninapro
    ``input_channels=1, input_size=52x16``; darcy ``input_channels=1, input_size=88``.
    """

    name: ClassVar[str] = "nasbench201"

    def __init__(self, input_size: int | str = 32, input_channels: int = 3,
                 num_classes: int = 10) -> None:
        self.size = _size(input_size)
        for option, value in (("input_channels", input_channels), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LennaError(f"nasbench201 option {option} must be a positive int, "
                                 f"got {value!r}")
        self.input_channels, self.num_classes = input_channels, num_classes

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A cell drawn uniformly from all 15,625."""
        cell = tuple(OPS[i] for i in rng.integers(len(OPS), size=6))
        return self.from_spec({"arch": arch_string(cell)})

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """``{"arch": "|op~0|+..."}``; LennaError names a bad field or token."""
        check_spec_fields(self.name, spec, ("arch",))
        if "arch" not in spec:
            raise LennaError("nasbench201 spec needs 'arch', an arch string")
        cell = parse_arch(spec["arch"])
        graph = build_network(cell, (self.input_channels, *self.size), self.num_classes)
        return Architecture(self.name, {"arch": arch_string(cell)}, graph)
