"""The tensorflow backend: outputs equal torch's and ONNX Runtime's, training, profiling."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import GRAPHS, mobile_graph

from lenna_core.errors import LennaError
from lenna_core.ir import OPS, Graph, GraphBuilder, init_weights
from lenna_core.records import Architecture, Workload


@pytest.fixture(scope="module")
def tf():
    """TensorFlow, imported once for the whole file (it takes seconds), as the backend does."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    from lenna_tensorflow.convert import import_tensorflow

    return import_tensorflow()


def depthwise_graph() -> Graph:
    """Depthwise convolutions (plain, with a multiplier, unequal strides, dilation), a
    grouped dilated convolution, and pools of rectangular windows in ceil mode."""
    b = GraphBuilder()
    x = b.input((6, 11, 12))
    x = b.add_node("conv2d", x, out_channels=12, kernel_size=3, stride=2, padding=2,
                   dilation=2, groups=6, bias=True)
    x = b.add_node("conv2d", x, out_channels=12, kernel_size=(3, 5), stride=(1, 2),
                   padding=(1, 2), groups=12)
    x = b.add_node("conv2d", x, out_channels=24, kernel_size=3, padding=1, groups=12)
    x = b.add_node("conv2d", x, out_channels=24, kernel_size=3, stride=2, padding=2,
                   dilation=2, groups=24)
    return b.build(
        b.add_node("maxpool", x, kernel_size=3, stride=2, padding=1, ceil_mode=True),
        b.add_node("avgpool", x, kernel_size=(2, 3), stride=2, padding=1, ceil_mode=True),
    )


def small_cnn() -> Graph:
    """A small image classifier whose time is mostly convolutions."""
    b = GraphBuilder()
    x = b.input((3, 32, 32))
    for channels, stride in ((32, 1), (64, 2), (64, 1)):
        x = b.add_node("relu", b.add_node("batchnorm", b.add_node(
            "conv2d", x, out_channels=channels, kernel_size=3, stride=stride, padding=1)))
    x = b.add_node("maxpool", x, kernel_size=2)
    x = b.add_node("flatten", b.add_node("global_avgpool", x))
    return b.build(b.add_node("linear", x, out_features=10))


def bidirectional_lstm_graph() -> Graph:
    """A bidirectional two-layer LSTM regressing one value from every step."""
    b = GraphBuilder()
    x = b.add_node("lstm", b.input((5, 6)), hidden_size=4, num_layers=2, bidirectional=True)
    return b.build(b.add_node("linear", b.add_node("flatten", x), out_features=1))


ALL_GRAPHS = {**GRAPHS, "depthwise": depthwise_graph,
              "bidirectional-lstm": bidirectional_lstm_graph}


def _workload(graph: Graph, mode: str = "inference", optimizer: str | None = None,
              batch_size: int = 2) -> Workload:
    return Workload(Architecture("test", {}, graph), batch_size=batch_size, mode=mode,
                    optimizer=optimizer)


def test_the_graphs_cover_every_op():
    assert {node.op for make in ALL_GRAPHS.values() for node in make().nodes} == set(OPS)


@pytest.mark.parametrize("kind", sorted(ALL_GRAPHS))
def test_tensorflow_agrees_with_torch_and_onnxruntime(tf, kind):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from lenna_onnxruntime.convert import run_onnx
    from lenna_tensorflow.convert import run_tensorflow
    from lenna_torch.convert import run_torch

    graph = ALL_GRAPHS[kind]()
    weights = init_weights(graph, seed=0)
    x = np.random.default_rng(1).standard_normal((2, *graph.input_shape), dtype=np.float32)
    results = zip(graph.outputs, run_tensorflow(graph, weights, x), run_torch(graph, weights, x),
                  run_onnx(graph, weights, x), strict=True)
    for name, ours, torch_out, onnx_out in results:
        assert ours.shape == (2, *graph.shapes[name])
        assert np.allclose(ours, torch_out, rtol=1e-4, atol=1e-4), name
        assert np.allclose(ours, onnx_out, rtol=1e-4, atol=1e-4), name


def _values(variables) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in variables]


