"""The ``tensorflow`` backend: a Keras model run by a ``tf.function`` step on CPU or GPU 0."""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import LennaError, Workload, check_workload, init_weights
from lenna_tensorflow.convert import graph_to_keras, import_tensorflow, to_model_layout

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
"""Optimizers of a training step (learning rate 1e-3); ``None`` means sgd."""
LEARNING_RATE = 1e-3

_BASE_VOCABULARY = {
    "conv2d": ("Conv2D", "DepthwiseConv2dNative", "_FusedConv2D", "_FusedDepthwiseConv2dNative",
               "_PadWithConv2D", "_PadWithFusedConv2D", "Conv2DBackpropInput",
               "Conv2DBackpropFilter", "Conv2DBackpropFilterWithBias",
               "DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter"),
    "batchnorm": ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "_FusedBatchNormEx",
                  "FusedBatchNormGrad", "FusedBatchNormGradV2", "FusedBatchNormGradV3"),
    "relu": ("Relu", "ReluGrad"),
    "relu6": ("Relu6", "Relu6Grad"),
    "sigmoid": ("Sigmoid", "SigmoidGrad"),
    "silu": ("_MklSwish",),  # oneDNN's fusion of x * sigmoid(x); unfused, sigmoid and mul
    "gelu": ("Erf", "Erfc"),
    "identity": ("Identity",),
    "maxpool": ("MaxPool", "MaxPoolV2", "MaxPoolGrad", "MaxPoolGradV2"),
    "avgpool": ("AvgPool", "AvgPoolGrad"),
    "global_avgpool": ("Mean",),
    "add": ("Add", "AddV2", "AddN"),
    # hardswish's and hardsigmoid's relu6(x + 3) / 6 count as add, relu6 and mul.
    "mul": ("Mul",),
    "concat": ("ConcatV2", "ConcatOffset"),
    "slice": ("StridedSlice", "StridedSliceGrad"),
    # flatten's NHWC -> NCHW transpose counts here too.
    "channel_shuffle": ("Transpose",),
    "linear": ("MatMul", "_FusedMatMul", "BiasAdd", "BiasAddGrad"),
    "flatten": ("Reshape",),
    # Keras's LSTM: its gates and the while loop over time (its MatMuls count as linear);
    # a bidirectional one reverses its sequences with ReverseV2.
    "lstm": ("Tanh", "TanhGrad", "Split", "ReverseV2", "While", "Enter", "Exit", "Merge", "Switch",
             "NextIteration", "LoopCond", "Less", "LogicalAnd", "TensorListReserve",
             "TensorListFromTensor", "TensorListGetItem", "TensorListSetItem",
             "TensorListStack", "TensorListPushBack", "TensorListPopBack",
             "TensorListElementShape", "TensorListLength"),
}


def _vocabulary() -> dict[str, str]:
    """Every base op type and its oneDNN kernels (``_Mkl<T>``, ``_MklNative<T>``)."""
    out = {}
    for lenna_op, op_types in _BASE_VOCABULARY.items():
        for op_type in op_types:
            bare = op_type.lstrip("_")
            for name in (op_type, f"_Mkl{bare}", f"_MklNative{bare}"):
                out[name] = lenna_op
    return out


def _one_line(exc: BaseException) -> str:
    """The line of a TensorFlow error that says what went wrong, without its call stacks."""
    text = getattr(exc, "message", None) or str(exc)
    skip = ("Graph execution error", "Detected at node", "Detected unsupported", "File ",
            "Stack trace", "[[", "Traceback")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith((" ", "\t"))]
    useful = [line for line in lines if not line.startswith(skip)]
    return (useful or lines or [type(exc).__name__])[0]


def _op_type(plane: Any, event: Any, on_device: bool) -> str | None:
    """The TF op type of a profiler event, or None for non-op events.

    Host op events are named ``op_name:OpType`` with the type as display name. GPU kernel
    events carry the launching op as a ``tf_op`` or ``kernel_annotation`` stat, the
    innermost of nested annotations (``outer::op_name:OpType``) last.
    """
    meta = plane.event_metadata[event.metadata_id]
    if not on_device:
        kind = meta.display_name
        return kind if kind and meta.name.endswith(f":{kind}") else None
    for stat in event.stats:
        if plane.stat_metadata[stat.metadata_id].name in ("tf_op", "kernel_annotation"):
            value = stat.str_value or plane.stat_metadata[stat.ref_value].name
            innermost = value.rsplit("::", 1)[-1]
            return innermost.rsplit(":", 1)[-1] if ":" in innermost else None
    return None


