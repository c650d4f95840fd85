"""The onnxruntime and torch-cpu backends, their converters and the onnx-file importer."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from lenna_core.errors import LennaError
from lenna_core.ir import OPS, Graph, GraphBuilder, init_weights
from lenna_core.records import Architecture, Workload


def cnn_graph() -> Graph:
    """A small CNN using every image op, with groups, dilation, strides and pool padding."""
    b = GraphBuilder()
    x = b.input((4, 13, 13))
    conv = b.add_node("conv2d", x, out_channels=8, kernel_size=3, stride=2, padding=2,
                      dilation=2, groups=2, bias=True)
    bn = b.add_node("batchnorm", conv)
    act = b.add_node("hardswish", b.add_node("relu6", b.add_node("relu", bn)))
    gate = b.add_node("sigmoid", conv)
    gelu = b.add_node("identity", b.add_node("gelu", conv))
    summed = b.add_node("add", b.add_node("add", act, gate, gelu), gate)
    pools = [
        b.add_node("maxpool", summed, kernel_size=3, stride=2, padding=1, ceil_mode=True),
        b.add_node("avgpool", summed, kernel_size=3, stride=2, padding=1,
                   count_include_pad=True, ceil_mode=True),
        b.add_node("avgpool", summed, kernel_size=3, stride=2, padding=1),
        b.add_node("zero", summed, stride=2),
    ]
    cat = b.add_node("concat", *pools)
    flat = b.add_node("flatten", b.add_node("global_avgpool", cat))
    hidden = b.add_node("linear", b.add_node("batchnorm", flat), out_features=6)
    return b.build(b.add_node("linear", hidden, out_features=3, bias=False), cat)


def lstm_graph() -> Graph:
    """Stacked LSTMs, a zero, an add along time and a concat on the feature axis."""
    b = GraphBuilder()
    x = b.input((5, 6))
    seq = b.add_node("lstm", x, hidden_size=4, num_layers=2)
    seq = b.add_node("lstm", seq, hidden_size=3)
    both = b.add_node("concat", seq, b.add_node("add", seq, b.add_node("zero", seq)), axis=1)
    return b.build(b.add_node("linear", b.add_node("flatten", both), out_features=2))


def dropped_window_graph() -> Graph:
    """Ceil-mode pools whose last window would start in the padding, so they drop it."""
    b = GraphBuilder()
    x = b.input((2, 7, 9))
    pools = [b.add_node(op, x, kernel_size=2, padding=1, ceil_mode=True)
             for op in ("maxpool", "avgpool")]
    pools.append(b.add_node("avgpool", x, kernel_size=2, padding=1, count_include_pad=True))
    return b.build(b.add_node("concat", *pools))


GRAPHS = {"cnn": cnn_graph, "lstm": lstm_graph, "dropped-window": dropped_window_graph}


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


def test_onnx_model_is_valid_and_loadable_by_old_runtimes():
    onnx = pytest.importorskip("onnx")
    from lenna_onnxruntime.convert import IR_VERSION, graph_to_onnx

    model = graph_to_onnx(cnn_graph(), init_weights(cnn_graph()), batch_size=3)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == IR_VERSION <= 10
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3


@pytest.mark.parametrize("kind", ["cnn", "lstm"])
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


def _workload(mode: str = "inference") -> Workload:
    return Workload(Architecture("test", {}, cnn_graph()), batch_size=2, mode=mode)


def test_onnxruntime_backend_runs_inference_only():
    pytest.importorskip("onnxruntime")
    from lenna_onnxruntime.backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(threads=1)
    assert backend.fingerprint()["execution_provider"] == "CPUExecutionProvider"
    assert backend.fingerprint()["intra_op_num_threads"] == 1
    runner = backend.prepare(_workload())
    runner.run()
    runner.close()
    with pytest.raises(LennaError, match="inference only"):
        backend.prepare(_workload("training"))


def test_onnxruntime_backend_uses_external_data_for_big_models(monkeypatch):
    pytest.importorskip("onnxruntime")
    from lenna_onnxruntime import backend as module

    monkeypatch.setattr(module, "EXTERNAL_DATA_BYTES", 0)
    runner = module.OnnxRuntimeBackend().prepare(_workload())
    runner.run()
    runner.close()


@pytest.mark.parametrize("mode", ["inference", "training"])
def test_torch_backend_runs(mode):
    pytest.importorskip("torch")
    from lenna_torch.backend import TorchCpuBackend

    backend = TorchCpuBackend()
    assert backend.fingerprint()["device"] == "cpu"
    runner = backend.prepare(_workload(mode))
    runner.run()
    runner.close()


def test_plugins_register_and_import_no_framework():
    from lenna_onnx_file import plugin as onnx_file
    from lenna_onnxruntime import plugin as onnxruntime
    from lenna_torch import plugin as torch_plugin

    assert [c.name for c in onnxruntime.lenna_register_backends()] == ["onnxruntime"]
    assert [c.name for c in torch_plugin.lenna_register_backends()] == ["torch-cpu"]
    assert [c.name for c in onnx_file.lenna_register_sources()] == ["onnx-file"]
    code = ("import sys, lenna_onnx_file.plugin, lenna_onnxruntime.plugin, lenna_torch.plugin; "
            "print(sorted({'onnx', 'onnxruntime', 'torch'} & set(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "[]"
