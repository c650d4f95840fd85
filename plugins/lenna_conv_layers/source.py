"""Single conv2d layers: ``input (in_channels, size, size) -> conv2d``, bias off, same padding.

A spec is ``{"kernel": 3, "filters": 64, "in_channels": 32, "size": 56, "stride": 1}`` plus
an optional ``groups`` (1; ``groups == in_channels == filters`` is a depthwise conv); the
padding is ``kernel // 2``. Layers are sampled from stage-typical ranges (``synthetic``) or
from the conv layers of real models (``real``, see :mod:`lenna_conv_layers.real_layers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any, ClassVar

import numpy as np

from lenna_conv_layers.real_layers import RealLayers
from lenna_core.api import Architecture, Graph, LennaError, check_spec_fields, single_conv_graph

STAGES: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    224: ((3, 16, 24, 32), (16, 24, 32, 48, 64)),
    112: ((16, 24, 32, 48, 64), (16, 24, 32, 48, 64, 96, 128)),
    56: ((24, 32, 48, 64, 96, 128, 256), (24, 32, 48, 64, 96, 128, 256)),
    28: ((32, 48, 64, 96, 128, 160, 192, 256, 512), (32, 48, 64, 96, 128, 160, 192, 256, 512)),
    14: ((64, 96, 128, 160, 192, 256, 320, 384, 512, 768, 1024),
         (64, 96, 128, 160, 192, 256, 320, 384, 512, 768, 1024)),
    7: ((128, 160, 192, 256, 320, 384, 512, 768, 1024),
        (128, 160, 192, 256, 320, 384, 512, 768, 1024)),
}
"""Map size -> (input channel choices, filter choices): large maps have few channels."""
KERNELS = (1, 3, 5, 7)
KERNEL_WEIGHTS = (0.35, 0.5, 0.1, 0.05)
STRIDE2_PROBABILITY = 0.15

LIMITS = {"kernel": (1, 11), "filters": (1, 4096), "in_channels": (1, 4096),
          "size": (1, 1024), "stride": (1, 4), "groups": (1, 4096)}
"""Inclusive range of each spec field accepted by :meth:`ConvLayersSource.from_spec`."""
OPTIONAL = {"groups": 1}
DISTRIBUTIONS = ("synthetic", "real")


class ConvLayersSource:
    """Single conv2d layers sampled like real CNN layers.

    With ``distribution=synthetic`` (the default) :meth:`sample` draws a stage (map size up
    to ``max_size``), then input channels and filters typical of that stage, a kernel in
    {1, 3, 5, 7} (mostly 1 and 3) and stride 1 (or 2, 15% of the time). With
    ``distribution=real`` it draws one of the conv layers of the torchvision ``models``
    (comma list; all by default) at one of ``input_sizes`` (comma list, 224 by default).
    :meth:`from_spec` accepts any spec within ``LIMITS``.
    """

    name: ClassVar[str] = "conv-layers"

    def __init__(self, max_size: int = 224, distribution: str = "synthetic",
                 models: str | None = None, input_sizes: str | int = "224") -> None:
        smallest = min(STAGES)
        if not _is_int(max_size) or max_size < smallest:
            raise LennaError(
                f"conv-layers option max_size must be an int >= {smallest}, got {max_size!r}"
            )
        if distribution not in DISTRIBUTIONS:
            raise LennaError(f"conv-layers option distribution must be one of "
                             f"{', '.join(DISTRIBUTIONS)}, got {distribution!r}")
        if distribution == "synthetic" and (models is not None or str(input_sizes) != "224"):
            raise LennaError("conv-layers options models and input_sizes need "
                             "distribution=real")
        self.max_size = int(max_size)
        self.real = RealLayers(models, input_sizes) if distribution == "real" else None

    def sample_spec(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw a spec: a real layer, or a stage first, then channels for that stage, kernel
        and stride."""
        if self.real is not None:
            return self.real.sample_spec(rng)
        sizes = sorted(s for s in STAGES if s <= self.max_size)
        size = sizes[int(rng.integers(len(sizes)))]
        in_choices, out_choices = STAGES[size]
        return {
            "kernel": KERNELS[int(rng.choice(len(KERNELS), p=KERNEL_WEIGHTS))],
            "filters": out_choices[int(rng.integers(len(out_choices)))],
            "in_channels": in_choices[int(rng.integers(len(in_choices)))],
            "size": size,
            "stride": 2 if rng.random() < STRIDE2_PROBABILITY else 1,
        }

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw one single-layer architecture (see :meth:`sample_spec`)."""
        return self.from_spec(self.sample_spec(rng))

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """Validate ``spec`` and build its graph; LennaError names a bad field."""
        clean = validate(spec)
        return Architecture(source=self.name, spec=clean, graph=build_conv(**clean))


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def validate(spec: Mapping[str, Any]) -> dict[str, int]:
    """Return a clean copy of ``spec``; raise LennaError naming a bad field and its range."""
    check_spec_fields("conv-layers", spec, LIMITS)
    clean: dict[str, int] = {}
    for key, (low, high) in LIMITS.items():
        if key not in spec and key not in OPTIONAL:
            raise LennaError(f"conv-layers spec: missing field '{key}'")
        value = spec.get(key, OPTIONAL.get(key))
        if not _is_int(value) or not low <= value <= high:
            raise LennaError(
                f"conv-layers spec: '{key}' must be an int in {low}..{high}, got {value!r}"
            )
        clean[key] = int(value)
    if clean["kernel"] % 2 == 0:
        raise LennaError(f"conv-layers spec: 'kernel' must be odd, got {clean['kernel']}")
    if clean["stride"] > clean["size"]:
        raise LennaError(
            f"conv-layers spec: 'stride' {clean['stride']} is larger than the "
            f"{clean['size']}x{clean['size']} map ('size'); allowed 1..{clean['size']}"
        )
    groups = clean["groups"]
    if clean["in_channels"] % groups or clean["filters"] % groups:
        raise LennaError(f"conv-layers spec: 'groups' {groups} must divide 'in_channels' "
                         f"({clean['in_channels']}) and 'filters' ({clean['filters']})")
    return clean


def build_conv(kernel: int, filters: int, in_channels: int, size: int, stride: int,
               groups: int = 1) -> Graph:
    """The graph ``input -> conv2d`` of a validated spec."""
    return single_conv_graph((in_channels, size, size), out_channels=filters,
                             kernel_size=kernel, stride=stride, padding=kernel // 2,
                             groups=groups, bias=False)
