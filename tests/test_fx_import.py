"""torch.fx import: torchvision's models, and their layouts in plain torch, become exact IR."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from lenna_core.errors import LennaError  # noqa: E402
from lenna_core.ir import Graph  # noqa: E402
from lenna_layer_stats.stats import count_params  # noqa: E402
from lenna_torch.convert import graph_to_module  # noqa: E402
from lenna_torch.fx_import import conv_layers, module_to_graph, weights_from_module  # noqa: E402


# -- torchvision's layouts, in plain torch ---------------------------------------------------
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for k, (inplanes, planes, stride) in enumerate(widths, start=1):
            setattr(self, f"layer{k}", nn.Sequential(BasicBlock(inplanes, planes, stride),
                                                     BasicBlock(planes, planes)))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class DenseLayer(nn.Module):
    def __init__(self, channels: int, growth: int, bn_size: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(channels, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, inputs):
        x = torch.cat(inputs, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, layers: int, channels: int, growth: int) -> None:
        super().__init__()
        for i in range(layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(channels + i * growth, growth))

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNetTiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, 16, 3, padding=1, bias=False))
        self.features.add_module("denseblock1", DenseBlock(3, 16, 8))
        self.features.add_module("transition1", nn.Sequential(
            nn.BatchNorm2d(40), nn.ReLU(inplace=True), nn.Conv2d(40, 20, 1, bias=False),
            nn.AvgPool2d(2, 2)))
        self.features.add_module("denseblock2", DenseBlock(2, 20, 8))
        self.features.add_module("norm5", nn.BatchNorm2d(36))
        self.classifier = nn.Linear(36, 10)

    def forward(self, x):
        out = F.relu(self.features(x), inplace=True)
        out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


def conv_bn_relu6(c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
                  groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2,
                                   groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.use_res_connect = stride == 1 and c_in == c_out
        layers = [conv_bn_relu6(c_in, hidden, 1)] if expand != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(conv_bn_relu6(3, 16, stride=2),
                                      InvertedResidual(16, 8, 1, 1),
                                      InvertedResidual(8, 12, 2, 6),
                                      InvertedResidual(12, 12, 1, 6),
                                      conv_bn_relu6(12, 64, 1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(64, 10))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class VGG11Tiny(nn.Module):
    """VGG-11's layout with an eighth of its channels and a smaller classifier."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in [8, "M", 16, "M", 32, 32, "M", 64, 64, "M", 64, 64, "M"]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(128, 128), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(128, 10))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.view(x.size(0), -1))


class Odds(nn.Module):
    """Less common but importable calls: 'same' padding, dilation, functional pools, mean."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding="same", dilation=2)
        self.act = nn.Hardswish()
        self.pool = nn.AdaptiveAvgPool2d(5)
        self.norm = nn.BatchNorm1d(8)
        self.gelu = nn.GELU()

    def forward(self, x):
        x = self.act(self.conv(x))
        x = F.avg_pool2d(F.max_pool2d(x, 3, 1, 1), 2, count_include_pad=False)
        x = torch.sigmoid(self.pool(x)).relu()
        return self.gelu(self.norm(x.mean([2, 3])))


# -- helpers ---------------------------------------------------------------------------------
def randomised(module: nn.Module, seed: int = 0) -> nn.Module:
    """The module in eval mode with non-trivial batchnorm statistics and affine parameters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                for t in (m.weight, m.bias, m.running_mean):
                    t.copy_(torch.randn(t.shape, generator=generator) * 0.2 + (t is m.weight))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
    return module.eval()


