"""The ``torch-cpu`` and ``torch-cuda`` backends: eager PyTorch inference and training steps."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from contextlib import contextmanager
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
from lenna_torch.convert import graph_to_module

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
"""Optimizers of a training step (learning rate 1e-3); ``None`` means sgd."""
LEARNING_RATE = 1e-3
STEP_EVENT = "lenna::step"
"""The profiler range around each profiled step."""
BACKWARD_PREFIX = "autograd::engine::evaluate_function: "
"""Prefix of the profiler's top-level backward events; profiles keep the autograd node name."""

_VOCABULARY = {
    "conv2d": ("aten::conv2d", "aten::convolution", "aten::_convolution",
               "aten::mkldnn_convolution", "aten::cudnn_convolution", "aten::thnn_conv2d",
               "aten::_slow_conv2d_forward", "ConvolutionBackward0"),
    "batchnorm": ("aten::batch_norm", "aten::_batch_norm_impl_index", "aten::native_batch_norm",
                  "aten::_native_batch_norm_legit", "aten::_native_batch_norm_legit_no_training",
                  "aten::cudnn_batch_norm", "NativeBatchNormBackward0",
                  "CudnnBatchNormBackward0"),
    "relu": ("aten::relu", "aten::relu_", "ReluBackward0"),
    "relu6": ("aten::hardtanh", "aten::hardtanh_", "aten::relu6", "HardtanhBackward0"),
    "hardswish": ("aten::hardswish", "aten::hardswish_", "HardswishBackward0"),
    "hardsigmoid": ("aten::hardsigmoid", "aten::hardsigmoid_", "HardsigmoidBackward0"),
    "sigmoid": ("aten::sigmoid", "SigmoidBackward0"),
    "silu": ("aten::silu", "aten::silu_", "SiluBackward0"),
    "gelu": ("aten::gelu", "GeluBackward0"),
    "maxpool": ("aten::max_pool2d", "aten::max_pool2d_with_indices",
                "MaxPool2DWithIndicesBackward0"),
    "avgpool": ("aten::avg_pool2d", "AvgPool2DBackward0"),
    "global_avgpool": ("aten::adaptive_avg_pool2d", "aten::_adaptive_avg_pool2d", "aten::mean",
                       "AdaptiveAvgPool2DBackward0", "MeanBackward1"),
    "add": ("aten::add", "aten::add_", "AddBackward0"),
    # zero (x * 0.0, strided with slices) runs these kernels too and counts as mul and slice.
    "mul": ("aten::mul", "aten::mul_", "MulBackward0"),
    "concat": ("aten::cat", "aten::_cat", "CatBackward0"),
    "slice": ("aten::narrow", "aten::slice", "SliceBackward0"),
    "channel_shuffle": ("aten::channel_shuffle", "aten::native_channel_shuffle",
                        "ChannelShuffleBackward0"),
    "linear": ("aten::linear", "aten::addmm", "aten::matmul", "aten::mm", "AddmmBackward0",
               "MmBackward0", "TBackward0"),
    "flatten": ("aten::flatten", "aten::view", "aten::reshape", "ViewBackward0",
                "ReshapeAliasBackward0"),
    "lstm": ("aten::lstm", "MkldnnRnnLayerBackward0", "CudnnRnnBackward0"),
}


class TorchRunner:
    """One step of a prepared module: a forward pass under ``torch.inference_mode``, or with
    an ``optimizer`` a training step (forward, mean-of-outputs loss, backward, optimizer step).
    """

    activities: ClassVar[tuple[str, ...]] = ("CPU",)
    """The ``torch.profiler.ProfilerActivity`` members that :meth:`profile` records."""

    def __init__(self, module: Any, xs: tuple[Any, ...], optimizer: Any = None) -> None:
        self.module = module
        self.xs = xs
        self.optimizer = optimizer

    def _step(self) -> None:
        import torch

        if self.optimizer is None:
            with torch.inference_mode():
                self.module(*self.xs)
            return
        self.optimizer.zero_grad(set_to_none=True)
        out = self.module(*self.xs)
        with torch.profiler.record_function("lenna::loss"):  # keeps aten::mean out of profiles
            loss = sum(o.mean() for o in (out if isinstance(out, tuple) else (out,)))
        loss.backward()
        self.optimizer.step()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Report a framework failure as a one-line LennaError."""
        try:
            yield
        except RuntimeError as exc:
            what = "run" if self.optimizer is None else "train"
            raise LennaError(f"torch failed to {what} the model: {first_line(exc)}") from None

    def run(self) -> None:
        with self._errors():
            self._step()

    def profile(self, runs: int) -> dict[str, float]:
        """Median time per step in ns of each top-level op (children count in their parent).

        The median over steps, not the mean: one preempted op would dominate a mean.
        """
        from torch.profiler import DeviceType, ProfilerActivity, profile, record_function

        self.run()
        activities = [getattr(ProfilerActivity, a) for a in self.activities]
        with profile(activities=activities) as prof:
            for _ in range(runs):
                with record_function(STEP_EVENT):
                    self.run()
        events = [e for e in prof.events() if e.device_type == DeviceType.CPU]
        starts = sorted(e.time_range.start for e in events if e.name == STEP_EVENT)
        per_step: dict[str, np.ndarray] = {}
        for event in events:
            parent = event.cpu_parent
            if event.name == STEP_EVENT or (parent is not None and parent.name != STEP_EVENT):
                continue
            name = event.name.removeprefix(BACKWARD_PREFIX)
            step = max(bisect.bisect_right(starts, event.time_range.start) - 1, 0)
            per_step.setdefault(name, np.zeros(len(starts)))[step] += self._event_us(event)
        medians = {name: float(np.median(us)) * 1000 for name, us in per_step.items()}
        return {name: ns for name, ns in medians.items() if ns > 0}

    def _event_us(self, event: Any) -> float:
        """The time of a top-level event in µs: host time including its children."""
        return event.cpu_time_total

    def close(self) -> None:
        self.module = self.xs = self.optimizer = None


class TorchCudaRunner(TorchRunner):
    """A :class:`TorchRunner` whose module and input live on a CUDA device."""

    activities = ("CPU", "CUDA")

    def run(self) -> None:
        import torch

        with self._errors():
            self._step()
            torch.cuda.synchronize()

    def timed_run(self) -> int:
        """One step timed by CUDA events, in ns."""
        import torch

        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        with self._errors():
            start.record()
            self._step()
            end.record()
            end.synchronize()
        return round(start.elapsed_time(end) * 1e6)

    def peak_device_memory(self) -> int:
        """Peak bytes allocated by torch on the device since the backend's prepare."""
        import torch

        return int(torch.cuda.max_memory_allocated())

    def _event_us(self, event: Any) -> float:
        """The device time of the kernels an op and its children launched, in µs."""
        return event.device_time_total

    def close(self) -> None:
        import torch

        super().close()
        torch.cuda.empty_cache()


