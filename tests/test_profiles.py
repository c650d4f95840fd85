"""Per-op profiles of the torch and onnxruntime runners: op names, vocabulary and sums."""

from __future__ import annotations

import tempfile
import time

import numpy as np
import pytest

from lenna_core.ir import Graph, GraphBuilder
from lenna_core.records import Architecture, Workload

PROFILE_RUNS = 10
ATTEMPTS = 3
"""The host's speed drifts; a ratio out of bounds is re-measured before the test fails."""
BOUNDS = (0.5, 1.3)
"""Sum of the per-op times over the end-to-end median of one step."""


def small_cnn() -> Graph:
    """Three conv blocks, a residual add, pools and a classifier on 32x32 images."""
    b = GraphBuilder()
    x = b.input((3, 32, 32))
    x = b.add_node("relu", b.add_node("batchnorm", b.add_node(
        "conv2d", x, out_channels=16, kernel_size=3, padding=1)))
    x = b.add_node("maxpool", x, kernel_size=2)
    y = b.add_node("relu6", b.add_node("conv2d", x, out_channels=16, kernel_size=3, padding=1))
    x = b.add_node("add", x, y)
    x = b.add_node("hardswish", b.add_node("conv2d", x, out_channels=32, kernel_size=3,
                                           stride=2, padding=1))
    x = b.add_node("flatten", b.add_node("global_avgpool", x))
    return b.build(b.add_node("linear", x, out_features=10))


def _workload(mode: str = "inference", optimizer: str | None = None) -> Workload:
    return Workload(Architecture("test", {}, small_cnn()), batch_size=4, mode=mode,
                    optimizer=optimizer)


def end_to_end_ns(runner, runs: int = 20) -> float:
    """Median of ``runs`` perf_counter_ns timings of ``run()``."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        runner.run()
        samples.append(time.perf_counter_ns() - start)
    return float(np.median(samples))


def profile_ratio(runner) -> tuple[dict[str, float], float]:
    """The profile and its sum over the end-to-end time, retried while out of bounds."""
    for _ in range(ATTEMPTS):
        runner.run()
        reference = end_to_end_ns(runner)
        ops = runner.profile(PROFILE_RUNS)
        ratio = sum(ops.values()) / reference
        if BOUNDS[0] <= ratio <= BOUNDS[1]:
            break
    return ops, ratio


def test_torch_profile_counts_each_op_once():
    pytest.importorskip("torch")
    from lenna_torch.backend import TorchCpuBackend

    runner = TorchCpuBackend(threads=1).prepare(_workload())
    try:
        ops, ratio = profile_ratio(runner)
    finally:
        runner.close()
    vocabulary = TorchCpuBackend.op_vocabulary
    assert vocabulary["aten::conv2d"] == "conv2d" and "aten::conv2d" in ops
    assert not {"aten::convolution", "aten::mkldnn_convolution"} & set(ops)  # children
    assert {vocabulary[name] for name in ops} >= {"conv2d", "batchnorm", "relu", "relu6",
                                                  "hardswish", "maxpool", "add",
                                                  "global_avgpool", "flatten", "linear"}
    assert BOUNDS[0] <= ratio <= BOUNDS[1], f"profile sum / end-to-end = {ratio:.2f}"


def test_torch_training_profile_names_backward_and_optimizer_ops():
    pytest.importorskip("torch")
    from lenna_torch.backend import TorchCpuBackend

    runner = TorchCpuBackend(threads=1).prepare(_workload("training", "adam"))
    try:
        ops = runner.profile(3)
    finally:
        runner.close()
    vocabulary = TorchCpuBackend.op_vocabulary
    assert vocabulary["ConvolutionBackward0"] == "conv2d" and "ConvolutionBackward0" in ops
    assert "lenna::loss" in ops and "aten::mean" not in ops
    assert any(name.startswith("Optimizer.step") for name in ops)
    assert all(ns > 0 for ns in ops.values())


def test_onnxruntime_profile_sums_to_the_step_and_deletes_its_trace(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    from lenna_onnxruntime.backend import OnnxRuntimeBackend

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    runner = OnnxRuntimeBackend(threads=1).prepare(_workload())
    try:
        ops, ratio = profile_ratio(runner)
    finally:
        runner.close()
    assert list(tmp_path.iterdir()) == []
    vocabulary = OnnxRuntimeBackend.op_vocabulary
    assert vocabulary["Conv"] == "conv2d" and "Conv" in ops
    assert {"conv2d", "maxpool", "add", "global_avgpool", "linear"} <= {
        vocabulary.get(name, "other") for name in ops}
    assert BOUNDS[0] <= ratio <= BOUNDS[1], f"profile sum / end-to-end = {ratio:.2f}"


def test_onnxruntime_trace_parsing_skips_the_warm_up_and_takes_medians():
    from lenna_onnxruntime.backend import kernel_times

    def node(ts: int, dur: int, op: str) -> dict:
        return {"cat": "Node", "name": f"n{ts}_kernel_time", "ts": ts, "dur": dur,
                "args": {"op_name": op}}

    events = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
        node(10, 90, "Conv"),
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 50},
        node(210, 30, "Conv"), node(241, 5, "Relu"),
        {"cat": "Node", "name": "n241_fence_before", "ts": 240, "dur": 1},
        {"cat": "Session", "name": "model_run", "ts": 300, "dur": 50},
        node(310, 34, "Conv"), node(341, 7, "Relu"),
        {"cat": "Session", "name": "model_run", "ts": 400, "dur": 4000},
        node(410, 3990, "Conv"),
    ]
    assert kernel_times(events) == {"Conv": 34_000.0, "Relu": 5_000.0}


def test_torch_cuda_profile_counts_device_time():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from lenna_torch.backend import TorchCudaBackend

    runner = TorchCudaBackend().prepare(_workload())
    try:
        ops, ratio = profile_ratio(runner)
    finally:
        runner.close()
    assert "aten::conv2d" in ops
    assert BOUNDS[0] <= ratio <= BOUNDS[1], f"profile sum / end-to-end = {ratio:.2f}"
