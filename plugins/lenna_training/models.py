"""LeNet-5, VGG-small, ResNet-small (ResNet-20), DenseNet-small, a text LSTM and a
bidirectional LSTM regressor as Graph IR."""

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


DENSENET_GROWTH = 12
DENSENET_BLOCK_LAYERS = 6


def _bn_relu_conv(b: GraphBuilder, x: str, channels: int, kernel: int) -> str:
    x = b.add_node("relu", b.add_node("batchnorm", x))
    return b.add_node("conv2d", x, out_channels=channels, kernel_size=kernel,
                      padding=kernel // 2)


def densenet_small(shape: tuple[int, ...], classes: int) -> Graph:
    """DenseNet-BC for 32x32 images, growth rate ``DENSENET_GROWTH``: a 3x3 stem conv to
    2·growth channels; three dense blocks of ``DENSENET_BLOCK_LAYERS`` bottleneck layers
    (BN-ReLU-1x1 conv to 4·growth, BN-ReLU-3x3 conv to growth, concatenated after the layer's
    input); between blocks a transition (BN-ReLU-1x1 conv halving the channels, 2x2 average
    pool); then BN-ReLU, global average pool, linear. The convs have no bias."""
    b = GraphBuilder()
    x = b.add_node("conv2d", b.input(shape), out_channels=2 * DENSENET_GROWTH, kernel_size=3,
                   padding=1)
    for block in range(3):
        if block:
            x = _bn_relu_conv(b, x, b.shape(x)[0] // 2, 1)
            x = b.add_node("avgpool", x, kernel_size=2)
        for _ in range(DENSENET_BLOCK_LAYERS):
            y = _bn_relu_conv(b, x, 4 * DENSENET_GROWTH, 1)
            x = b.add_node("concat", x, _bn_relu_conv(b, y, DENSENET_GROWTH, 3), axis=0)
    x = b.add_node("relu", b.add_node("batchnorm", x))
    x = b.add_node("flatten", b.add_node("global_avgpool", x))
    return b.build(b.add_node("linear", x, out_features=classes))


def text_lstm(shape: tuple[int, ...], classes: int) -> Graph:
    """A two-layer LSTM (hidden 256) over embedded tokens, classified from all time steps.

    The IR has no embedding op, so the input is the (T, 128) embedded sequence; its lstm op
    returns every step (T, 256), and the head is a linear layer on the flattened sequence
    rather than on the last step.
    """
    b = GraphBuilder()
    x = b.add_node("lstm", b.input(shape), hidden_size=256, num_layers=2)
    return b.build(b.add_node("linear", b.add_node("flatten", x), out_features=classes))


def lstm_regressor(shape: tuple[int, ...], classes: int) -> Graph:
    """A stacked bidirectional LSTM (2 layers, hidden 64) regressing ``classes`` targets
    from a (T, F) sequence.

    As in :func:`text_lstm`, the head is a linear layer on the whole flattened output
    sequence (T, 128), not on the last step: the last step holds only the forward
    direction's summary of the sequence (the reverse direction's is at the first step).
    """
    b = GraphBuilder()
    x = b.add_node("lstm", b.input(shape), hidden_size=64, num_layers=2, bidirectional=True)
    return b.build(b.add_node("linear", b.add_node("flatten", x), out_features=classes))
