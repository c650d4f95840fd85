"""The torchvision source, the real-layer distribution of conv-layers, and the layer check."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torchvision")

from conftest import assert_one_line_error, run_lenna  # noqa: E402

from lenna_conv_layers.real_layers import load_table  # noqa: E402
from lenna_conv_layers.source import ConvLayersSource  # noqa: E402
from lenna_core.errors import LennaError  # noqa: E402
from lenna_core.ir import init_weights  # noqa: E402
from lenna_core.ir.conv_layers import conv_layers  # noqa: E402
from lenna_layer_stats.stats import count_macs, count_params  # noqa: E402
from lenna_torchvision.models import DEFAULT_MODELS  # noqa: E402
from lenna_torchvision.source import TorchvisionSource  # noqa: E402


@pytest.fixture(scope="module")
def source() -> TorchvisionSource:
    return TorchvisionSource()


@pytest.mark.parametrize("model", DEFAULT_MODELS)
def test_parameters_and_macs_match_torchvision_published_figures(source, model):
    """torchvision's weight metadata carries its published parameter count and GFLOPS
    (multiply-accumulates, in fact) at 224×224: no download needed to check against them."""
    from torchvision import models

    meta = models.get_model_weights(model).DEFAULT.meta
    graph = source.from_spec({"model": model}).graph
    assert graph.input_shape == (3, 224, 224)
    assert count_params(graph) == meta["num_params"]
    assert round(count_macs(graph) / 1e9, 3) == meta["_ops"]


def test_resnet18_and_densenet121_figures_and_layers(source):
    resnet18 = source.from_spec({"model": "resnet18"}).graph
    assert count_params(resnet18) == 11_689_512
    assert round(count_macs(resnet18) / 1e9, 2) == 1.81
    layers = conv_layers(source.from_spec({"model": "densenet121"}).graph)
    assert len(layers) == 120
    first, last = layers[0], layers[-1]
    assert (first["name"], first["kernel"], first["filters"], first["in_channels"], first["H"],
            first["stride"]) == ("features.conv0", 7, 64, 3, 224, 2)
    assert (last["kernel"], last["filters"], last["in_channels"], last["H"]) == (3, 32, 128, 7)


def test_spec_defaults_widths_and_input_sizes(source):
    from torchvision import models

    arch = source.from_spec({"model": "resnet50", "width": 2})
    assert arch.spec == {"model": "resnet50", "input_size": 224, "width": 2.0,
                         "num_classes": 1000}
    wide = models.get_model_weights("wide_resnet50_2").DEFAULT.meta["num_params"]
    assert count_params(arch.graph) == wide
    half = source.from_spec({"model": "mobilenet_v2", "width": 0.5, "num_classes": 10})
    module = models.mobilenet_v2(width_mult=0.5, num_classes=10)
    assert count_params(half.graph) == sum(p.numel() for p in module.parameters())
    small = source.from_spec({"model": "resnet18", "input_size": 96})
    assert small.graph.input_shape == (3, 96, 96)
    assert small.id != source.from_spec({"model": "resnet18"}).id
    again = source.from_spec(json.loads(json.dumps(small.spec)))
    assert again.id == small.id


def test_sampling_draws_models_sizes_and_widths_where_they_exist():
    source = TorchvisionSource(models="resnet18,mobilenet_v2", input_sizes="64,96",
                               widths="0.5,1.0")
    rng = np.random.default_rng(0)
    specs = [source.sample(rng).spec for _ in range(16)]
    assert {s["model"] for s in specs} == {"resnet18", "mobilenet_v2"}
    assert {s["input_size"] for s in specs} == {64, 96}
    assert {s["width"] for s in specs if s["model"] == "resnet18"} == {1.0}
    assert {s["width"] for s in specs if s["model"] == "mobilenet_v2"} == {0.5, 1.0}


def test_sampling_skips_combinations_the_ir_cannot_express():
    source = TorchvisionSource(models="vgg11,resnet18", input_sizes="64")
    rng = np.random.default_rng(0)
    assert {source.sample(rng).spec["model"] for _ in range(6)} == {"resnet18"}
    with pytest.raises(LennaError, match="no torchvision model, input size and width"):
        TorchvisionSource(models="vgg11", input_sizes="64").sample(rng)


@pytest.mark.parametrize("model", ["mobilenet_v3_small", "shufflenet_v2_x1_0",
                                   "efficientnet_b0"])
def test_round_trip_through_every_backend(source, model):
    """The traced graph runs on torch, ONNX Runtime and TensorFlow with equal outputs."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tensorflow")
    from lenna_onnxruntime.convert import run_onnx
    from lenna_tensorflow.convert import run_tensorflow
    from lenna_torch.convert import run_torch

    graph = source.from_spec({"model": model, "input_size": 64, "num_classes": 10}).graph
    weights = init_weights(graph, seed=0)
    x = np.random.default_rng(1).standard_normal((2, *graph.input_shape), dtype=np.float32)
    (reference,) = run_torch(graph, weights, x)
    assert reference.shape == (2, 10)
    for run in (run_onnx, run_tensorflow):
        (out,) = run(graph, weights, x)
        assert np.allclose(out, reference, rtol=1e-3, atol=1e-3), run.__name__


