"""The ``nasbench201`` source: NAS-Bench-201 cells inside the standard macro network."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import Architecture, LennaError, check_spec_fields
from lenna_nasbench201.cells import (
    EDGES,
    OPS,
    arch_string,
    build_network,
    canonical_arch,
    parse_arch,
)

FIELDS = ("arch", "input_size", "input_channels", "num_classes")


def _size(value: Any, where: str) -> tuple[int, int]:
    """``32``, ``"32"`` or ``"52x16"`` as (H, W); ``where`` names the option or field."""
    if isinstance(value, int) and not isinstance(value, bool):
        height = width = value
    else:
        try:
            parts = [int(v) for v in str(value).lower().split("x")]
        except ValueError:
            parts = []
        if isinstance(value, bool | float) or len(parts) not in (1, 2):
            raise LennaError(f"nasbench201 {where} must be an int or 'HxW', got {value!r}")
        height, width = parts[0], parts[-1]
    if height < 4 or width < 4 or height % 4 or width % 4:
        raise LennaError(f"nasbench201 {where} {value!r}: H and W must be multiples of 4 "
                         "(two reductions halve them)")
    return height, width


def _positive(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LennaError(f"nasbench201 {where} must be a positive int, got {value!r}")
    return value


def _size_value(size: tuple[int, int]) -> int | str:
    """The spec form of (H, W): an int when square, else ``"HxW"``."""
    return size[0] if size[0] == size[1] else f"{size[0]}x{size[1]}"


class NasBench201Source:
    """NAS-Bench-201 cells; the defaults are CIFAR-10's input (3x32x32, 10 classes).

    HW-NAS-Bench-360's tasks: cifar100 ``input_size=32, num_classes=100``; ninapro
    ``input_channels=1, input_size=52x16``; darcy ``input_channels=1, input_size=88``.
    A spec may override the input fields; the options are its defaults.
    """

    name: ClassVar[str] = "nasbench201"
    spec_field: ClassVar[str] = "arch"
    default_features: ClassVar[str] = "nb201-encoding"

    def __init__(self, input_size: int | str = 32, input_channels: int = 3,
                 num_classes: int = 10) -> None:
        self.size = _size(input_size, "option input_size")
        self.input_channels = _positive(input_channels, "option input_channels")
        self.num_classes = _positive(num_classes, "option num_classes")

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A cell drawn uniformly from all 15,625."""
        cell = tuple(OPS[i] for i in rng.integers(len(OPS), size=len(EDGES)))
        return self.from_spec({"arch": arch_string(cell)})

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """``{"arch": "|op~0|+..."}`` plus optional ``input_size``, ``input_channels`` and
        ``num_classes``; the architecture's spec has all four. LennaError names a bad field
        or token."""
        cell = parse_arch(_arch(spec))
        size = (_size(spec["input_size"], "spec field 'input_size'")
                if "input_size" in spec else self.size)
        channels = _positive(spec.get("input_channels", self.input_channels),
                             "spec field 'input_channels'")
        classes = _positive(spec.get("num_classes", self.num_classes), "spec field 'num_classes'")
        graph = build_network(cell, (channels, *size), classes)
        clean = {"arch": arch_string(cell), "input_size": _size_value(size),
                 "input_channels": channels, "num_classes": classes}
        return Architecture(self.name, clean, graph)

    def canonical_spec(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The spec with its cell replaced by its isomorphism class's representative
        (:func:`~lenna_nasbench201.cells.canonical_arch`)."""
        return {**spec, "arch": canonical_arch(_arch(spec))}


def _arch(spec: Mapping[str, Any]) -> Any:
    """The arch string of a spec whose fields are checked."""
    check_spec_fields(NasBench201Source.name, spec, FIELDS)
    if "arch" not in spec:
        raise LennaError("nasbench201 spec needs 'arch', an arch string")
    return spec["arch"]
