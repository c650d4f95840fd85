"""The ``onnxruntime`` and ``onnxruntime-cuda`` backends: inference with ONNX Runtime."""

from __future__ import annotations

import bisect
import functools
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import (
    LennaError,
    Workload,
    check_workload,
    first_line,
    has_cuda_device,
    init_weights,
)
from lenna_onnxruntime.convert import EXTERNAL_DATA_BYTES, graph_to_onnx, initializer_bytes

_VOCABULARY = {
    "conv2d": ("Conv", "FusedConv"),
    "batchnorm": ("BatchNormalization",),
    "relu": ("Relu",),
    "relu6": ("Clip",),
    "hardswish": ("HardSwish",),
    "hardsigmoid": ("HardSigmoid",),
    "sigmoid": ("Sigmoid",),
    # silu is written as x * Sigmoid(x), which ONNX Runtime fuses into QuickGelu.
    "silu": ("QuickGelu",),
    # Gelu is fused at the default optimisation level; unfused, Erf and Div remain gelu's own.
    "gelu": ("Gelu", "BiasGelu", "FastGelu", "Erf", "Div"),
    "identity": ("Identity",),
    "maxpool": ("MaxPool",),
    "avgpool": ("AveragePool",),
    "global_avgpool": ("GlobalAveragePool", "ReduceMean"),
    "add": ("Add", "Sum"),
    # zero (Mul by 0, strided with a Slice) and unfused gelu count as mul and slice.
    "mul": ("Mul",),
    "concat": ("Concat",),
    "slice": ("Slice", "Split"),  # ONNX Runtime merges slices of one tensor into a Split
    # The reshapes of a channel shuffle count as flatten; LSTM's layout Transposes count here.
    "channel_shuffle": ("Transpose",),
    "linear": ("Gemm", "FusedGemm", "MatMul", "FusedMatMul"),
    "flatten": ("Flatten", "Reshape"),
    "lstm": ("LSTM", "Squeeze"),
}