def parse_xspace(path: Path, plane_name: str) -> dict[str, float]:
    """Total duration in ns of each TF op type in one plane of an ``*.xplane.pb`` file."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(path.read_bytes())
    totals: dict[str, float] = defaultdict(float)
    on_device = plane_name != "/host:CPU"
    for plane in space.planes:
        if plane.name != plane_name:
            continue
        for line in plane.lines:
            if on_device and not line.name.startswith("Stream"):  # kernels, not derived lines
                continue
            for event in line.events:
                kind = _op_type(plane, event, on_device)
                if kind is not None:
                    totals[kind] += event.duration_ps / 1000.0
    return dict(totals)


class _Level:
    """An int option of ``ProfilerOptions`` that TensorFlow's binding does not turn into bool.

    TensorFlow 2.21's ``ProfilerSession.start`` casts each option to bool before int, so a
    plain int arrives as ``true`` and is ignored with an "expects an i value" warning; an
    object with ``__index__`` and no ``__bool__`` slot fails the bool cast and arrives as int.
    """

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


class TensorFlowRunner:
    """A compiled step (a ``tf.function``) and its input; ``run`` waits for the step to end.

    ``model`` is the Keras model the step runs, for inspection.
    """

    def __init__(self, step: Any, x: Any, device: str, model: Any = None) -> None:
        self._step = step
        self._x = x
        self._device = device
        self.model = model

    def run(self) -> None:
        tf = import_tensorflow()
        try:
            self._step(self._x)
            if self._device != "/CPU:0":
                tf.test.experimental.sync_devices()
        except (tf.errors.OpError, ValueError, RuntimeError) as exc:
            raise LennaError(f"tensorflow failed to run the model: {_one_line(exc)}") from None

    def profile(self, runs: int) -> dict[str, float]:
        """Mean ns per step of each TF op type that took measurable time, from the
        TensorFlow profiler's trace (host op events on CPU, GPU kernels on a GPU).

        The host tracer runs at level 3: at the default level 2 TensorFlow stops tracing
        the ops its cost model finds cheap after a few steps (most of an LSTM's loop).
        """
        tf = import_tensorflow()
        options = tf.profiler.experimental.ProfilerOptions(
            host_tracer_level=_Level(3), python_tracer_level=_Level(0),
            device_tracer_level=_Level(0 if self._device == "/CPU:0" else 1),
            delay_ms=_Level(0))
        with tempfile.TemporaryDirectory(prefix="lenna-tf-profile-") as logdir:
            tf.profiler.experimental.start(logdir, options)
            try:
                for _ in range(runs):
                    self.run()
            finally:
                tf.profiler.experimental.stop()
            paths = sorted(Path(logdir).rglob("*.xplane.pb"))
            if not paths:
                raise LennaError("the TensorFlow profiler wrote no trace")
            plane = "/host:CPU" if self._device == "/CPU:0" else "/device:GPU:0"
            totals = parse_xspace(paths[-1], plane)
        return {kind: ns / runs for kind, ns in sorted(totals.items()) if ns > 0}

    def peak_device_memory(self) -> int | None:
        """Peak bytes allocated on GPU 0 since prepare; None on CPU."""
        if self._device == "/CPU:0":
            return None
        return int(import_tensorflow().config.experimental.get_memory_info("GPU:0")["peak"])

    def close(self) -> None:
        self._step = self._x = self.model = None


def _optimizer(name: str) -> Any:
    import keras

    classes = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam,
               "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop,
               "adagrad": keras.optimizers.Adagrad}
    return classes[name](learning_rate=LEARNING_RATE)


def _inference_step(model: Any) -> Any:
    tf = import_tensorflow()

    @tf.function(autograph=False)
    def step(x: Any) -> Any:
        return model(x, training=False)

    return step


def _training_step(model: Any, optimizer: Any) -> Any:
    """Forward with batch statistics, loss = sum of the outputs' means, backward, update."""
    tf = import_tensorflow()
    variables = list(model.trainable_variables)
    optimizer.build(variables)

    @tf.function(autograph=False)
    def step(x: Any) -> Any:
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            outputs = out if isinstance(out, tuple) else (out,)
            loss = tf.add_n([tf.reduce_mean(o) for o in outputs])
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables, strict=True)
                                   if g is not None])
        return loss

    return step


