"""The onnxruntime and torch-cpu backends, their converters and the onnx-file importer."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from conftest import GRAPHS, cnn_graph, mobile_graph

from lenna_core.errors import LennaError
from lenna_core.ir import OPS, Graph, GraphBuilder, init_weights
from lenna_core.records import Architecture, Workload


def test_the_graphs_cover_every_op():
    used = {node.op for make in GRAPHS.values() for node in make().nodes}
    assert used == set(OPS)


@pytest.mark.parametrize("kind", sorted(GRAPHS))
def test_onnxruntime_and_torch_agree(kind):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from lenna_onnxruntime.convert import run_onnx
    from lenna_torch.convert import run_torch

    graph = GRAPHS[kind]()
    weights = init_weights(graph, seed=0)
    x = np.random.default_rng(1).standard_normal((2, *graph.input_shape), dtype=np.float32)
    from_onnx, from_torch = run_onnx(graph, weights, x), run_torch(graph, weights, x)
    for name, a, b in zip(graph.outputs, from_onnx, from_torch, strict=True):
        assert a.shape == b.shape == (2, *graph.shapes[name])
        assert np.allclose(a, b, rtol=1e-4, atol=1e-4), name


def bidirectional_lstm_graph() -> Graph:
    """A bidirectional two-layer LSTM feeding a forward one, classified from every step."""
    b = GraphBuilder()
    x = b.add_node("lstm", b.input((5, 6)), hidden_size=4, num_layers=2, bidirectional=True)
    x = b.add_node("lstm", x, hidden_size=3)
    return b.build(b.add_node("linear", b.add_node("flatten", x), out_features=2))


def test_bidirectional_lstm_runs_the_same_on_onnxruntime_and_torch():
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from lenna_onnxruntime.convert import graph_to_onnx, run_onnx
    from lenna_torch.convert import run_torch

    graph = bidirectional_lstm_graph()
    weights = init_weights(graph, seed=0)
    onnx.checker.check_model(graph_to_onnx(graph, weights, batch_size=2), full_check=True)
    x = np.random.default_rng(1).standard_normal((2, *graph.input_shape), dtype=np.float32)
    (from_onnx,), (from_torch,) = run_onnx(graph, weights, x), run_torch(graph, weights, x)
    assert from_onnx.shape == from_torch.shape == (2, 2)
    assert np.allclose(from_onnx, from_torch, rtol=1e-4, atol=1e-4)


def test_a_bidirectional_lstm_export_is_refused_by_the_onnx_importer():
    pytest.importorskip("onnx")
    from lenna_onnx_file.importer import onnx_to_graph
    from lenna_onnxruntime.convert import graph_to_onnx

    graph = bidirectional_lstm_graph()
    with pytest.raises(LennaError, match="only forward LSTMs are supported"):
        onnx_to_graph(graph_to_onnx(graph, init_weights(graph)))


def test_torch_trains_every_weight_of_a_bidirectional_lstm():
    torch = pytest.importorskip("torch")
    from lenna_torch.backend import TorchCpuBackend

    arch = Architecture("test", {}, bidirectional_lstm_graph())
    runner = TorchCpuBackend(threads=1).prepare(Workload(arch, batch_size=2, mode="training",
                                                         optimizer="adam"))
    before = {k: v.detach().clone() for k, v in runner.module.named_parameters()}
    runner.run()
    unchanged = [k for k, v in runner.module.named_parameters() if torch.equal(v, before[k])]
    runner.close()
    assert "layers.0.weight_hh_l1_reverse" in before and unchanged == []


def test_onnx_model_is_valid_and_loadable_by_old_runtimes():
    onnx = pytest.importorskip("onnx")
    from lenna_onnxruntime.convert import IR_VERSION, graph_to_onnx

    model = graph_to_onnx(cnn_graph(), init_weights(cnn_graph()), batch_size=3)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == IR_VERSION <= 10
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3


@pytest.mark.parametrize("kind", ["cnn", "lstm", "mobile"])
def test_onnx_round_trip_keeps_the_architecture_id(kind):
    pytest.importorskip("onnx")
    from lenna_onnx_file.importer import onnx_to_graph
    from lenna_onnxruntime.convert import graph_to_onnx

    graph = GRAPHS[kind]()
    assert onnx_to_graph(graph_to_onnx(graph, init_weights(graph), batch_size=2)).id == graph.id


@pytest.mark.filterwarnings("ignore")
def test_torch_export_of_a_small_cnn_imports_with_the_right_shapes(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from torch import nn

    from lenna_onnx_file.source import OnnxFileSource

    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=4), nn.GELU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    ).eval()
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), str(path), dynamo=False)
    arch = OnnxFileSource().from_spec({"path": path})
    graph = arch.graph
    assert arch.source == "onnx-file" and arch.spec == {"path": str(path)}
    assert graph.input_shape == (3, 16, 16)
    assert [graph.shapes[o] for o in graph.outputs] == [(5,)]
    convs = [n for n in graph.nodes if n.op == "conv2d"]
    assert [(n.attrs["out_channels"], n.attrs["groups"]) for n in convs] == [(8, 1), (8, 4)]
    assert {"gelu", "maxpool", "global_avgpool", "flatten", "linear"} <= {
        n.op for n in graph.nodes}


def _model_with(nodes, inputs, outputs, initializers=()):
    from onnx import helper

    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(initializers)),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_unsupported_ops_are_all_named(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from lenna_onnx_file.importer import load_onnx_graph

    model = _model_with(
        [helper.make_node("Softmax", ["x"], ["s"], axis=1),
         helper.make_node("Resize", ["s", "", "scales"], ["y"]),
         helper.make_node("Relu", ["y"], ["z"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])],
    )
    path = tmp_path / "model.onnx"
    onnx.save(model, path)
    with pytest.raises(LennaError) as info:
        load_onnx_graph(path)
    message = str(info.value)
    assert message == "model.onnx uses ops LENNA cannot import: Resize, Softmax"


def _image_model(nodes, initializers=()):
    from onnx import TensorProto, helper

    return _model_with(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [1, 4, 6, 6])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                       initializers)


def test_onnx_split_silu_slice_hardsigmoid_and_mean_import():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from lenna_onnx_file.importer import onnx_to_graph

    model = _image_model([
        helper.make_node("Split", ["x", "sizes"], ["a", "b"], axis=1),
        helper.make_node("Sigmoid", ["b"], ["gate_b"]),
        helper.make_node("Mul", ["gate_b", "b"], ["silu"]),
        helper.make_node("Sigmoid", ["a"], ["gate_a"]),  # used twice: not a silu
        helper.make_node("Mul", ["a", "gate_a"], ["product"]),
        helper.make_node("Add", ["product", "gate_a"], ["sum"]),
        helper.make_node("Concat", ["silu", "sum"], ["cat"], axis=1),
        helper.make_node("Slice", ["cat", "starts", "ends", "axes"], ["cols"]),
        helper.make_node("HardSigmoid", ["cols"], ["hard"], alpha=1 / 6, beta=0.5),
        helper.make_node("ReduceMean", ["hard"], ["y"], axes=[2, 3], keepdims=0),
    ], [helper.make_tensor("sizes", TensorProto.INT64, [2], [1, 3]),
        helper.make_tensor("starts", TensorProto.INT64, [1], [-4]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [2**63 - 1]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [3])])
    graph = onnx_to_graph(model)
    assert [(n.op, n.inputs, n.attrs) for n in graph.nodes[1:]] == [
        ("slice", ("input",), {"axis": 0, "start": 0, "end": 1}),
        ("slice", ("input",), {"axis": 0, "start": 1, "end": 4}),
        ("silu", ("slice_1",), {}),
        ("sigmoid", ("slice_0",), {}),
        ("mul", ("slice_0", "sigmoid_1"), {}),
        ("add", ("mul_0", "sigmoid_1"), {}),
        ("concat", ("silu_0", "add_0"), {"axis": 0}),
        ("slice", ("concat_0",), {"axis": 2, "start": 2, "end": 6}),
        ("hardsigmoid", ("slice_2",), {}),
        ("global_avgpool", ("hardsigmoid_0",), {}),
        ("flatten", ("global_avgpool_0",), {}),
    ]


@pytest.mark.parametrize(("nodes", "message"), [
    ([("HardSigmoid", ["x"], {})],
     "node #0 (HardSigmoid): only torch's hardsigmoid (alpha 1/6, beta 0.5) is supported, "
     "got alpha 0.2, beta 0.5"),
    ([("GlobalAveragePool", ["x"], {}), ("Mul", ["x", "out0"], {}),
      ("Mul", ["out1", "out0"], {}), ("Slice", ["out2", "starts", "ends", "axes"], {}),
      ("Mul", ["out2", "out3"], {})],
     "node #4 (Mul): cannot be imported as mul: input shapes [4, 6, 6] and [4, 6, 2] do not "
     "broadcast"),
    ([("Reshape", ["x", "grouped"], {}), ("Relu", ["out0"], {})],
     "node #1 (Relu): its input is an unfinished pattern (grouped)"),
    ([("Split", ["x"], {"axis": 0})], "node #0 (Split): splitting the batch axis is not "
                                      "supported"),
])
def test_onnx_new_op_patterns_name_what_they_cannot_import(nodes, message):
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from lenna_onnx_file.importer import onnx_to_graph

    onnx_nodes = [helper.make_node(op, inputs, [f"out{k}"], **attributes)
                  for k, (op, inputs, attributes) in enumerate(nodes)]
    onnx_nodes.append(helper.make_node("Identity", [f"out{len(nodes) - 1}"], ["y"]))
    model = _image_model(onnx_nodes, [
        helper.make_tensor("starts", TensorProto.INT64, [1], [1]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [3]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [3]),
        helper.make_tensor("grouped", TensorProto.INT64, [5], [1, 2, 2, 6, 6])])
    with pytest.raises(LennaError) as info:
        onnx_to_graph(model, "m.onnx")
    assert str(info.value).startswith(f"m.onnx: {message}")


def test_asymmetric_padding_is_an_error():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from lenna_onnx_file.importer import onnx_to_graph

    model = _model_with(
        [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], pads=[0, 0, 1, 1])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    with pytest.raises(LennaError, match="asymmetric"):
        onnx_to_graph(model, "m.onnx")


@pytest.mark.parametrize("content", [None, b"this is not an ONNX model \x00\xff\xfe", b""])
def test_bad_files_are_one_line_errors(tmp_path, content):
    pytest.importorskip("onnx")
    from lenna_onnx_file.source import OnnxFileSource

    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LennaError) as info:
        OnnxFileSource().from_spec({"path": str(path)})
    assert "bad.onnx" in str(info.value) and "\n" not in str(info.value)


def test_onnx_file_source_cannot_sample_and_checks_its_spec():
    from lenna_onnx_file.source import OnnxFileSource

    with pytest.raises(LennaError, match="cannot sample"):
        OnnxFileSource().sample(np.random.default_rng(0))
    with pytest.raises(LennaError, match="'path'"):
        OnnxFileSource().from_spec({"file": "x.onnx"})


def _workload(mode: str = "inference", optimizer: str | None = None) -> Workload:
    return Workload(Architecture("test", {}, cnn_graph()), batch_size=2, mode=mode,
                    optimizer=optimizer)


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _no_cuda_files(monkeypatch, tmp_path):
    """Point the device check at files under ``tmp_path``, none of which exist yet."""
    from lenna_core.measurement import host as devices

    monkeypatch.setattr(devices, "DEVICE_FILES", (tmp_path / "nvidia0",))
    monkeypatch.setattr(devices, "GPU_DIRECTORY", tmp_path / "gpus")
    return devices


@pytest.fixture
def torch_threads():
    """Restore torch's thread count after a test that sets it."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    yield torch
    torch.set_num_threads(threads)