@pytest.mark.parametrize(("spec", "fragment"), [
    ({"model": "resnet1"}, "unknown torchvision model 'resnet1'"),
    ({"model": "vgg16", "width": 2}, "vgg16 has no width variants"),
    ({"model": "resnet18", "input_size": 4}, "input_size"),
    ({"model": "resnet18", "width": -1}, "width"),
    ({"model": "resnet18", "num_classes": 0}, "num_classes"),
    ({"model": "resnet18", "depth": 3}, "depth"),
    ({"input_size": 224}, "needs 'model'"),
    ({"model": "vgg16", "input_size": 160}, "AdaptiveAvgPool2d(5x5 -> 7x7)"),
    ({"model": "squeezenet1_0", "input_size": 8}, "does not run on inputs of shape"),
])
def test_bad_specs_name_the_problem(source, spec, fragment):
    with pytest.raises(LennaError) as info:
        source.from_spec(spec)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_real_layer_table_is_torchvision_s():
    from lenna_torchvision.layer_table import layer_table

    assert load_table() == layer_table()
    assert set(load_table()["models"]) == set(DEFAULT_MODELS)


def test_conv_layers_sample_real_layers():
    table = load_table()["models"]
    source = ConvLayersSource(distribution="real", models="resnet50,mobilenet_v2",
                              input_sizes="112,224")
    rows = {tuple(r) for m in ("resnet50", "mobilenet_v2") for r in table[m]}
    rng = np.random.default_rng(0)
    specs = [source.sample_spec(rng) for _ in range(200)]
    keys = ("kernel", "filters", "in_channels", "size", "stride", "groups")
    at_224 = [s for s in specs if tuple(s[k] for k in keys) in rows]
    assert len(at_224) > 60
    for spec in specs:
        arch = source.from_spec(spec)
        assert arch.graph.node("conv").attrs["groups"] == spec["groups"]
    assert any(s["groups"] > 1 for s in specs)  # mobilenet's depthwise layers
    assert {s["size"] for s in specs} - {r[3] for r in rows}  # and halved maps


@pytest.mark.parametrize(("options", "fragment"), [
    ({"distribution": "imagenet"}, "distribution must be one of"),
    ({"distribution": "real", "models": "alexnet2"}, "unknown alexnet2"),
    ({"distribution": "real", "input_sizes": "12"}, "input_sizes"),
    ({"models": "resnet50"}, "need distribution=real"),
])
def test_conv_layers_bad_options(options, fragment):
    with pytest.raises(LennaError, match=fragment):
        ConvLayersSource(**options)


def test_conv_layers_groups_must_divide_channels():
    with pytest.raises(LennaError, match="'groups' 3 must divide"):
        ConvLayersSource().from_spec({"kernel": 3, "filters": 8, "in_channels": 8, "size": 8,
                                      "stride": 1, "groups": 3})


@pytest.mark.slow
def test_layers_lists_densenet121_one_line_per_conv():
    result = run_lenna("layers", "--source", "torchvision", "--model", "densenet121")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "kernel", "filters", "in_ch", "H", "W", "stride"]
    assert len(lines) == 121
    assert lines[1].split() == ["features.conv0", "7", "64", "3", "224", "224", "2"]


@pytest.mark.slow
def test_layers_unknown_model_is_one_line(tmp_path):
    assert_one_line_error(run_lenna("layers", "--source", "torchvision", "--model", "resnet1",
                                    cwd=tmp_path), "unknown torchvision model 'resnet1'")
    assert_one_line_error(run_lenna("layers", "--source", "torchvision", "--arch",
                                    '{"model": "squeezenet1_0", "input_size": 8}',
                                    cwd=tmp_path), "does not run on inputs")


@pytest.mark.slow
def test_layer_check_predicts_each_layer_and_resumes(tmp_path):
    """Fit on conv-layers, then measure and predict every conv layer of a real model."""
    db, out = tmp_path / "l.db", tmp_path / "conv"
    fitted = run_lenna("run", "--source", "conv-layers", "-O", "distribution=real",
                       "-O", "models=squeezenet1_1,mobilenet_v2", "-O", "input_sizes=32",
                       "--n", "24", "--protocol", "fixed:5", "--passes", "1", "--threads", "1",
                       "--repeats", "2",
                       "--profile-runs", "0", "--db", str(db), "--out", str(out))
    assert fitted.returncode == 0, fitted.stderr
    args = ("layers", "--source", "torchvision", "--model", "resnet18", "-O", "input_sizes=32",
            "--predictor", str(out / "predictor"), "--protocol", "fixed:5", "--threads", "1",
            "--db", str(db), "--json")
    result = run_lenna(*args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["layers"]) == 20
    for row in report["layers"]:
        assert row["measured_ms"] > 0 and row["predicted_ms"] > 0
        assert row["error"] == pytest.approx(row["predicted_ms"] / row["measured_ms"] - 1)
    assert report["layers_measured_ms"] == pytest.approx(
        sum(r["measured_ms"] for r in report["layers"]))
    assert 0 <= report["layer_within_10pct"] <= 1 and report["layer_mape"] >= 0
    assert report["end_to_end_ms"] > 0
    again = run_lenna(*args)
    assert json.loads(again.stdout)["layers_measured_ms"] == report["layers_measured_ms"]
    assert "pass 1:" not in again.stderr and " passes)" not in again.stderr  # nothing measured
    wrong = run_lenna(*args[:-1], "--backend", "torch-cpu", cwd=tmp_path)
    assert_one_line_error(wrong, "fitted on onnxruntime")


def test_features_json_has_published_params_and_macs():
    result = run_lenna("features", "--source", "torchvision", "--model", "resnet18",
                       "--features", "layer-stats", "--json")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["params"] == 11_689_512
    assert round(values["macs"] / 1e9, 2) == 1.81
