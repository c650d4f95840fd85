"""Kernel splitting: fusion rules, standalone kernel graphs and kernel features."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_lenna

from lenna_core.ir import Graph, GraphBuilder, init_weights
from lenna_core.ir.kernels import kernel_graph, split_kernels
from lenna_core.plugins.registry import unavailable_reason
from lenna_core.records import Architecture, Workload
from lenna_kernels.featurizer import KernelsFeaturizer
from lenna_resnet.source import ResNetFamilySource


def block():
    b = GraphBuilder()
    x = b.input((8, 16, 16))
    y = b.add_node("conv2d", x, out_channels=8, kernel_size=3, padding=1)
    y = b.add_node("batchnorm", y)
    y = b.add_node("relu", y)
    z = b.add_node("conv2d", y, out_channels=8, kernel_size=3, padding=1)
    z = b.add_node("batchnorm", z)
    s = b.add_node("add", z, x)
    s = b.add_node("relu", s)
    p = b.add_node("global_avgpool", s)
    f = b.add_node("flatten", p)
    return b.build(b.add_node("linear", f, out_features=4))


def test_fusion_groups_conv_batchnorm_activation():
    kinds = [k.kind for k in split_kernels(block(), fuse=True)]
    assert kinds == ["conv2d+batchnorm+relu", "conv2d+batchnorm", "add", "relu",
                     "global_avgpool", "linear"]
    eager = [k.kind for k in split_kernels(block(), fuse=False)]
    assert eager == ["conv2d", "batchnorm", "relu", "conv2d", "batchnorm", "add", "relu",
                     "global_avgpool", "linear"]


def test_a_branching_output_is_not_fused():
    b = GraphBuilder()
    x = b.input((4, 8, 8))
    c = b.add_node("conv2d", x, out_channels=4, kernel_size=1)
    r = b.add_node("relu", c)
    graph = b.build(b.add_node("add", c, r))
    assert [k.kind for k in split_kernels(graph)] == ["conv2d", "relu", "add"]


def test_silu_and_hardsigmoid_fuse_and_new_ops_are_kernels_of_their_own():
    b = GraphBuilder()
    x = b.input((8, 6, 6))
    x = b.add_node("silu", b.add_node("batchnorm", b.add_node("conv2d", x, out_channels=8,
                                                               kernel_size=3, padding=1)))
    gate = b.add_node("conv2d", b.add_node("global_avgpool", x), out_channels=8, kernel_size=1)
    x = b.add_node("mul", x, b.add_node("hardsigmoid", gate))
    x = b.add_node("channel_shuffle", b.add_node("slice", x, start=2, end=8), groups=2)
    graph = b.build(b.add_node("silu", b.add_node("linear", b.add_node("flatten", x),
                                                   out_features=4)))
    assert [k.kind for k in split_kernels(graph)] == [
        "conv2d+batchnorm+silu", "global_avgpool", "conv2d+hardsigmoid", "mul", "slice",
        "channel_shuffle", "linear+silu"]
    values = KernelsFeaturizer().featurize(Workload(Architecture("test", {}, graph)))
    assert values["other.count"] == 1  # linear+silu
    for kind in ("conv2d+batchnorm+silu", "conv2d+hardsigmoid", "mul", "slice",
                 "channel_shuffle"):
        assert values[f"{kind}.count"] == 1
    assert values["mul.input_elements"] == 8 * 6 * 6 + 8
    assert values["conv2d+hardsigmoid.macs"] == 64


def test_kernel_graphs_stand_alone_and_compute_the_same():
    onnx_convert = __import__("lenna_onnxruntime.convert", fromlist=["run_onnx"])
    graph = block()
    kernel = split_kernels(graph)[0]
    sub = kernel_graph(graph, kernel)
    assert sub.input_shape == (8, 16, 16) and sub.shapes[kernel.nodes[-1]] == (8, 16, 16)
    x = np.random.default_rng(0).standard_normal((1, 8, 16, 16), dtype=np.float32)
    (out,) = onnx_convert.run_onnx(sub, init_weights(sub), x)
    assert out.shape == (1, 8, 16, 16) and (out >= 0).all()


def test_kernels_featurizer_has_a_stable_key_set_and_scales_with_batch():
    resnet = ResNetFamilySource(input_size=64).sample(np.random.default_rng(0))
    small = Architecture("test", {}, block())
    a = KernelsFeaturizer().featurize(Workload(resnet, batch_size=1))
    b = KernelsFeaturizer().featurize(Workload(resnet, batch_size=4))
    c = KernelsFeaturizer().featurize(Workload(small))
    assert set(a) == set(b) == set(c)
    assert a["conv2d+batchnorm+relu.count"] > 0
    assert b["conv2d+batchnorm+relu.macs"] == 4 * a["conv2d+batchnorm+relu.macs"]
    assert c["kernels"] == 6


def _outputs_on(backend: str, graph: Graph, xs: list[np.ndarray]) -> np.ndarray:
    """The graph's one output on the inputs ``xs``, from ``backend``'s converter."""
    weights = init_weights(graph, seed=0)
    if backend == "onnxruntime":
        import onnxruntime as ort

        from lenna_onnxruntime.convert import graph_to_onnx

        model = graph_to_onnx(graph, weights, batch_size=len(xs[0]))
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        feed = {node.name: x for node, x in zip(graph.inputs, xs, strict=True)}
        return session.run(None, feed)[0]
    if backend == "torch-cpu":
        import torch

        from lenna_torch.convert import graph_to_module

        with torch.inference_mode():
            return graph_to_module(graph, weights)(*map(torch.from_numpy, xs)).numpy()
    from lenna_tensorflow.convert import from_model_layout, graph_to_keras, to_model_layout

    model = graph_to_keras(graph, weights)
    return from_model_layout(model([to_model_layout(x) for x in xs], training=False).numpy())


def test_multi_input_kernels_run_on_every_backend(registry):
    b = GraphBuilder()
    x = b.input((4, 8, 8))
    y = b.add_node("conv2d", x, out_channels=6, kernel_size=1)
    graph = b.build(b.add_node("concat", x, y))
    (kernel,) = [k for k in split_kernels(graph) if k.kind == "concat"]
    sub = kernel_graph(graph, kernel)
    workload = Workload(Architecture("kernel", {}, sub), batch_size=2)
    assert workload.input_shapes == ((2, 4, 8, 8), (2, 6, 8, 8))
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(shape, dtype=np.float32) for shape in workload.input_shapes]
    for name in ("onnxruntime", "torch-cpu", "tensorflow"):
        cls = registry.get("backend", name)
        if unavailable_reason(cls):
            continue
        runner = cls(threads=1).prepare(workload)
        runner.run()
        runner.close()
        # each input in its place: the concatenation of the two, value for value
        assert np.array_equal(_outputs_on(name, sub, xs), np.concatenate(xs, axis=1)), name


@pytest.mark.slow
def test_kernels_command_lists_and_measures():
    listed = run_lenna("kernels", "--seed", "3", "--json")
    assert listed.returncode == 0, listed.stderr
    kinds = [row["kind"] for row in json.loads(listed.stdout)["kernels"]]
    assert kinds[0] == "conv2d+batchnorm+relu" and "add" in kinds
    eager = json.loads(run_lenna("kernels", "--seed", "3", "--backend", "torch-cpu",
                                 "--json").stdout)["kernels"]
    assert len(eager) > len(kinds)
    measured = run_lenna("kernels", "--seed", "3", "--measure", "--threads", "1",
                         "--protocol", "fixed:10", "--json", "-O", "input_size=32")
    assert measured.returncode == 0, measured.stderr
    report = json.loads(measured.stdout)
    assert all(row["latency_ms"] > 0 for row in report["kernels"])
    assert 0.2 < report["sum_over_end_to_end"] < 5
