"""The ``onnxruntime`` backend: inference with ONNX Runtime's CPU execution provider."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lenna_core.errors import LennaError
from lenna_core.ir import init_weights
from lenna_core.records import Workload
from lenna_onnxruntime.convert import EXTERNAL_DATA_BYTES, graph_to_onnx, initializer_bytes

PROVIDER = "CPUExecutionProvider"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class OnnxRuntimeRunner:
    """One prepared session and its input; ``run`` is one ``session.run``."""

    def __init__(self, session: Any, feed: dict[str, np.ndarray],
                 tmpdir: tempfile.TemporaryDirectory[str] | None = None) -> None:
        self._session = session
        self._feed = feed
        self._tmpdir = tmpdir

    def run(self) -> None:
        try:
            self._session.run(None, self._feed)
        except RuntimeError as exc:
            raise LennaError(f"onnxruntime failed to run the model: {_one_line(exc)}") from None

    def close(self) -> None:
        """Release the session and any external-data files."""
        self._session = None
        self._feed = {}
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None


class OnnxRuntimeBackend:
    """ONNX Runtime on CPU, inference only; ``threads`` sets the intra-op thread count."""

    name: ClassVar[str] = "onnxruntime"
    requires: ClassVar[tuple[str, ...]] = ("onnx", "onnxruntime")
    extra: ClassVar[str] = "onnxruntime"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def fingerprint(self) -> dict[str, Any]:
        """Library versions, the execution provider and the thread settings."""
        import onnx
        import onnxruntime

        return {
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "execution_provider": PROVIDER,
            "intra_op_num_threads": self.threads,
            "allow_spinning": False,
        }

    def _session_options(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 4  # failures are reported as LennaError instead
        return options

    def prepare(self, workload: Workload) -> OnnxRuntimeRunner:
        """Build the ONNX model (weights seed 0), its session and a random input."""
        import onnx
        import onnxruntime as ort

        if workload.mode != "inference":
            raise LennaError(
                f"the {self.name} backend supports inference only, not {workload.mode!r} mode"
            )
        if workload.dtype != "float32":
            raise LennaError(f"the {self.name} backend supports float32 only, "
                             f"not {workload.dtype!r}")
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
                source: Any = str(path)
            else:
                source = model.SerializeToString()
            session = ort.InferenceSession(source, self._session_options(), providers=[PROVIDER])
        except Exception as exc:
            if tmpdir is not None:
                tmpdir.cleanup()
            raise LennaError(
                f"onnxruntime could not load architecture {workload.architecture.id}: "
                f"{_one_line(exc)}"
            ) from None
        x = np.random.default_rng(0).standard_normal(workload.input_shape, dtype=np.float32)
        return OnnxRuntimeRunner(session, {graph.inputs[0].name: x}, tmpdir)
