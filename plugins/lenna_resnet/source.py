"""ResNet family source: the ResNet study's space in torchvision's layout.

A spec is ``{"block": "basic"|"bottleneck", "blocks": [b1, b2, b3, b4], "width": w,
"input_size": s, "num_classes": k}``. Stage ``i`` has ``blocks[i]`` blocks of base width
``w * 2**i``; bottleneck blocks expand by 4. ``{"block": "basic", "blocks": [2, 2, 2, 2],
"width": 64}`` is ResNet-18 and ``{"block": "bottleneck", "blocks": [3, 4, 6, 3],
"width": 64}`` is ResNet-50.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import Architecture, Graph, GraphBuilder, LennaError, check_spec_fields

BLOCK_TYPES = ("basic", "bottleneck")
EXPANSION = 4
"""Output channels of a bottleneck block per base width."""
STANDARD_MAX_BLOCKS = (3, 8, 36, 3)
"""Largest blocks-per-stage count over ResNet-18/34/50/101/152."""
MAX_DEPTH_FACTOR = 4.0
MAX_WIDTH_FACTOR = 3.0
BASE_WIDTH = 64
WIDTH_STEP = 16
MIN_INPUT_SIZE = 32
FIELDS = ("block", "blocks", "width", "input_size", "num_classes")


def _int(value: Any) -> int | None:
    """``value`` as an int if it is an integer (bools excluded), else None."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


