"""Training workloads: the six models, their datasets, and (model, dataset, optimizer, batch)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_lenna

from lenna_core.errors import LennaError
from lenna_core.ir import init_weights
from lenna_core.ir.weights import parameter_specs
from lenna_core.records import Workload
from lenna_layer_stats.stats import count_params
from lenna_training.models import text_lstm
from lenna_training.source import (
    DATASETS,
    MODELS,
    TrainingWorkloadsSource,
    all_specs,
    compatible,
)

SPEC = {"model": "lenet5", "dataset": "mnist", "optimizer": "adam", "batch_size": 16}


def test_lenet5_and_lstm_match_independent_torch_counts():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    lenet = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5),
                          nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10))
    lstm = nn.Sequential(nn.LSTM(128, 256, num_layers=2), nn.Linear(64 * 256, 2))
    source = TrainingWorkloadsSource()
    for module, change, figure in [(lenet, {}, 61_706),
                                   (lstm, {"model": "lstm", "dataset": "text"}, 954_370)]:
        arch = source.from_spec({**SPEC, **change})
        assert count_params(arch.graph) == sum(p.numel() for p in module.parameters()) == figure


def test_resnet_small_matches_an_independent_torch_count():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    def conv_bn(cin, cout, stride, k=3):
        return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]

    layers, cin = conv_bn(3, 16, 1), 16
    for stage, cout in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage and block == 0 else 1
            layers += conv_bn(cin, cout, stride) + conv_bn(cout, cout, 1)
            if stride != 1 or cin != cout:
                layers += conv_bn(cin, cout, stride, 1)
            cin = cout
    layers.append(nn.Linear(64, 10))
    expected = sum(p.numel() for p in nn.Sequential(*layers).parameters())
    arch = TrainingWorkloadsSource().from_spec({**SPEC, "model": "resnet-small",
                                                "dataset": "cifar10"})
    assert count_params(arch.graph) == expected == 272_474


def test_densenet_small_matches_an_independent_torch_count():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    def bn_relu_conv(cin, cout, k):
        return [nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, k, padding=k // 2,
                                                          bias=False)]

    layers, channels = [nn.Conv2d(3, 24, 3, padding=1, bias=False)], 24
    for block in range(3):
        if block:
            layers += bn_relu_conv(channels, channels // 2, 1) + [nn.AvgPool2d(2)]
            channels //= 2
        for _ in range(6):
            layers += bn_relu_conv(channels, 48, 1) + bn_relu_conv(48, 12, 3)
            channels += 12
    layers += [nn.BatchNorm2d(channels), nn.Linear(channels, 10)]
    expected = sum(p.numel() for p in nn.Sequential(*layers).parameters())
    graph = TrainingWorkloadsSource().from_spec({"model": "densenet-small"}).graph
    # parameter_specs holds batchnorm's running statistics too: torch's buffers
    running = sum(m.running_mean.numel() + m.running_var.numel()
                  for m in layers if isinstance(m, nn.BatchNorm2d))
    specs = sum(np.prod(p.shape) for params in parameter_specs(graph).values()
                for p in params.values())
    assert channels == 132 and graph.shapes[graph.outputs[0]] == (10,)
    assert count_params(graph) == expected == specs - running == 176_122


def test_lstm_regressor_matches_an_independent_torch_count():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    lstm = nn.LSTM(8, 64, num_layers=2, bidirectional=True, batch_first=True)
    head = nn.Linear(50 * 128, 1)
    graph = TrainingWorkloadsSource().from_spec({"model": "lstm-regressor"}).graph
    (node,) = [n for n in graph.nodes if n.op == "lstm"]
    specs = parameter_specs(graph)
    # the IR's arrays are torch's, named w_ih_1_reverse for weight_ih_l1_reverse
    torch_names = {name.replace("weight", "w").replace("bias", "b").replace("_l", "_"): p.shape
                   for name, p in lstm.named_parameters()}
    assert {name: p.shape for name, p in specs[node.name].items()} == torch_names
    expected = sum(p.numel() for m in (lstm, head) for p in m.parameters())
    assert count_params(graph) == expected == 143_617
    assert graph.input_shape == (50, 8)
    assert graph.shapes[node.name] == (50, 128) and graph.shapes[graph.outputs[0]] == (1,)


def test_forward_lstm_graph_ids_are_pinned():
    """The lstm op's later bidirectional attribute must leave forward LSTMs' ids alone."""
    assert text_lstm((64, 128), 2).id == "495c9553f20de5c4"
    arch = TrainingWorkloadsSource().from_spec({**SPEC, "model": "lstm", "dataset": "text"})
    assert arch.graph.id == "495c9553f20de5c4" and arch.id == "85ad64016b3ac475"


def test_every_valid_combination_builds():
    specs = all_specs()
    # four image models on three image datasets, densenet-small on cifar10 only
    assert len(specs) == (3 * 3 + 1 + 1 + 1) * 5 * 5
    source = TrainingWorkloadsSource()
    for model in MODELS:
        for dataset, (shape, classes) in DATASETS.items():
            if not compatible(model, dataset):
                continue
            arch = source.from_spec({**SPEC, "model": model, "dataset": dataset})
            assert arch.graph.input_shape == shape
            assert arch.graph.shapes[arch.graph.outputs[0]] == (classes,)


def test_the_key_fixes_the_workload():
    source = TrainingWorkloadsSource()
    arch = source.from_spec(SPEC)
    assert source.workload_settings(arch) == {"batch_size": 16, "mode": "training",
                                              "optimizer": "adam"}
    fashion = source.from_spec({**SPEC, "dataset": "fashion-mnist"})
    assert fashion.graph.id == arch.graph.id and fashion.id != arch.id
    rng = np.random.default_rng(0)
    restricted = TrainingWorkloadsSource(models="lstm")
    assert {restricted.sample(rng).spec["model"] for _ in range(10)} == {"lstm"}


@pytest.mark.parametrize(("change", "fragment"), [
    ({"model": "alexnet"}, "model 'alexnet' is not one of"),
    ({"dataset": "imagenet"}, "dataset 'imagenet'"),
    ({"optimizer": "lbfgs"}, "optimizer 'lbfgs'"),
    ({"batch_size": 0}, "batch_size 0"),
    ({"batch_size": 16.0}, "batch_size 16.0 is not one of 16, 32"),
    ({"model": ["lenet5"]}, "model \\['lenet5'\\]"),
    ({"model": "lstm"}, "model lstm cannot train on dataset mnist; it trains on text"),
    ({"dataset": "text"}, "model lenet5 cannot train on dataset text"),
    ({"model": "lstm-regressor", "dataset": "cifar10"},
     "model lstm-regressor cannot train on dataset cifar10; it trains on sequence"),
    ({"model": "densenet-small"}, "densenet-small cannot train on dataset mnist; it trains on "
                                  "cifar10"),
])
def test_bad_specs_name_the_field(change, fragment):
    with pytest.raises(LennaError, match=fragment) as info:
        TrainingWorkloadsSource().from_spec({**SPEC, **change})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("spec", [{"model": "alexnet"}, {"model": "lstm-regressor",
                                                          "dataset": "cifar10"}])
def test_bad_partial_specs_are_refused_in_one_line(spec):
    with pytest.raises(LennaError, match="training-workloads spec: ") as info:
        TrainingWorkloadsSource().from_spec(spec)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("model", "dataset"), [
    ("lenet5", "mnist"), ("vgg-small", "mnist"), ("lstm", "text"),
    ("lstm-regressor", "sequence"), ("densenet-small", "cifar10"),
])
def test_missing_fields_take_their_defaults(model, dataset):
    source = TrainingWorkloadsSource()
    full = {"model": model, "dataset": dataset, "optimizer": "sgd", "batch_size": 32}
    arch = source.from_spec({"model": model})
    assert arch.spec == full and arch.id == source.from_spec(full).id
    assert source.from_spec({"model": model, "batch_size": 64}).spec == {**full,
                                                                          "batch_size": 64}
    assert source.workload_settings(arch) == {"batch_size": 32, "mode": "training",
                                              "optimizer": "sgd"}


def test_a_missing_model_is_named():
    with pytest.raises(LennaError, match="missing field 'model'"):
        TrainingWorkloadsSource().from_spec({"dataset": "mnist", "batch_size": 16})


def test_bad_options():
    with pytest.raises(LennaError, match="unknown alexnet"):
        TrainingWorkloadsSource(models="alexnet")
    with pytest.raises(LennaError, match="leave no workload"):
        TrainingWorkloadsSource(models="lstm", datasets="mnist")


@pytest.mark.parametrize(("change", "input_shape"), [
    ({}, (16, 1, 28, 28)),
    ({"model": "lstm", "dataset": "text"}, (16, 64, 128)),
])
def test_a_training_step_on_torch_updates_every_weight(change, input_shape):
    torch = pytest.importorskip("torch")
    from lenna_torch.backend import TorchCpuBackend

    source = TrainingWorkloadsSource()
    arch = source.from_spec({**SPEC, **change})
    runner = TorchCpuBackend(threads=1).prepare(Workload(arch, **source.workload_settings(arch)))
    assert type(runner.optimizer) is torch.optim.Adam
    assert [tuple(x.shape) for x in runner.xs] == [input_shape]
    before = {name: p.detach().clone() for name, p in runner.module.named_parameters()}
    runner.run()
    unchanged = [name for name, p in runner.module.named_parameters()
                 if torch.equal(p, before[name])]
    runner.close()
    assert len(before) == 10 and unchanged == []


def test_vgg_small_runs_inference_on_onnxruntime_as_torch_computes_it():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from lenna_onnxruntime.backend import OnnxRuntimeBackend
    from lenna_onnxruntime.convert import run_onnx
    from lenna_torch.convert import run_torch

    arch = TrainingWorkloadsSource().from_spec({**SPEC, "model": "vgg-small",
                                                "dataset": "cifar10"})
    runner = OnnxRuntimeBackend(threads=1).prepare(Workload(arch, batch_size=16))
    runner.run()
    runner.close()
    graph = arch.graph
    weights = init_weights(graph, seed=0)
    x = np.random.default_rng(1).standard_normal((16, *graph.input_shape), dtype=np.float32)
    (from_onnx,), (from_torch,) = run_onnx(graph, weights, x), run_torch(graph, weights, x)
    assert from_onnx.shape == (16, 10)
    assert np.allclose(from_onnx, from_torch, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("model", ["lstm-regressor", "densenet-small"])
def test_new_models_run_on_torch_and_onnxruntime(model):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from lenna_onnxruntime.backend import OnnxRuntimeBackend
    from lenna_torch.backend import TorchCpuBackend

    arch = TrainingWorkloadsSource().from_spec({"model": model, "batch_size": 16})
    for backend in (TorchCpuBackend(threads=1), OnnxRuntimeBackend(threads=1)):
        runner = backend.prepare(Workload(arch, batch_size=2))
        for _ in range(2):
            runner.run()
        runner.close()
    runner = TorchCpuBackend(threads=1).prepare(Workload(arch, batch_size=2, mode="training",
                                                         optimizer="adam"))
    assert [tuple(x.shape) for x in runner.xs] == [(2, *arch.graph.input_shape)]
    before = {name: p.detach().clone() for name, p in runner.module.named_parameters()}
    for _ in range(2):
        runner.run()
    unchanged = [name for name, p in runner.module.named_parameters()
                 if torch.equal(p, before[name])]
    runner.close()
    assert before and unchanged == []


@pytest.mark.slow
def test_a_campaign_of_training_workloads(tmp_path):
    pytest.importorskip("torch")
    result = run_lenna("run", "--source", "training-workloads", "-O", "models=lenet5",
                       "--backend", "torch-cpu", "--n", "6", "--protocol", "fixed:5",
                       "--passes", "1", "--threads", "1", "--estimator", "linear", "--repeats", "1",
                       "--profile-runs", "0", "--out", str(tmp_path / "o"),
                       "--db", str(tmp_path / "l.db"))
    assert result.returncode == 0, result.stderr
    assert "6 new, 0 reused, 0 failed" in result.stderr
