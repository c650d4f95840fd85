"""LeNet-5, VGG-small, ResNet-small (ResNet-20) and a text LSTM as Graph IR."""

from __future__ import annotations

from lenna_core.api import Graph, GraphBuilder


def lenet5(shape: tuple[int, ...], classes: int) -> Graph:
    """LeCun's LeNet-5 (ReLU, max pools); 28x28 inputs are padded by 2 in the first conv."""
    b = GraphBuilder()
    x = b.input(shape)
    pad = 2 if shape[1] == 28 else 0
    x = b.add_node("conv2d", x, out_channels=6, kernel_size=5, padding=pad, bias=True)
    x = b.add_node("maxpool", b.add_node("relu", x), kernel_size=2)
    x = b.add_node("conv2d", x, out_channels=16, kernel_size=5, bias=True)
    x = b.add_node("maxpool", b.add_node("relu", x), kernel_size=2)
    x = b.add_node("flatten", x)
    for width in (120, 84):
        x = b.add_node("relu", b.add_node("linear", x, out_features=width))
    return b.build(b.add_node("linear", x, out_features=classes))


VGG_SMALL = (64, "M", 128, "M", 256, 256, "M", 512, "M")


def vgg_small(shape: tuple[int, ...], classes: int) -> Graph:
    """VGG-style: conv3x3+BN+ReLU layers ``VGG_SMALL`` (``M``: 2x2 max pool), global average
    pool, linear. The convs have no bias (BN follows); 2,147,402 parameters on CIFAR-10."""
    b = GraphBuilder()
    x = b.input(shape)
    for item in VGG_SMALL:
        if item == "M":
            x = b.add_node("maxpool", x, kernel_size=2)
        else:
            x = b.add_node("conv2d", x, out_channels=item, kernel_size=3, padding=1)
            x = b.add_node("relu", b.add_node("batchnorm", x))
    x = b.add_node("flatten", b.add_node("global_avgpool", x))
    return b.build(b.add_node("linear", x, out_features=classes))


def _conv_bn(b: GraphBuilder, x: str, channels: int, stride: int, kernel: int = 3) -> str:
    x = b.add_node("conv2d", x, out_channels=channels, kernel_size=kernel, stride=stride,
                   padding=kernel // 2)
    return b.add_node("batchnorm", x)


def resnet_small(shape: tuple[int, ...], classes: int) -> Graph:
    """ResNet-20 for small images: three stages of three basic blocks (16, 32, 64 channels),
    1x1 conv + BN shortcuts where the shape changes."""
    b = GraphBuilder()
    x = b.add_node("relu", _conv_bn(b, b.input(shape), 16, 1))
    for stage, channels in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage and block == 0 else 1
            y = b.add_node("relu", _conv_bn(b, x, channels, stride))
            y = _conv_bn(b, y, channels, 1)
            short = x if b.shape(x) == b.shape(y) else _conv_bn(b, x, channels, stride, 1)
            x = b.add_node("relu", b.add_node("add", y, short))
    x = b.add_node("flatten", b.add_node("global_avgpool", x))
    return b.build(b.add_node("linear", x, out_features=classes))


def text_lstm(shape: tuple[int, ...], classes: int) -> Graph:
    """A two-layer LSTM (hidden 256) over embedded tokens, classified from all time steps.

    The IR has no embedding op, so the input is the (T, 128) embedded sequence; its lstm op
    returns every step (T, 256) and it has no slice op, so the head is a linear layer on the
    flattened sequence rather than on the last step.
    """
    b = GraphBuilder()
    x = b.add_node("lstm", b.input(shape), hidden_size=256, num_layers=2)
    return b.build(b.add_node("linear", b.add_node("flatten", x), out_features=classes))