def assert_exact(module: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> Graph:
    """The imported graph, run with the module's weights, computes the module's output."""
    module = randomised(module, seed)
    graph = module_to_graph(module, input_shape)
    imported = graph_to_module(graph, weights_from_module(module, graph))
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        expected, got = module(x).numpy(), imported(x).numpy()
    assert got.shape == expected.shape
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(got / scale, expected / scale, atol=1e-4)
    return graph


# -- tests -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet18_graph():
    return module_to_graph(ResNet18(), (3, 224, 224), "resnet18")


def test_resnet18_shapes_names_and_parameter_count(resnet18_graph):
    graph = resnet18_graph
    shapes = graph.shapes
    assert shapes["input"] == (3, 224, 224)
    assert shapes["conv1"] == (64, 112, 112)
    assert shapes["maxpool"] == (64, 56, 56)
    assert shapes["layer2.0.downsample.0"] == (128, 28, 28)
    assert shapes["layer4.1.add"] == (512, 7, 7)
    assert shapes["avgpool"] == (512, 1, 1)
    assert shapes["flatten"] == (512,)
    assert graph.outputs == ("fc",)
    assert shapes["fc"] == (1000,)
    # BasicBlock calls its relu module twice.
    assert graph.node("layer1.0.relu@1").inputs == ("layer1.0.add",)
    assert graph.node("layer1.0.add").inputs == ("layer1.0.bn2", "maxpool")
    assert count_params(graph) == 11_689_512 == sum(p.numel() for p in ResNet18().parameters())


def test_resnet18_conv_layers(resnet18_graph):
    layers = conv_layers(resnet18_graph)
    assert len(layers) == 20
    assert sum(layer["kernel"] in (3, 7) for layer in layers) == 17
    assert [layer["name"] for layer in layers if layer["kernel"] == 1] == [
        f"layer{k}.0.downsample.0" for k in (2, 3, 4)]
    by_name = {layer["name"]: layer for layer in layers}
    assert {k: by_name["conv1"][k] for k in ("kernel", "filters", "in_channels", "H", "W",
                                              "stride")} == {
        "kernel": 7, "filters": 64, "in_channels": 3, "H": 224, "W": 224, "stride": 2}
    assert (by_name["layer1.0.conv1"]["H"], by_name["layer1.0.conv1"]["W"]) == (56, 56)
    down = by_name["layer3.0.downsample.0"]
    assert (down["H"], down["in_channels"], down["filters"], down["stride"]) == (28, 128, 256, 2)
    assert (by_name["layer3.0.conv2"]["H"], by_name["layer3.0.conv2"]["stride"]) == (14, 1)
    assert by_name["layer4.1.conv2"]["H"] == by_name["layer4.1.conv2"]["W"] == 7


@pytest.mark.parametrize(("model", "input_shape"), [
    (ResNet18, (3, 64, 64)),
    (DenseNetTiny, (3, 16, 16)),
    (MobileNetV2Tiny, (3, 32, 32)),
    (VGG11Tiny, (3, 224, 224)),
    (Odds, (3, 20, 20)),
], ids=["resnet18", "densenet", "mobilenetv2", "vgg11", "odds"])
def test_import_is_exact(model, input_shape):
    assert_exact(model(), input_shape)


def test_densenet_concatenates_features():
    graph = module_to_graph(DenseNetTiny(), (3, 16, 16))
    concat = graph.node("features.denseblock1.cat")
    assert concat.op == "concat" and concat.attrs["axis"] == 0
    assert concat.inputs == ("features.conv0",
                             "features.denseblock1.denselayer1.conv2",
                             "features.denseblock1.denselayer2.conv2",
                             "features.denseblock1.denselayer3.conv2")
    assert graph.shapes["features.denseblock1.cat"] == (40, 16, 16)
    assert graph.shapes["features.transition1.3"] == (20, 8, 8)


def test_mobilenetv2_depthwise_relu6_and_dropout():
    graph = module_to_graph(MobileNetV2Tiny(), (3, 32, 32))
    depthwise = graph.node("features.2.conv.1.0")
    assert depthwise.attrs["groups"] == 48 and depthwise.attrs["stride"] == [2, 2]
    assert graph.node("features.2.conv.1.2").op == "relu6"
    assert graph.node("features.3.add").inputs == ("features.2.conv.3", "features.3.conv.3")
    assert "features.2.add" not in {n.name for n in graph.nodes}
    assert graph.node("classifier.0").op == "identity"


def test_vgg_view_flattens_and_the_no_op_adaptive_pool_is_identity():
    graph = module_to_graph(VGG11Tiny(), (3, 224, 224))
    assert graph.node("avgpool").op == "identity"
    assert graph.node("view").op == "flatten"
    assert graph.shapes["view"] == (64 * 7 * 7,)
    assert sum(n.op == "conv2d" for n in graph.nodes) == 8


def test_adaptive_pool_with_a_fixed_window_becomes_avgpool():
    graph = module_to_graph(nn.Sequential(nn.AdaptiveAvgPool2d((2, 3))), (4, 8, 9))
    assert graph.node("0").op == "avgpool"
    assert graph.node("0").attrs["kernel_size"] == [4, 3]
    assert_exact(nn.Sequential(nn.AdaptiveAvgPool2d((2, 3))), (4, 8, 9))


def test_import_leaves_the_module_untouched():
    model = MobileNetV2Tiny().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    module_to_graph(model, (3, 32, 32))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def channel_shuffle(x, groups: int):
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batch, -1, height, width)