@pytest.mark.parametrize(("kind", "optimizer"), [
    *(("cnn", name) for name in ("sgd", "adam", "adamw", "rmsprop", "adagrad")),
    ("lstm", "adam"), ("bidirectional-lstm", "adam"), ("depthwise", None), ("mobile", "adam"),
])
def test_a_training_step_changes_the_weights(tf, kind, optimizer):
    from lenna_tensorflow.backend import TensorFlowBackend

    assert TensorFlowBackend.optimizers[0] == "sgd"
    runner = TensorFlowBackend().prepare(_workload(ALL_GRAPHS[kind](), "training", optimizer))
    # Not every variable: a batchnorm scale before only linear ops has a zero gradient.
    kernels = [v for v in runner.model.trainable_variables if v.path.endswith("kernel")]
    statistics = [v for v in runner.model.non_trainable_variables if "moving" in v.path]
    before = _values(kernels + statistics)
    runner.run()
    after = _values(kernels + statistics)
    assert kernels and all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    runner.close()


def test_training_checks_its_workload(tf):
    from lenna_tensorflow.backend import TensorFlowBackend

    backend = TensorFlowBackend()
    with pytest.raises(LennaError, match="no trainable parameters"):
        backend.prepare(_workload(GRAPHS["dropped-window"](), "training"))
    with pytest.raises(LennaError, match="has no optimizer 'lbfgs'"):
        backend.prepare(_workload(small_cnn(), "training", "lbfgs"))
    with pytest.raises(LennaError, match="float32 only"):
        backend.prepare(Workload(Architecture("t", {}, small_cnn()), dtype="float16"))


def test_profile_times_ops_and_sums_near_the_step_time(tf):
    from lenna_tensorflow.backend import TensorFlowBackend

    runner = TensorFlowBackend().prepare(_workload(small_cnn(), batch_size=8))
    for _ in range(5):
        runner.run()
    samples = []
    for _ in range(30):
        start = time.perf_counter_ns()
        runner.run()
        samples.append(time.perf_counter_ns() - start)
    profile = runner.profile(3)
    assert profile and all(ns > 0 for ns in profile.values())
    lenna_ops = {TensorFlowBackend.op_vocabulary.get(name, "other") for name in profile}
    assert "conv2d" in lenna_ops
    ratio = sum(profile.values()) / float(np.median(samples))
    assert 1 / 3 < ratio < 3, (ratio, profile)
    assert runner.peak_device_memory() is None  # CPU
    runner.close()


def test_profile_gives_the_new_ops_their_time(tf):
    from lenna_tensorflow.backend import TensorFlowBackend, _onednn_enabled

    runner = TensorFlowBackend(threads=1).prepare(_workload(mobile_graph()))
    profile = runner.profile(2)
    runner.close()
    lenna_ops = {TensorFlowBackend.op_vocabulary.get(name) for name in profile}
    # oneDNN fuses x * sigmoid(x) into one kernel; without it silu is a Sigmoid and a Mul.
    expected = {"mul", "slice", "channel_shuffle"} | ({"silu"} if _onednn_enabled() else set())
    assert expected <= lenna_ops


def test_runtime_errors_are_one_line(tf):
    from lenna_tensorflow.backend import TensorFlowRunner

    @tf.function(autograph=False)
    def out_of_range(x):
        return tf.gather(x, [10])

    with pytest.raises(LennaError) as info:
        TensorFlowRunner(out_of_range, tf.ones(3), "/CPU:0").run()
    assert str(info.value) == "tensorflow failed to run the model: indices[0] = 10 is not in [0, 3)"


@pytest.mark.slow
def test_registered_and_fingerprinted_without_importing_tensorflow_early(tf):
    from lenna_core.plugins.registry import make_registry
    from lenna_tensorflow import plugin

    registry = make_registry({"tf": plugin}, use_entry_points=False)
    assert registry.get("backend", "tensorflow").extra == "tensorflow"
    code = (
        "import json, sys, lenna_tensorflow.plugin as p\n"
        "imported = 'tensorflow' in sys.modules\n"
        "backend = p.lenna_register_backends()[0](threads=1)\n"
        "print(json.dumps({'imported': imported, **backend.fingerprint()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    fingerprint = json.loads(out.stdout.strip().splitlines()[-1])
    assert fingerprint.pop("imported") is False
    assert fingerprint["tensorflow"] == tf.__version__
    assert fingerprint["device"]  # "cpu" or the GPU's name
    assert (fingerprint["intra_op_threads"], fingerprint["inter_op_threads"]) == (1, 1)