def kernel_times(events: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Median ns per run of each op type in an ONNX Runtime trace; the first run is a warm-up.

    The median over runs, not the mean: one preempted kernel would dominate a mean.
    """
    events = list(events)
    starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")[1:]
    per_run: dict[str, np.ndarray] = {}
    for event in events:
        if (event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time")
                and starts and event["ts"] >= starts[0]):
            op = event.get("args", {}).get("op_name", "other")
            run = bisect.bisect_right(starts, event["ts"]) - 1
            per_run.setdefault(op, np.zeros(len(starts)))[run] += event["dur"]
    return {op: float(np.median(us)) * 1000 for op, us in per_run.items()}


class OnnxRuntimeRunner:
    """One prepared session and its input; ``run`` is one (synchronous) ``session.run``."""

    def __init__(self, session: Any, feed: dict[str, np.ndarray],
                 make_session: Callable[[str | None], Any],
                 tmpdir: tempfile.TemporaryDirectory[str] | None = None) -> None:
        self._session = session
        self._feed = feed
        self._make_session = make_session
        self._tmpdir = tmpdir

    def run(self) -> None:
        try:
            self._session.run(None, self._feed)
        except RuntimeError as exc:
            raise LennaError(f"onnxruntime failed to run the model: {first_line(exc)}") from None

    def profile(self, runs: int) -> dict[str, float]:
        """Median ns per run of each op type, from a separate profiling session's trace."""
        with tempfile.TemporaryDirectory(prefix="lenna-ort-profile-") as tmp:
            session = self._make_session(str(Path(tmp) / "profile"))
            for _ in range(runs + 1):
                session.run(None, self._feed)
            events = json.loads(Path(session.end_profiling()).read_text())
        return kernel_times(events)

    def close(self) -> None:
        """Release the sessions and any external-data files."""
        self._session = self._make_session = None
        self._feed = {}
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None


class OnnxRuntimeBackend:
    """ONNX Runtime on CPU, inference only; ``threads`` sets the intra-op thread count."""

    name: ClassVar[str] = "onnxruntime"
    provider: ClassVar[str] = "CPUExecutionProvider"
    requires: ClassVar[tuple[str, ...]] = ("onnx", "onnxruntime")
    extra: ClassVar[str] = "onnxruntime"
    modes: ClassVar[tuple[str, ...]] = ("inference",)
    op_vocabulary: ClassVar[dict[str, str]] = {
        name: op for op, names in _VOCABULARY.items() for name in names}

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def _onnxruntime(self) -> Any:
        """Import onnxruntime; subclasses check their execution provider here."""
        import onnxruntime

        return onnxruntime

    def fingerprint(self) -> dict[str, Any]:
        """Library versions, the execution provider and the thread settings.

        Without ``threads`` ONNX Runtime uses one intra-op thread per physical core; the
        fingerprint then says ``"default"`` with the CPU counts that decide it.
        """
        import onnx

        ort = self._onnxruntime()
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        return {
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "execution_provider": self.provider,
            "intra_op_threads": self.threads if self.threads is not None else "default",
            "cpu_count": os.cpu_count(),
            "cpu_affinity": len(affinity) if affinity is not None else None,
            "allow_spinning": False,
        }

    def _session(self, source: bytes | str, profile_prefix: str | None = None) -> Any:
        """A session on this backend's provider; with a prefix it writes a profile trace."""
        ort = self._onnxruntime()
        options = ort.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 4  # failures are reported as LennaError instead
        if profile_prefix is not None:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        session = ort.InferenceSession(source, options, providers=[self.provider])
        if session.get_providers()[0] != self.provider:
            raise LennaError(f"onnxruntime fell back to {session.get_providers()[0]} instead "
                             f"of {self.provider}")
        return session

    def prepare(self, workload: Workload) -> OnnxRuntimeRunner:
        """Build the ONNX model (weights seed 0), its session and a random input."""
        import onnx

        self._onnxruntime()
        check_workload(type(self), workload)
        graph = workload.architecture.graph
        model = graph_to_onnx(graph, init_weights(graph, seed=0), workload.batch_size)
        tmpdir = None
        try:
            if initializer_bytes(model) > EXTERNAL_DATA_BYTES:
                tmpdir = tempfile.TemporaryDirectory(prefix="lenna-onnx-")
                path = Path(tmpdir.name) / "model.onnx"
                onnx.save_model(model, path, save_as_external_data=True,
                                all_tensors_to_one_file=True, location="model.onnx.data")
                del model
                source: bytes | str = str(path)
            else:
                source = model.SerializeToString()
            session = self._session(source)
        except Exception as exc:
            if tmpdir is not None:
                tmpdir.cleanup()
            raise LennaError(
                f"onnxruntime could not load architecture {workload.architecture.id}: "
                f"{first_line(exc)}"
            ) from None
        rng = np.random.default_rng(0)
        feed = {node.name: rng.standard_normal(shape, dtype=np.float32)
                for node, shape in zip(graph.inputs, workload.input_shapes, strict=True)}
        return OnnxRuntimeRunner(session, feed,
                                 functools.partial(self._session, source), tmpdir)


class OnnxRuntimeCudaBackend(OnnxRuntimeBackend):
    """ONNX Runtime's CUDA execution provider on the first GPU (needs ``onnxruntime-gpu``).

    A step is one ``session.run``: it copies the input to the device and the outputs back.
    """

    name: ClassVar[str] = "onnxruntime-cuda"
    provider: ClassVar[str] = "CUDAExecutionProvider"

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why the CUDA provider cannot run here, checked without importing onnxruntime."""
        try:
            importlib.metadata.distribution("onnxruntime-gpu")
        except importlib.metadata.PackageNotFoundError:
            return "onnxruntime-gpu is not installed: pip install onnxruntime-gpu"
        return None if has_cuda_device() else "no CUDA device"

    def _onnxruntime(self) -> Any:
        ort = super()._onnxruntime()
        if self.provider not in ort.get_available_providers():
            raise LennaError(f"onnxruntime {ort.__version__} has no {self.provider}; "
                             "install onnxruntime-gpu in place of onnxruntime")
        return ort