class ShuffleSE(nn.Module):
    """SiLU, squeeze-excitation (hardsigmoid, a broadcasting product), ShuffleNet's split and
    shuffle, functional silu and hardsigmoid, torch.split and stochastic depth's identity."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.SiLU())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(12, 12, 1), nn.Hardsigmoid())
        self.branch = nn.Conv2d(8, 8, 1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(12 * 8 * 8, 10), nn.SiLU())

    def forward(self, x):
        x = self.stem(x)
        x = x * self.se(x)
        a, b = torch.split(x, [4, 8], dim=1)
        x = channel_shuffle(torch.cat((a, self.branch(b)), 1), 3)
        left, right = x.chunk(2, dim=-1)
        x = torch.cat((F.silu(right), torch.mul(left, F.hardsigmoid(left))), 3)
        return self.head(x)


def test_squeeze_excitation_split_and_channel_shuffle_import_exactly():
    graph = assert_exact(ShuffleSE(), (3, 8, 8))
    ops = {node.name: node.op for node in graph.nodes}
    assert ops["stem.2"] == ops["silu"] == "silu" and ops["se.2"] == "hardsigmoid"
    assert graph.node("mul").inputs == ("stem.2", "se.2")
    assert [(graph.node(f"split.{k}").attrs, graph.shapes[f"split.{k}"]) for k in (0, 1)] == [
        ({"axis": 0, "start": 0, "end": 4}, (4, 8, 8)),
        ({"axis": 0, "start": 4, "end": 12}, (8, 8, 8))]
    shuffle = graph.node("channel_shuffle")
    assert shuffle.attrs == {"groups": 3} and shuffle.inputs == ("cat",)
    assert graph.node("chunk.1").attrs == {"axis": 2, "start": 4, "end": 8}
    assert graph.node("mul@1").inputs == ("chunk.0", "hardsigmoid")


def test_stochastic_depth_is_the_identity():
    ops = pytest.importorskip("torchvision.ops")

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.drop = ops.StochasticDepth(0.5, "row")

        def forward(self, x):
            return x + self.drop(self.conv(x))

    graph = assert_exact(Block().train(), (4, 6, 6))  # traced in training mode
    assert graph.node("drop.stochastic_depth").op == "identity"
    assert graph.node("drop.stochastic_depth").inputs == ("conv",)


class Unsupported(nn.Module):
    """Mish, products by constants, a chunk of the batch and a transpose."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.Mish()

    def forward(self, x):
        x = self.act(self.conv(x)) * 0.5
        x = torch.mul(x, 2)[:, :4]
        top, bottom = x.chunk(2, dim=0)
        return top.transpose(2, 3) + bottom


def test_unsupported_modules_and_functions_are_all_named_in_one_line():
    with pytest.raises(LennaError) as info:
        module_to_graph(Unsupported(), (3, 8, 8), "odd-model")
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        "odd-model: LENNA cannot import Mish (act), mul by a constant (mul, mul@1), "
        "getitem (getitem), chunk(dim=0) (chunk), transpose (transpose)")


def test_nodes_the_ir_rejects_are_named_with_the_reason():
    with pytest.raises(LennaError, match=r"node '1' \(Linear\): expects a rank-1 \(F,\) input"):
        module_to_graph(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Linear(5, 2)), (3, 5, 5))
    model = nn.Sequential(nn.Conv2d(3, 4, 2, padding="same"),
                          nn.Conv2d(4, 4, 3, padding_mode="reflect"))
    with pytest.raises(LennaError, match=r"Conv2d\(padding='same', asymmetric\) \(0\), "
                                         r"Conv2d\(padding_mode='reflect'\) \(1\)"):
        module_to_graph(model, (3, 8, 8))


