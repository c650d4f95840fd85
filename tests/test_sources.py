"""The bundled sources: resnet-family and conv-layers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lenna_conv_layers.source import ConvLayersSource
from lenna_core.errors import LennaError
from lenna_core.ir import Graph
from lenna_core.plugins.interfaces import Source
from lenna_resnet.source import ResNetFamilySource


def graph_params(graph: Graph) -> int:
    """Conv weights (+bias), batchnorm scale and bias, linear weight and bias."""
    total = 0
    for node in graph.nodes:
        a = node.attrs
        if node.op == "conv2d":
            c_in = graph.shapes[node.inputs[0]][0]
            kh, kw = a["kernel_size"]
            total += a["out_channels"] * c_in // a["groups"] * kh * kw
            total += a["out_channels"] if a["bias"] else 0
        elif node.op == "batchnorm":
            total += 2 * graph.shapes[node.inputs[0]][0]
        elif node.op == "linear":
            f_in = graph.shapes[node.inputs[0]][0]
            total += f_in * a["out_features"] + (a["out_features"] if a["bias"] else 0)
    return total


@pytest.fixture(scope="module")
def resnet() -> ResNetFamilySource:
    return ResNetFamilySource(input_size=224)


def test_sources_satisfy_the_protocol() -> None:
    assert isinstance(ResNetFamilySource(), Source)
    assert isinstance(ConvLayersSource(), Source)
    assert ResNetFamilySource.name == "resnet-family"
    assert ConvLayersSource.name == "conv-layers"


@pytest.mark.parametrize(
    ("block", "blocks", "params"),
    [("basic", [2, 2, 2, 2], 11_689_512), ("bottleneck", [3, 4, 6, 3], 25_557_032)],
    ids=["resnet18", "resnet50"],
)
def test_torchvision_parameter_counts(resnet, block, blocks, params) -> None:
    arch = resnet.from_spec({"block": block, "blocks": blocks, "width": 64})
    assert arch.source == "resnet-family"
    assert graph_params(arch.graph) == params
    assert arch.graph.shapes["fc"] == (1000,)
    assert arch.graph.input_shape == (3, 224, 224)


def test_resnet_shapes_and_downsample(resnet) -> None:
    graph = resnet.from_spec({"block": "bottleneck", "blocks": [1, 1, 1, 1], "width": 64,
                              "input_size": 64, "num_classes": 10}).graph
    assert graph.shapes["maxpool"] == (64, 16, 16)
    assert graph.shapes["layer1_0_relu3"] == (256, 16, 16)
    assert graph.shapes["layer4_0_relu3"] == (2048, 2, 2)
    assert graph.shapes["fc"] == (10,)
    # bottleneck stage 1 changes channels 64 -> 256, so even it has a downsample
    names = {n.name for n in graph.nodes}
    assert {f"layer{i}_0_downsample_0" for i in range(1, 5)} <= names
    basic = resnet.from_spec({"block": "basic", "blocks": [2, 1, 1, 1], "width": 64}).graph
    assert "layer1_0_downsample_0" not in {n.name for n in basic.nodes}
    assert basic.node("layer2_0_downsample_0").attrs["stride"] == [2, 2]


def test_resnet_spec_defaults_come_from_the_options() -> None:
    source = ResNetFamilySource(input_size=96, num_classes=7)
    arch = source.from_spec({"block": "basic", "blocks": [1, 1, 1, 1], "width": 80})
    assert arch.spec == {"block": "basic", "blocks": [1, 1, 1, 1], "width": 80,
                         "input_size": 96, "num_classes": 7}
    assert arch.graph.input_shape == (3, 96, 96)
    assert arch.graph.shapes["fc"] == (7,)


def test_resnet_sampling_is_deterministic_and_within_bounds() -> None:
    source = ResNetFamilySource(max_depth_factor=4, max_width_factor=3)
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    specs_a = [source.sample_spec(rng_a) for _ in range(200)]
    specs_b = [source.sample_spec(rng_b) for _ in range(200)]
    assert specs_a == specs_b
    for spec in specs_a:
        assert spec["block"] in ("basic", "bottleneck")
        assert all(1 <= n <= top for n, top in zip(spec["blocks"], [12, 32, 144, 12],
                                                   strict=True))
        assert spec["width"] in range(64, 193, 16)
        assert (spec["input_size"], spec["num_classes"]) == (64, 1000)
    assert {s["block"] for s in specs_a} == {"basic", "bottleneck"}
    # log-uniform depth: small stages are common, yet the range is covered
    stage3 = np.array([s["blocks"][2] for s in specs_a])
    assert np.median(stage3) < 30 and stage3.max() > 72
    widths = {s["width"] for s in specs_a}
    assert min(widths) == 64 and max(widths) == 192


def test_resnet_default_sampling_stays_in_the_lower_corner() -> None:
    rng = np.random.default_rng(0)
    specs = [ResNetFamilySource().sample_spec(rng) for _ in range(200)]
    assert all(all(1 <= n <= top for n, top in zip(s["blocks"], [3, 8, 36, 3], strict=True))
               for s in specs)
    assert {s["width"] for s in specs} == set(range(64, 97, 16))


def test_resnet_sample_matches_sample_spec_and_round_trips() -> None:
    source = ResNetFamilySource(max_depth_factor=0.5, max_width_factor=1.5)
    archs = [source.sample(np.random.default_rng(3)) for _ in range(2)]
    assert archs[0].id == archs[1].id
    rng = np.random.default_rng(11)
    for _ in range(20):
        arch = source.sample(rng)
        assert all(n <= top for n, top in zip(arch.spec["blocks"], [1, 4, 18, 1], strict=True))
        assert arch.spec["width"] <= 96
        spec = json.loads(json.dumps(arch.spec))
        assert source.from_spec(spec).id == arch.id
        assert ResNetFamilySource().from_spec(spec).id == arch.id


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"input_size": 16}, "input_size"),
        ({"max_depth_factor": 0}, "max_depth_factor"),
        ({"max_depth_factor": 4.5}, "max_depth_factor"),
        ({"max_width_factor": 0.5}, "max_width_factor"),
        ({"max_width_factor": 3.5}, "max_width_factor"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_resnet_bad_options(options, field) -> None:
    with pytest.raises(LennaError, match=field):
        ResNetFamilySource(**options)


GOOD = {"block": "basic", "blocks": [1, 1, 1, 1], "width": 64}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"depth": 18}, "depth"),
        ({"block": "dense"}, "'block'"),
        ({"blocks": [1, 1, 1]}, "'blocks'"),
        ({"blocks": "2,2,2,2"}, "'blocks'"),
        ({"blocks": [1, 0, 1, 1]}, r"'blocks\[1\]' must be an int in 1\.\.32"),
        ({"blocks": [1, 1, 145, 1]}, r"'blocks\[2\]' must be an int in 1\.\.144"),
        ({"blocks": [1.0, 1, 1, 1]}, r"'blocks\[0\]'"),
        ({"blocks": [True, 1, 1, 1]}, r"'blocks\[0\]'"),
        ({"width": 70}, r"'width' must be a multiple of 16 in 64\.\.192"),
        ({"width": 208}, "'width'"),
        ({"width": "64"}, "'width'"),
        ({"input_size": 31}, "'input_size'"),
        ({"num_classes": -1}, "'num_classes'"),
    ],
)
def test_resnet_bad_specs_name_the_field(change, field) -> None:
    with pytest.raises(LennaError, match=field) as info:
        ResNetFamilySource().from_spec({**GOOD, **change})
    assert "\n" not in str(info.value)


def test_resnet_missing_field_and_non_mapping() -> None:
    with pytest.raises(LennaError, match="missing field 'width'"):
        ResNetFamilySource().from_spec({"block": "basic", "blocks": [1, 1, 1, 1]})
    with pytest.raises(LennaError, match="object"):
        ResNetFamilySource().from_spec([1, 2])


def test_conv_layer_shapes() -> None:
    source = ConvLayersSource()
    arch = source.from_spec({"kernel": 3, "filters": 64, "in_channels": 32, "size": 56,
                             "stride": 1})
    graph = arch.graph
    assert [n.op for n in graph.nodes] == ["input", "conv2d"]
    assert graph.input_shape == (32, 56, 56)
    assert graph.shapes["conv"] == (64, 56, 56)
    assert graph.node("conv").attrs["bias"] is False
    assert graph.node("conv").attrs["padding"] == [1, 1]
    strided = source.from_spec({"kernel": 7, "filters": 16, "in_channels": 3, "size": 224,
                                "stride": 2})
    assert strided.graph.shapes["conv"] == (16, 112, 112)
    odd = source.from_spec({"kernel": 1, "filters": 8, "in_channels": 8, "size": 7, "stride": 2})
    assert odd.graph.shapes["conv"] == (8, 4, 4)


def test_conv_layer_sampling_is_deterministic_realistic_and_round_trips() -> None:
    source = ConvLayersSource()
    rng_a, rng = np.random.default_rng(5), np.random.default_rng(5)
    archs_a = [source.sample(rng_a) for _ in range(200)]
    archs_b = [source.sample(rng) for _ in range(200)]
    assert [a.spec for a in archs_a] == [b.spec for b in archs_b]
    for arch in archs_a:
        spec = arch.spec
        assert spec["kernel"] in (1, 3, 5, 7)
        assert spec["size"] in (7, 14, 28, 56, 112, 224)
        assert spec["stride"] in (1, 2)
        assert source.from_spec(json.loads(json.dumps(spec))).id == arch.id
    specs = [a.spec for a in archs_a]
    assert sum(s["stride"] == 1 for s in specs) > 150
    # channels grow as maps shrink
    big = [s["in_channels"] for s in specs if s["size"] >= 112]
    small = [s["in_channels"] for s in specs if s["size"] <= 14]
    assert max(big) < min(small) * 2 and np.mean(small) > 4 * np.mean(big)
    limited = ConvLayersSource(max_size=28)
    assert all(limited.sample(rng).spec["size"] <= 28 for _ in range(50))


GOOD_CONV = {"kernel": 3, "filters": 64, "in_channels": 32, "size": 56, "stride": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"in_channels": -3}, r"'in_channels' must be an int in 1\.\.4096"),
        ({"filters": 0}, "'filters'"),
        ({"kernel": 4}, "'kernel' must be odd"),
        ({"kernel": 13}, "'kernel'"),
        ({"size": 0}, "'size'"),
        ({"size": 3, "stride": 4}, "'stride'"),
        ({"stride": 2.0}, "'stride'"),
        ({"dilation": 2}, "dilation"),
    ],
)
def test_conv_layer_bad_specs_name_the_field(change, field) -> None:
    with pytest.raises(LennaError, match=field):
        ConvLayersSource().from_spec({**GOOD_CONV, **change})


def test_conv_layer_missing_field_and_bad_option() -> None:
    spec = dict(GOOD_CONV)
    del spec["size"]
    with pytest.raises(LennaError, match="missing field 'size'"):
        ConvLayersSource().from_spec(spec)
    with pytest.raises(LennaError, match="max_size"):
        ConvLayersSource(max_size=4)