class TensorFlowBackend:
    """TensorFlow (Keras model, ``tf.function`` step) on GPU 0 if there is one, else on CPU.

    ``threads`` sets TensorFlow's intra-op pool to that many threads and its inter-op pool to
    one (ops run one after another, each on ``threads`` threads). TensorFlow fixes both when
    its runtime starts; if it already started, the fingerprint records the values in effect.
    """

    name: ClassVar[str] = "tensorflow"
    requires: ClassVar[tuple[str, ...]] = ("tensorflow",)
    extra: ClassVar[str] = "tensorflow"
    modes: ClassVar[tuple[str, ...]] = ("inference", "training")
    optimizers: ClassVar[tuple[str, ...]] = OPTIMIZERS
    op_vocabulary: ClassVar[dict[str, str]] = _vocabulary()

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def _configure_threads(self) -> tuple[int, int]:
        """Apply the thread setting if TensorFlow still allows it; the effective counts."""
        tf = import_tensorflow()
        threading = tf.config.threading
        if self.threads is not None:
            try:
                threading.set_intra_op_parallelism_threads(self.threads)
                threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # the runtime has started: its settings stay
                pass
        default = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        return (threading.get_intra_op_parallelism_threads() or default,
                threading.get_inter_op_parallelism_threads() or default)

    def _device(self) -> tuple[str, str]:
        """TensorFlow's device string and a readable device name."""
        tf = import_tensorflow()
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "/CPU:0", "cpu"
        details = tf.config.experimental.get_device_details(gpus[0])
        return "/GPU:0", str(details.get("device_name", gpus[0].name))

    def fingerprint(self) -> dict[str, Any]:
        """The TensorFlow and Keras versions, the device and the effective thread counts."""
        import keras

        intra, inter = self._configure_threads()
        tf = import_tensorflow()
        return {"tensorflow": tf.__version__, "keras": keras.__version__,
                "device": self._device()[1], "intra_op_threads": intra,
                "inter_op_threads": inter, "onednn": _onednn_enabled()}

    def prepare(self, workload: Workload) -> TensorFlowRunner:
        """Build the model (weights seed 0), a random NHWC input and a traced step."""
        optimizer_name = check_workload(type(self), workload)
        self._configure_threads()
        tf = import_tensorflow()
        device = self._device()[0]
        graph = workload.architecture.graph
        rng = np.random.default_rng(0)
        xs = [rng.standard_normal(shape, dtype=np.float32) for shape in workload.input_shapes]
        try:
            with tf.device(device):
                model = graph_to_keras(graph, init_weights(graph, seed=0))
                tensors = [tf.constant(to_model_layout(x)) for x in xs]
                x_model = tensors[0] if len(tensors) == 1 else tensors
                if workload.mode == "inference":
                    step = _inference_step(model)
                else:
                    if not model.trainable_variables:
                        raise LennaError(
                            f"architecture {workload.architecture.id} has no trainable "
                            "parameters, so it cannot be measured in training mode")
                    step = _training_step(model, _optimizer(optimizer_name))
                if device != "/CPU:0":
                    tf.config.experimental.reset_memory_stats("GPU:0")
                step(x_model)  # traces the step on the device, so that no timed run does
        except (tf.errors.OpError, ValueError, RuntimeError, TypeError) as exc:
            raise LennaError(f"tensorflow could not build architecture "
                             f"{workload.architecture.id}: {_one_line(exc)}") from None
        return TensorFlowRunner(step, x_model, device, model)


def _onednn_enabled() -> bool | None:
    """Whether TensorFlow uses its oneDNN CPU kernels (``TF_ENABLE_ONEDNN_OPTS``, on by
    default on x86 Linux); None if this TensorFlow no longer tells (a private module)."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return None