class TorchBackend:
    """Eager PyTorch on ``device``; ``threads`` is passed to ``torch.set_num_threads``.

    Subclasses set ``name``, ``device`` and ``runner_class``; training uses ``optimizers``.
    """

    device: ClassVar[str] = "cpu"
    runner_class: ClassVar[type[TorchRunner]] = TorchRunner
    requires: ClassVar[tuple[str, ...]] = ("torch",)
    extra: ClassVar[str] = "torch"
    modes: ClassVar[tuple[str, ...]] = ("inference", "training")
    optimizers: ClassVar[tuple[str, ...]] = OPTIMIZERS
    op_vocabulary: ClassVar[dict[str, str]] = {
        name: op for op, names in _VOCABULARY.items() for name in names}

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def _torch(self) -> Any:
        """Import torch, apply the thread setting and check the device."""
        import torch

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        return torch

    def _device_fingerprint(self, torch: Any) -> dict[str, Any]:
        return {}

    def fingerprint(self) -> dict[str, Any]:
        """The torch version, the device and the effective thread counts."""
        torch = self._torch()
        return {"torch": torch.__version__, "device": self.device,
                "intra_op_threads": torch.get_num_threads(),
                "inter_op_threads": torch.get_num_interop_threads(),
                **self._device_fingerprint(torch)}

    def prepare(self, workload: Workload) -> TorchRunner:
        """Build the module (weights seed 0) and a random input; training gets an optimizer."""
        torch = self._torch()
        optimizer_name = check_workload(type(self), workload)
        graph = workload.architecture.graph
        module = graph_to_module(graph, init_weights(graph, seed=0)).to(self.device)
        generator = torch.Generator().manual_seed(0)
        xs = tuple(torch.randn(shape, generator=generator).to(self.device)
                   for shape in workload.input_shapes)
        if workload.mode == "inference":
            return self.runner_class(module, xs)
        parameters = list(module.parameters())
        if not parameters:
            raise LennaError(f"architecture {workload.architecture.id} has no trainable "
                             "parameters, so it cannot be measured in training mode")
        module.train()
        optimizer = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam,
                     "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop,
                     "adagrad": torch.optim.Adagrad}[optimizer_name]
        return self.runner_class(module, xs, optimizer(parameters, lr=LEARNING_RATE))


class TorchCpuBackend(TorchBackend):
    """PyTorch on CPU."""

    name: ClassVar[str] = "torch-cpu"


class TorchCudaBackend(TorchBackend):
    """PyTorch on the first CUDA device; steps are synchronised and timed by CUDA events."""

    name: ClassVar[str] = "torch-cuda"
    device = "cuda:0"
    runner_class = TorchCudaRunner

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """``"no CUDA device"`` unless a GPU device file exists (torch is not imported)."""
        return None if has_cuda_device() else "no CUDA device"

    def _torch(self) -> Any:
        torch = super()._torch()
        if not torch.cuda.is_available():
            if torch.version.cuda is None:
                raise LennaError(f"torch {torch.__version__} was built without CUDA; install "
                                 f"a CUDA build of torch to use {self.name}")
            raise LennaError(f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no "
                             "usable CUDA device; check the driver and CUDA_VISIBLE_DEVICES")
        return torch

    def _device_fingerprint(self, torch: Any) -> dict[str, Any]:
        """The GPU's name, memory and compute capability, and the CUDA and cuDNN versions."""
        props = torch.cuda.get_device_properties(0)
        return {"gpu": props.name, "gpu_memory_bytes": props.total_memory,
                "compute_capability": f"{props.major}.{props.minor}",
                "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                "cudnn_benchmark": torch.backends.cudnn.benchmark}

    def prepare(self, workload: Workload) -> TorchRunner:
        """Reset the peak-memory counter, then build the model and input on the device."""
        self._torch().cuda.reset_peak_memory_stats()
        return super().prepare(workload)