def test_tensor_attributes_are_named():
    class LayerScale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Sequential(nn.Conv2d(3, 3, 1))
            self.gamma = nn.Parameter(torch.ones(3, 1, 1))

        def forward(self, x):
            return x + self.gamma * self.block(x)

    with pytest.raises(LennaError, match=r"^convnext: LENNA cannot import "
                                         r"tensor attribute \(gamma\), mul by a constant \(mul\)$"):
        module_to_graph(LayerScale(), (3, 4, 4), "convnext")


def test_untraceable_and_ill_fitting_models_are_one_line_errors(capfd):
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(LennaError, match="^branchy: torch.fx cannot trace the model: "):
        module_to_graph(Branchy(), (3,), "branchy")
    with pytest.raises(LennaError, match=r"does not run on inputs of shape \[1, 8, 8\] "
                                         r"\(without batch\): .*channels"):
        module_to_graph(ResNet18(), (1, 8, 8))
    assert capfd.readouterr().err == ""  # no traceback printed by torch


def test_weights_must_fit_the_module():
    graph = module_to_graph(nn.Sequential(nn.Conv2d(3, 4, 1)), (3, 5, 5))
    with pytest.raises(LennaError, match=r"node '0': its weight needs shape \[4, 3, 1, 1\]"):
        weights_from_module(nn.Sequential(nn.Conv2d(3, 6, 1)), graph)


# -- torchvision's models ----------------------------------------------------------------------
NEEDED_OPS = {"mobilenet_v3_small": {"hardswish", "hardsigmoid", "mul"},
              "efficientnet_b0": {"silu", "sigmoid", "mul"},
              "shufflenet_v2_x1_0": {"slice", "channel_shuffle"},
              "regnet_y_400mf": {"sigmoid", "mul"},
              "squeezenet1_1": {"concat", "maxpool"}}
"""Models checked output for output on 64x64 inputs, with ops they need."""


def torchvision_model(name: str) -> nn.Module:
    models = pytest.importorskip("torchvision").models
    return models.get_model(name, weights=None).eval()


def without_identities(graph: Graph) -> Graph:
    """The graph with its identity nodes (dropout) bypassed."""
    source: dict[str, str] = {}
    nodes = []
    for node in graph.nodes:
        inputs = tuple(source.get(i, i) for i in node.inputs)
        if node.op == "identity":
            source[node.name] = inputs[0]
        else:
            nodes.append(attrs.evolve(node, inputs=inputs))
    return Graph(tuple(nodes), tuple(source.get(o, o) for o in graph.outputs))


@pytest.mark.parametrize("name", sorted(NEEDED_OPS))
def test_torchvision_models_import_exactly(name):
    model = torchvision_model(name)
    graph = assert_exact(model, (3, 64, 64))
    assert NEEDED_OPS[name] <= {node.op for node in graph.nodes}
    assert count_params(graph) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "size"), [
    *((name, 64) for name in ("resnet18", "resnet34", "resnet50", "densenet121",
                              "squeezenet1_0", "mobilenet_v2", "mobilenet_v3_large",
                              "regnet_x_400mf")),
    ("vgg11", 224), ("vgg16", 224),  # their adaptive pool needs a 7x7 feature map
])
def test_the_other_torchvision_classifiers_import(name, size):
    model = torchvision_model(name)
    graph = module_to_graph(model, (3, size, size), name)
    assert [graph.shapes[output] for output in graph.outputs] == [(1000,)]
    assert count_params(graph) == sum(p.numel() for p in model.parameters())


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ["shufflenet_v2_x1_0", "mobilenet_v3_small", "efficientnet_b0"])
def test_torchvision_onnx_exports_import_as_the_traced_graph(tmp_path, name):
    """Export's Slices, channel-shuffle Reshapes, HardSigmoid and x * Sigmoid(x) come back as
    slice, channel_shuffle, hardsigmoid and silu; dropout is gone from the export."""
    pytest.importorskip("onnx")
    from lenna_onnx_file.importer import load_onnx_graph

    model = torchvision_model(name)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 64, 64),), str(path), dynamo=False,
                      do_constant_folding=False)  # keeps batchnorm apart from the convs
    graph = load_onnx_graph(path)
    assert graph.id == without_identities(module_to_graph(model, (3, 64, 64))).id