class ResNetFamilySource:
    """ResNets with basic or bottleneck blocks, 1 to 4x the standard depth, 1 to 3x the width.

    The options bound what :meth:`sample` draws: at most ``max_depth_factor`` times the
    standard block counts ``[3, 8, 36, 3]`` per stage and widths up to
    ``64 * max_width_factor``. :meth:`from_spec` accepts the whole study space. The defaults
    sample its lower corner, where a default campaign takes minutes; ``max_depth_factor=4``
    and ``max_width_factor=3`` sample all of it (models of up to ~2 G parameters).
    """

    name: ClassVar[str] = "resnet-family"

    def __init__(self, input_size: int = 64, num_classes: int = 1000,
                 max_depth_factor: float = 1.0, max_width_factor: float = 1.5) -> None:
        if _int(input_size) is None or input_size < MIN_INPUT_SIZE:
            raise LennaError(
                f"resnet-family option input_size must be an int >= {MIN_INPUT_SIZE}, "
                f"got {input_size!r}"
            )
        if _int(num_classes) is None or num_classes < 1:
            raise LennaError(
                f"resnet-family option num_classes must be a positive int, got {num_classes!r}"
            )
        if not _is_number(max_depth_factor) or not 0 < max_depth_factor <= MAX_DEPTH_FACTOR:
            raise LennaError(
                f"resnet-family option max_depth_factor must be in (0, {MAX_DEPTH_FACTOR:g}], "
                f"got {max_depth_factor!r}"
            )
        if not _is_number(max_width_factor) or not 1 <= max_width_factor <= MAX_WIDTH_FACTOR:
            raise LennaError(
                f"resnet-family option max_width_factor must be in [1, {MAX_WIDTH_FACTOR:g}], "
                f"got {max_width_factor!r}"
            )
        self.input_size = int(input_size)
        self.num_classes = int(num_classes)
        self.max_depth_factor = float(max_depth_factor)
        self.max_width_factor = float(max_width_factor)

    @property
    def max_blocks(self) -> tuple[int, ...]:
        """Upper bound of blocks per stage that :meth:`sample` draws."""
        return tuple(max(1, int(n * self.max_depth_factor)) for n in STANDARD_MAX_BLOCKS)

    @property
    def widths(self) -> tuple[int, ...]:
        """Base widths that :meth:`sample` draws from."""
        top = int(BASE_WIDTH * self.max_width_factor)
        return tuple(range(BASE_WIDTH, top + 1, WIDTH_STEP))

    def sample_spec(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw a spec: block type and width uniform, blocks per stage log-uniform."""
        block = BLOCK_TYPES[int(rng.integers(len(BLOCK_TYPES)))]
        blocks = [
            int(min(bound, max(1, round(math.exp(rng.uniform(0.0, math.log(bound)))))))
            for bound in self.max_blocks
        ]
        widths = self.widths
        width = widths[int(rng.integers(len(widths)))]
        return {"block": block, "blocks": blocks, "width": width,
                "input_size": self.input_size, "num_classes": self.num_classes}

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw one architecture (see :meth:`sample_spec`)."""
        return self.from_spec(self.sample_spec(rng))

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """Validate ``spec`` and build its graph; LennaError names a bad field."""
        clean = self.validate(spec)
        return Architecture(source=self.name, spec=clean, graph=build_resnet(**clean))

    def validate(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``spec`` with defaults filled; raise LennaError naming a bad field."""
        check_spec_fields(self.name, spec, FIELDS)
        for key in ("block", "blocks", "width"):
            if key not in spec:
                raise LennaError(f"resnet-family spec: missing field '{key}'")

        block = spec["block"]
        if block not in BLOCK_TYPES:
            raise LennaError(
                f"resnet-family spec: 'block' must be one of {', '.join(BLOCK_TYPES)}, "
                f"got {block!r}"
            )

        raw_blocks = spec["blocks"]
        if not isinstance(raw_blocks, list | tuple) or len(raw_blocks) != len(STANDARD_MAX_BLOCKS):
            raise LennaError(
                f"resnet-family spec: 'blocks' must be a list of {len(STANDARD_MAX_BLOCKS)} "
                f"ints, got {raw_blocks!r}"
            )
        blocks = []
        for i, (value, standard) in enumerate(zip(raw_blocks, STANDARD_MAX_BLOCKS, strict=True)):
            top = int(standard * MAX_DEPTH_FACTOR)
            n = _int(value)
            if n is None or not 1 <= n <= top:
                raise LennaError(
                    f"resnet-family spec: 'blocks[{i}]' must be an int in 1..{top}, got {value!r}"
                )
            blocks.append(n)

        top_width = int(BASE_WIDTH * MAX_WIDTH_FACTOR)
        width = _int(spec["width"])
        if width is None or not BASE_WIDTH <= width <= top_width or width % WIDTH_STEP:
            raise LennaError(
                f"resnet-family spec: 'width' must be a multiple of {WIDTH_STEP} in "
                f"{BASE_WIDTH}..{top_width}, got {spec['width']!r}"
            )

        input_size = _int(spec.get("input_size", self.input_size))
        if input_size is None or input_size < MIN_INPUT_SIZE:
            raise LennaError(
                f"resnet-family spec: 'input_size' must be an int >= {MIN_INPUT_SIZE}, "
                f"got {spec['input_size']!r}"
            )
        num_classes = _int(spec.get("num_classes", self.num_classes))
        if num_classes is None or num_classes < 1:
            raise LennaError(
                f"resnet-family spec: 'num_classes' must be an int >= 1, "
                f"got {spec['num_classes']!r}"
            )
        return {"block": block, "blocks": blocks, "width": width,
                "input_size": input_size, "num_classes": num_classes}



def build_resnet(block: str, blocks: list[int], width: int, input_size: int,
                 num_classes: int) -> Graph:
    """The graph of a validated spec, with torchvision-like node names (``layer1_0_conv1``)."""
    b = GraphBuilder()
    x = b.input((3, input_size, input_size))
    x = _conv_bn(b, x, "conv1", "bn1", width, 7, 2)
    x = b.add_node("relu", x, name="relu")
    x = b.add_node("maxpool", x, name="maxpool", kernel_size=3, stride=2, padding=1)
    for stage, count in enumerate(blocks):
        planes = width * 2**stage
        for index in range(count):
            stride = 2 if stage > 0 and index == 0 else 1
            prefix = f"layer{stage + 1}_{index}"
            if block == "basic":
                x = _basic_block(b, x, prefix, planes, stride)
            else:
                x = _bottleneck_block(b, x, prefix, planes, stride)
    x = b.add_node("global_avgpool", x, name="avgpool")
    x = b.add_node("flatten", x, name="flatten")
    return b.build(b.add_node("linear", x, name="fc", out_features=num_classes))


def _conv_bn(b: GraphBuilder, x: str, conv: str, bn: str, out: int, kernel: int,
             stride: int) -> str:
    x = b.add_node("conv2d", x, name=conv, out_channels=out, kernel_size=kernel, stride=stride,
                   padding=kernel // 2, bias=False)
    return b.add_node("batchnorm", x, name=bn)


def _shortcut(b: GraphBuilder, x: str, prefix: str, out: int, stride: int) -> str:
    """Identity, or a 1x1 conv + BN downsample when the shape changes."""
    if stride == 1 and b.shape(x)[0] == out:
        return x
    return _conv_bn(b, x, f"{prefix}_downsample_0", f"{prefix}_downsample_1", out, 1, stride)


def _basic_block(b: GraphBuilder, x: str, prefix: str, planes: int, stride: int) -> str:
    y = _conv_bn(b, x, f"{prefix}_conv1", f"{prefix}_bn1", planes, 3, stride)
    y = b.add_node("relu", y, name=f"{prefix}_relu1")
    y = _conv_bn(b, y, f"{prefix}_conv2", f"{prefix}_bn2", planes, 3, 1)
    y = b.add_node("add", y, _shortcut(b, x, prefix, planes, stride), name=f"{prefix}_add")
    return b.add_node("relu", y, name=f"{prefix}_relu2")


def _bottleneck_block(b: GraphBuilder, x: str, prefix: str, planes: int, stride: int) -> str:
    out = planes * EXPANSION
    y = _conv_bn(b, x, f"{prefix}_conv1", f"{prefix}_bn1", planes, 1, 1)
    y = b.add_node("relu", y, name=f"{prefix}_relu1")
    y = _conv_bn(b, y, f"{prefix}_conv2", f"{prefix}_bn2", planes, 3, stride)
    y = b.add_node("relu", y, name=f"{prefix}_relu2")
    y = _conv_bn(b, y, f"{prefix}_conv3", f"{prefix}_bn3", out, 1, 1)
    y = b.add_node("add", y, _shortcut(b, x, prefix, out, stride), name=f"{prefix}_add")
    return b.add_node("relu", y, name=f"{prefix}_relu3")
