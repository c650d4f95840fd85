"""The fbnet source and the fbnet-encoding featurizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_line_error, run_lenna

from lenna_core.errors import LennaError
from lenna_core.ir import init_weights
from lenna_core.records import Architecture, Workload
from lenna_fbnet.blocks import BLOCKS
from lenna_fbnet.encoding import FbnetEncodingFeaturizer
from lenna_fbnet.source import FbnetSource
from lenna_layer_stats.featurizer import LayerStatsFeaturizer

MIXED = ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
         "k5_e6", "skip", "k3_e1_g2", "k5_e3", "skip", "k3_e6", "k5_e1_g2", "skip", "k3_e3",
         "k5_e1", "skip", "k3_e1", "skip"]
SPECS = {"all_k3_e1": ["k3_e1"] * 22, "all_k5_e6": ["k5_e6"] * 22, "all_skip": ["skip"] * 22,
         "mixed": MIXED}


def torch_fbnet(blocks, input_size, num_classes):
    """FBNet written directly in torch.nn, from the layer table of docs/sources-and-features.md."""
    import torch
    from torch import nn

    def conv_bn(c_in, c_out, kernel=1, stride=1, groups=1, relu=True):
        layers = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(c_out)]
        return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)

    class Block(nn.Module):
        def __init__(self, name, c_in, c_out, stride):
            super().__init__()
            self.residual = stride == 1 and c_in == c_out
            if name == "skip":
                self.body = nn.Identity() if self.residual else conv_bn(c_in, c_out, 1, stride)
                self.residual = False
                return
            kernel, expansion, groups = int(name[1]), int(name[4]), 2 if "g2" in name else 1
            hidden = c_in * expansion
            self.body = nn.Sequential(
                conv_bn(c_in, hidden, groups=groups),
                nn.ChannelShuffle(groups) if groups > 1 else nn.Identity(),
                conv_bn(hidden, hidden, kernel, stride, groups=hidden),
                conv_bn(hidden, c_out, groups=groups, relu=False))

        def forward(self, x):
            return self.body(x) + x if self.residual else self.body(x)

    cifar = input_size == 32
    strides = (1, 1, 2, 2, 1, 2, 1) if cifar else (1, 2, 2, 2, 1, 2, 1)
    stages = ((16, 1), (24, 4), (32, 4), (64, 4), (112, 4), (184, 4), (352, 1))
    layers, c_in, names = [conv_bn(3, 16, 3, 1 if cifar else 2)], 16, iter(blocks)
    for (channels, count), stride in zip(stages, strides, strict=True):
        for i in range(count):
            layers.append(Block(next(names), c_in, channels, stride if i == 0 else 1))
            c_in = channels
    header = 1504 if cifar else 1984
    layers += [conv_bn(352, header), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(header, num_classes)]
    model = nn.Sequential(*layers).eval()
    macs = []

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs.append(output.numel() * module.in_channels // module.groups * kh * kw)
        else:
            macs.append(module.in_features * module.out_features)

    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            module.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    return sum(p.numel() for p in model.parameters()), sum(macs)


@pytest.mark.parametrize("input_size", [32, 224])
@pytest.mark.parametrize("kind", sorted(SPECS))
def test_params_and_macs_match_an_independent_torch_model(kind, input_size):
    pytest.importorskip("torch")
    classes = 100 if input_size == 32 else 1000
    arch = FbnetSource(input_size=input_size, num_classes=classes).from_spec(
        {"blocks": SPECS[kind]})
    stats = LayerStatsFeaturizer().featurize(Workload(arch))
    params, macs = torch_fbnet(SPECS[kind], input_size, classes)
    assert (stats["params"], stats["macs"]) == (params, macs)


def test_known_counts_of_the_cifar_network():
    counts = {kind: LayerStatsFeaturizer().featurize(
        Workload(FbnetSource().from_spec({"blocks": blocks}))) for kind, blocks in SPECS.items()}
    assert {k: (v["params"], v["macs"]) for k, v in counts.items()} == {
        "all_k3_e1": (1_170_676, 31_322_240), "all_k5_e6": (3_749_652, 160_926_080),
        "all_skip": (780_660, 11_608_960), "mixed": (1_284_124, 54_776_704)}


def test_layer_shapes_follow_the_stage_table():
    graph = FbnetSource().from_spec({"blocks": ["k3_e1"] * 22}).graph
    project = [graph.shapes[f"layer{i:02d}.project.bn"] for i in range(22)]
    assert [s[0] for s in project] == [16] + [24] * 4 + [32] * 4 + [64] * 4 + [112] * 4 + \
        [184] * 4 + [352]
    assert [s[1] for s in project] == [32] * 5 + [16] * 4 + [8] * 8 + [4] * 5
    big = FbnetSource(input_size=224).from_spec({"blocks": ["k3_e1"] * 22}).graph
    assert big.shapes["layer21.project.bn"] == (352, 7, 7)
    assert big.shapes["header.conv"] == (1984, 7, 7)
    assert graph.shapes["header.conv"] == (1504, 4, 4)


def test_grouped_blocks_shuffle_and_skip_widens_with_a_1x1_conv():
    graph = FbnetSource().from_spec({"blocks": MIXED}).graph
    ops = {node.name: node for node in graph.nodes}
    assert ops["layer01.shuffle"].op == "channel_shuffle"
    assert ops["layer01.expand.conv"].attrs["groups"] == 2
    assert ops["layer01.project.conv"].attrs["groups"] == 2
    # layer 8 (skip, 32->32, stride 1) is the identity; layer 21 (skip, 184->352) a 1x1 conv
    assert not any(name.startswith("layer08.") for name in ops)
    assert ops["layer21.skip.conv"].attrs["kernel_size"] == [1, 1]
    assert graph.shapes["layer21.skip.relu"] == (352, 4, 4)
    assert "layer00.add" in ops and "layer09.add" not in ops  # layer 9 opens a stride-2 stage


@pytest.mark.parametrize(("input_size", "blocks"), [(32, MIXED), (224, ["k5_e1_g2"] * 22)])
def test_onnxruntime_and_torch_compute_the_same_outputs(input_size, blocks):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from lenna_onnxruntime.convert import run_onnx
    from lenna_torch.convert import run_torch

    graph = FbnetSource(input_size=input_size).from_spec({"blocks": blocks}).graph
    weights = init_weights(graph, seed=0)
    x = np.random.default_rng(1).standard_normal((2, *graph.input_shape), dtype=np.float32)
    (from_onnx,), (from_torch,) = run_onnx(graph, weights, x), run_torch(graph, weights, x)
    assert from_onnx.shape == from_torch.shape == (2, 100)
    # 60-odd float32 convolutions with unnormalised weights: logits reach ~1e3-1e4, and the two
    # runtimes' summation orders differ by ~1e-6 of that scale
    scale = np.abs(from_torch).max()
    assert np.allclose(from_onnx, from_torch, rtol=1e-4, atol=1e-5 * scale)


def test_indices_canonicalise_to_names_and_the_spec_rebuilds_the_architecture():
    indices = [BLOCKS.index(name) for name in MIXED]
    arch = FbnetSource().from_spec({"blocks": indices})
    assert arch.spec == {"blocks": MIXED, "input_size": 32, "num_classes": 100}
    assert FbnetSource().from_spec(json.loads(json.dumps(arch.spec))).id == arch.id
    assert FbnetSource().from_spec({"blocks": MIXED}).id == arch.id
    assert FbnetSource().from_spec({"blocks": list(np.array(indices))}).id == arch.id
    other = FbnetSource().from_spec({"blocks": MIXED, "num_classes": 10})
    assert other.id != arch.id and other.graph.shapes["fc"] == (10,)


def test_sampling_is_uniform_per_layer():
    rng = np.random.default_rng(0)
    archs = [FbnetSource().sample(rng) for _ in range(200)]
    counts = np.array([[block == name for name in BLOCKS]
                       for a in archs for block in a.spec["blocks"]]).sum(axis=0)
    assert counts.sum() == 200 * 22
    assert counts.min() > 420 and counts.max() < 560  # 488.9 each if uniform


def test_encoding_is_one_hot_per_layer():
    arch = FbnetSource().from_spec({"blocks": MIXED})
    values = FbnetEncodingFeaturizer().featurize(Workload(arch))
    assert len(values) == 198 and sum(values.values()) == 22
    assert list(values)[:2] == ["layer00_k3_e1", "layer00_k3_e1_g2"]
    assert {k for k, v in values.items() if v == 1} == {
        f"layer{i:02d}_{name}" for i, name in enumerate(MIXED)}
    assert values["layer03_k3_e6"] == 1 and values["layer03_k5_e6"] == 0
    with pytest.raises(LennaError, match="needs fbnet architectures, not x"):
        FbnetEncodingFeaturizer().featurize(Workload(Architecture("x", {}, arch.graph)))


@pytest.mark.parametrize(("spec", "fragment"), [
    ({"blocks": ["k3_e1"] * 21}, "list of 22 block names or indices 0-8, got 21 items"),
    ({"blocks": ["k3_e1"] * 21 + ["k7_e6"]}, "layer 21 has 'k7_e6'"),
    ({"blocks": [0] * 21 + [9]}, "layer 21 has 9"),
    ({"blocks": [True] * 22}, "layer 0 has True"),
    ({"blocks": "k3_e1"}, "must be a list of 22"),
    ({"arch": MIXED}, "unknown field(s) arch"),
    ({}, "needs 'blocks'"),
    ({"blocks": MIXED, "input_size": 64}, "spec field 'input_size' must be 32 or 224"),
    ({"blocks": MIXED, "num_classes": 0}, "spec field 'num_classes' must be a positive int"),
])
def test_bad_specs_are_refused(spec, fragment):
    with pytest.raises(LennaError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        FbnetSource().from_spec(spec)


def test_bad_options_are_refused():
    with pytest.raises(LennaError, match="option input_size must be 32 or 224"):
        FbnetSource(input_size=96)
    with pytest.raises(LennaError, match="option num_classes must be a positive int"):
        FbnetSource(num_classes="100")


def test_features_from_the_cli():
    result = run_lenna("features", "--source", "fbnet", "--arch", json.dumps({"blocks": MIXED}),
                       "--features", "fbnet-encoding,layer-stats", "--json")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["fbnet-encoding.layer05_k5_e1_g2"] == 1
    assert values["layer-stats.params"] == 1_284_124
    bad = run_lenna("features", "--source", "fbnet", "--arch", json.dumps({"blocks": [9] * 22}))
    assert_one_line_error(bad, "layer 0 has 9")
