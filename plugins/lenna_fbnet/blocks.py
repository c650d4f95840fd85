"""FBNet's search space: the 9 candidate blocks, the 22 layers and the macro network as Graph IR.

The network is HW-NAS-Bench's ``FBNet_Infer``, whose latencies HELP uses: a 3x3 stem (conv,
BN, ReLU), 22 searchable layers in seven stages, a 1x1 header (conv, BN, ReLU), global average
pool and a linear classifier. A candidate ``k{k}_e{e}`` is a 1x1 expansion to ``e`` times the
layer's *input* channels (conv, BN, ReLU), a k x k depthwise conv (BN, ReLU) that carries the
layer's stride, and a 1x1 projection (conv, BN), plus the input when the stride is 1 and the
channels match. ``_g2`` groups both 1x1 convs in two and shuffles the expanded channels
(groups 2) before the depthwise conv. ``skip`` is the identity where the shapes match, else a
strided 1x1 conv, BN and ReLU.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from lenna_core.api import Graph, GraphBuilder, LennaError

BLOCKS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
"""The candidates, in HW-NAS-Bench's (and HELP's) index order."""
STAGES = ((16, 1), (24, 4), (32, 4), (64, 4), (112, 4), (184, 4), (352, 1))
"""(output channels, layers) of the seven searchable stages."""
STEM_CHANNELS = 16
NUM_LAYERS = sum(layers for _, layers in STAGES)
SETTINGS = {
    32: {"stem_stride": 1, "stage_strides": (1, 1, 2, 2, 1, 2, 1), "header": 1504},
    224: {"stem_stride": 2, "stage_strides": (1, 2, 2, 2, 1, 2, 1), "header": 1984},
}
"""Per input size: HW-NAS-Bench's CIFAR-100 setting (32) and FBNet's ImageNet setting (224)."""


def layer_plan(input_size: int) -> list[tuple[int, int, int]]:
    """(input channels, output channels, stride) of each of the 22 layers."""
    plan, c_in = [], STEM_CHANNELS
    for (channels, layers), stride in zip(STAGES, SETTINGS[input_size]["stage_strides"],
                                          strict=True):
        for i in range(layers):
            plan.append((c_in, channels, stride if i == 0 else 1))
            c_in = channels
    return plan


def parse_blocks(value: object) -> tuple[str, ...]:
    """22 candidate names, or 22 indices 0-8 into :data:`BLOCKS` (numpy integers too, as in
    HELP's ``arch.pt`` rows), as names; else LennaError."""
    if not isinstance(value, list | tuple) or len(value) != NUM_LAYERS:
        got = f"{len(value)} items" if isinstance(value, list | tuple) else repr(value)[:40]
        raise LennaError(f"fbnet spec field 'blocks' must be a list of {NUM_LAYERS} block names "
                         f"or indices 0-{len(BLOCKS) - 1}, got {got}")
    names = []
    for layer, item in enumerate(value):
        if isinstance(item, numbers.Integral) and not isinstance(item, bool) \
                and 0 <= item < len(BLOCKS):
            names.append(BLOCKS[int(item)])
        elif isinstance(item, str) and item in BLOCKS:
            names.append(item)
        else:
            raise LennaError(f"fbnet spec field 'blocks': layer {layer} has {repr(item)[:40]}; "
                             f"give one of {', '.join(BLOCKS)} or its index 0-{len(BLOCKS) - 1}")
    return tuple(names)


def _conv_bn(b: GraphBuilder, x: str, name: str, channels: int, kernel: int = 1,
             stride: int = 1, groups: int = 1, relu: bool = True) -> str:
    x = b.add_node("conv2d", x, name=f"{name}.conv", out_channels=channels,
                   kernel_size=kernel, stride=stride, padding=kernel // 2, groups=groups)
    x = b.add_node("batchnorm", x, name=f"{name}.bn")
    return b.add_node("relu", x, name=f"{name}.relu") if relu else x


def _layer(b: GraphBuilder, x: str, name: str, block: str, c_in: int, c_out: int,
           stride: int) -> str:
    if block == "skip":
        if stride == 1 and c_in == c_out:
            return x
        return _conv_bn(b, x, f"{name}.skip", c_out, stride=stride)
    kernel, expansion = int(block[1]), int(block[4])
    groups = 2 if block.endswith("_g2") else 1
    hidden = c_in * expansion
    y = _conv_bn(b, x, f"{name}.expand", hidden, groups=groups)
    if groups > 1:
        y = b.add_node("channel_shuffle", y, name=f"{name}.shuffle", groups=groups)
    y = _conv_bn(b, y, f"{name}.depthwise", hidden, kernel, stride, groups=hidden)
    y = _conv_bn(b, y, f"{name}.project", c_out, groups=groups, relu=False)
    if stride == 1 and c_in == c_out:
        y = b.add_node("add", y, x, name=f"{name}.add")
    return y


def build_network(blocks: Sequence[str], input_size: int, num_classes: int) -> Graph:
    """The macro network with ``blocks[i]`` in layer i, for a 3 x size x size input."""
    setting = SETTINGS[input_size]
    b = GraphBuilder()
    x = b.input((3, input_size, input_size))
    x = _conv_bn(b, x, "stem", STEM_CHANNELS, 3, setting["stem_stride"])
    for i, (block, (c_in, c_out, stride)) in enumerate(
            zip(blocks, layer_plan(input_size), strict=True)):
        x = _layer(b, x, f"layer{i:02d}", block, c_in, c_out, stride)
    x = _conv_bn(b, x, "header", setting["header"])
    x = b.add_node("global_avgpool", x, name="pool")
    x = b.add_node("flatten", x, name="flatten")
    return b.build(b.add_node("linear", x, name="fc", out_features=num_classes))