@pytest.fixture
def cuda_torch():
    """torch with a usable CUDA device, else skip (checked at run time, not at collection)."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    return torch


def test_onnxruntime_backend_runs_inference_only():
    pytest.importorskip("onnxruntime")
    from lenna_onnxruntime.backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(threads=1)
    assert backend.fingerprint()["execution_provider"] == "CPUExecutionProvider"
    assert backend.fingerprint()["intra_op_threads"] == 1
    runner = backend.prepare(_workload())
    runner.run()
    runner.close()
    with pytest.raises(LennaError, match="supports inference, not training"):
        backend.prepare(_workload("training"))


def test_onnxruntime_fingerprint_names_the_default_thread_count():
    pytest.importorskip("onnxruntime")
    from lenna_onnxruntime.backend import OnnxRuntimeBackend

    fingerprint = OnnxRuntimeBackend().fingerprint()
    assert fingerprint["intra_op_threads"] == "default"
    assert fingerprint["cpu_count"] == os.cpu_count()


def test_onnxruntime_vocabulary_maps_to_lenna_ops():
    from lenna_onnxruntime.backend import OnnxRuntimeBackend

    vocabulary = OnnxRuntimeBackend.op_vocabulary
    assert set(vocabulary.values()) <= set(OPS)
    assert {vocabulary[k] for k in ("Conv", "FusedConv")} == {"conv2d"}
    assert vocabulary["Gelu"] == vocabulary["Erf"] == "gelu"
    assert vocabulary["Clip"] == "relu6" and vocabulary["Sum"] == "add"


def test_onnxruntime_cuda_needs_onnxruntime_gpu_and_a_device(monkeypatch, tmp_path):
    from lenna_core.plugins.registry import unavailable_reason
    from lenna_onnxruntime.backend import OnnxRuntimeCudaBackend

    if importlib.util.find_spec("onnxruntime") and not _installed("onnxruntime-gpu"):
        assert "onnxruntime-gpu" in unavailable_reason(OnnxRuntimeCudaBackend)
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: None)
    _no_cuda_files(monkeypatch, tmp_path)
    assert OnnxRuntimeCudaBackend.unavailable_reason() == "no CUDA device"
    (tmp_path / "nvidia0").touch()
    assert OnnxRuntimeCudaBackend.unavailable_reason() is None


def test_onnxruntime_cuda_refuses_a_runtime_without_the_cuda_provider():
    ort = pytest.importorskip("onnxruntime")
    from lenna_onnxruntime.backend import OnnxRuntimeCudaBackend

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(LennaError, match="install onnxruntime-gpu"):
        OnnxRuntimeCudaBackend().prepare(_workload())


def test_onnxruntime_backend_uses_external_data_for_big_models(monkeypatch, tmp_path):
    pytest.importorskip("onnxruntime")
    from lenna_onnxruntime import backend as module

    monkeypatch.setattr(module, "EXTERNAL_DATA_BYTES", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    b = GraphBuilder()
    conv = b.add_node("conv2d", b.input((3, 8, 8)), out_channels=16, kernel_size=3, bias=True)
    runner = module.OnnxRuntimeBackend().prepare(
        Workload(Architecture("test", {}, b.build(conv)), batch_size=2))
    (folder,) = tmp_path.iterdir()
    files = {path.name: path.stat().st_size for path in folder.iterdir()}
    assert sorted(files) == ["model.onnx", "model.onnx.data"]
    # ONNX moves tensors of 1 KiB or more out: the 16x3x3x3 float weights, not the bias.
    assert files["model.onnx.data"] == 16 * 3 * 3 * 3 * 4
    runner.run()
    runner.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", ["inference", "training"])
def test_torch_backend_runs(mode):
    pytest.importorskip("torch")
    from lenna_torch.backend import TorchCpuBackend

    backend = TorchCpuBackend()
    assert backend.fingerprint()["device"] == "cpu"
    runner = backend.prepare(_workload(mode))
    runner.run()
    runner.close()


def test_torch_fingerprint_records_the_effective_threads(torch_threads):
    from lenna_torch.backend import TorchCpuBackend

    default = TorchCpuBackend().fingerprint()
    assert default["intra_op_threads"] == torch_threads.get_num_threads()
    assert default["inter_op_threads"] == torch_threads.get_num_interop_threads()
    assert TorchCpuBackend(threads=1).fingerprint()["intra_op_threads"] == 1


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_torch_training_step_updates_the_weights(optimizer):
    torch = pytest.importorskip("torch")
    from lenna_torch.backend import TorchCpuBackend

    assert optimizer in TorchCpuBackend.optimizers
    runner = TorchCpuBackend().prepare(_workload("training", optimizer))
    before = {k: v.detach().clone() for k, v in runner.module.named_parameters()}
    runner.run()
    changed = {k for k, v in runner.module.named_parameters() if not torch.equal(v, before[k])}
    runner.close()
    first, *_, last = before
    assert {first, last} <= changed and len(changed) > len(before) // 2


def test_torch_training_defaults_to_the_first_optimizer_and_refuses_unknown_ones():
    torch = pytest.importorskip("torch")
    from lenna_torch.backend import TorchCpuBackend

    runner = TorchCpuBackend().prepare(_workload("training"))
    assert type(runner.optimizer) is torch.optim.SGD
    runner.close()
    with pytest.raises(LennaError, match="adagrad"):
        TorchCpuBackend().prepare(_workload("training", "lbfgs"))


def test_torch_vocabulary_maps_to_lenna_ops():
    from lenna_torch.backend import TorchCpuBackend, TorchCudaBackend

    vocabulary = TorchCpuBackend.op_vocabulary
    assert vocabulary is TorchCudaBackend.op_vocabulary
    assert set(vocabulary.values()) <= set(OPS)
    convolutions = ("aten::conv2d", "aten::convolution", "aten::_convolution",
                    "aten::mkldnn_convolution", "ConvolutionBackward0")
    assert {vocabulary[name] for name in convolutions} == {"conv2d"}
    assert vocabulary["aten::hardtanh"] == "relu6" and vocabulary["aten::lstm"] == "lstm"


NEW_OPS = {"silu", "hardsigmoid", "mul", "slice", "channel_shuffle"}


@pytest.mark.parametrize(("backend", "mode", "expected"), [
    ("onnxruntime", "inference", NEW_OPS - {"hardsigmoid"}),  # fused into its convolution
    ("torch-cpu", "inference", NEW_OPS),
    ("torch-cpu", "training", NEW_OPS),
])
def test_profiles_give_the_new_ops_their_time(registry, backend, mode, expected):
    from lenna_core.plugins.registry import unavailable_reason

    cls = registry.get("backend", backend)
    if unavailable_reason(cls):
        pytest.skip(unavailable_reason(cls))
    workload = Workload(Architecture("test", {}, mobile_graph()), batch_size=2, mode=mode)
    runner = cls(threads=1).prepare(workload)
    profile = runner.profile(2)
    runner.close()
    names = [name for name in profile if mode == "inference" or name.endswith("Backward0")]
    assert expected <= {cls.op_vocabulary.get(name) for name in names}


def test_cuda_devices_are_found_from_device_files(monkeypatch, tmp_path):
    devices = _no_cuda_files(monkeypatch, tmp_path)
    assert not devices.has_cuda_device()
    (tmp_path / "gpus").mkdir()
    assert not devices.has_cuda_device()
    (tmp_path / "gpus" / "0000:01:00.0").mkdir()
    assert devices.has_cuda_device()
    (tmp_path / "gpus" / "0000:01:00.0").rmdir()
    (tmp_path / "nvidia0").touch()
    assert devices.has_cuda_device()


def test_torch_cuda_availability_follows_the_device_files(monkeypatch, tmp_path):
    from lenna_core.measurement.host import has_cuda_device
    from lenna_core.plugins.registry import unavailable_reason
    from lenna_torch.backend import TorchCudaBackend

    if not has_cuda_device() and importlib.util.find_spec("torch") is not None:
        assert unavailable_reason(TorchCudaBackend) == "no CUDA device"
    _no_cuda_files(monkeypatch, tmp_path)
    assert TorchCudaBackend.unavailable_reason() == "no CUDA device"
    (tmp_path / "nvidia0").touch()
    assert TorchCudaBackend.unavailable_reason() is None


def test_torch_cuda_without_a_usable_device_is_a_one_line_error():
    torch = pytest.importorskip("torch")
    from lenna_torch.backend import TorchCudaBackend

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    expected = "built without CUDA" if torch.version.cuda is None else "no usable CUDA device"
    for call in (TorchCudaBackend().fingerprint, lambda: TorchCudaBackend().prepare(_workload())):
        with pytest.raises(LennaError, match=expected):
            call()


class _FakeEvent:
    """A CUDA event whose elapsed time is 1.5 ms."""

    def __init__(self, enable_timing: bool) -> None:
        assert enable_timing
        self.recorded = False

    def record(self) -> None:
        self.recorded = True

    def synchronize(self) -> None:
        assert self.recorded

    def elapsed_time(self, end: _FakeEvent) -> float:
        return 1.5


@pytest.mark.parametrize("mode", ["inference", "training"])
def test_torch_cuda_runner_logic_with_cpu_tensors(monkeypatch, mode):
    torch = pytest.importorskip("torch")
    from lenna_torch.backend import TorchCpuBackend, TorchCudaRunner

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: calls.append("synchronize"))
    monkeypatch.setattr(torch.cuda, "Event", _FakeEvent)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 1234)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    prepared = TorchCpuBackend().prepare(_workload(mode))
    runner = TorchCudaRunner(prepared.module, prepared.xs, prepared.optimizer)
    runner.run()
    assert calls == ["synchronize"]
    assert runner.timed_run() == 1_500_000
    assert runner.peak_device_memory() == 1234
    runner.close()
    assert calls == ["synchronize", "empty_cache"] and runner.module is None


def test_torch_cuda_backend_logic_on_the_cpu(monkeypatch):
    """The CUDA backend's prepare and fingerprint with a fake device that is the CPU."""
    torch = pytest.importorskip("torch")
    from lenna_torch.backend import TorchCudaBackend, TorchCudaRunner

    properties = type("Properties", (), {"name": "Fake GPU", "total_memory": 2**30,
                                         "major": 8, "minor": 6})
    calls = []
    monkeypatch.setattr(TorchCudaBackend, "device", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: properties)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: calls.append("reset"))
    fingerprint = TorchCudaBackend().fingerprint()
    assert fingerprint["gpu"] == "Fake GPU" and fingerprint["gpu_memory_bytes"] == 2**30
    assert fingerprint["compute_capability"] == "8.6" and fingerprint["cudnn"] == 90100
    assert "cuda" in fingerprint and "intra_op_threads" in fingerprint
    runner = TorchCudaBackend().prepare(_workload("training", "adam"))
    assert calls == ["reset"] and isinstance(runner, TorchCudaRunner)
    assert type(runner.optimizer) is torch.optim.Adam


@pytest.mark.parametrize("mode", ["inference", "training"])
def test_torch_cuda_backend_runs_on_the_gpu(cuda_torch, mode):
    from lenna_torch.backend import TorchCudaBackend

    backend = TorchCudaBackend()
    fingerprint = backend.fingerprint()
    assert fingerprint["device"] == "cuda:0" and fingerprint["gpu_memory_bytes"] > 0
    runner = backend.prepare(_workload(mode))
    assert runner.xs[0].is_cuda and next(runner.module.parameters()).is_cuda
    runner.run()
    assert runner.timed_run() > 0
    assert runner.peak_device_memory() > 0
    runner.close()


def test_plugins_register_and_import_no_framework():
    from lenna_onnx_file import plugin as onnx_file
    from lenna_onnxruntime import plugin as onnxruntime
    from lenna_torch import plugin as torch_plugin

    assert [c.name for c in onnxruntime.lenna_register_backends()] == [
        "onnxruntime", "onnxruntime-cuda"]
    assert [c.name for c in torch_plugin.lenna_register_backends()] == ["torch-cpu", "torch-cuda"]
    assert [c.name for c in onnx_file.lenna_register_sources()] == ["onnx-file"]
    code = ("import sys, lenna_onnx_file.plugin, lenna_onnxruntime.plugin, lenna_torch.plugin\n"
            "from lenna_core.plugins.registry import unavailable_reason\n"
            "for plugin in (lenna_onnxruntime.plugin, lenna_torch.plugin):\n"
            "    for cls in plugin.lenna_register_backends():\n"
            "        unavailable_reason(cls)\n"
            "print(sorted({'onnx', 'onnxruntime', 'torch'} & set(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "[]"
