"""The ``torch-cpu`` backend: eager PyTorch on CPU, for inference and training steps."""

from __future__ import annotations

from typing import Any, ClassVar

from lenna_core.errors import LennaError
from lenna_core.ir import init_weights
from lenna_core.records import Workload
from lenna_torch.convert import graph_to_module

OPTIMIZERS = ("sgd", "adam")
"""Optimizers of a training step; ``None`` means sgd."""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class TorchInferenceRunner:
    """One forward pass under ``torch.inference_mode``."""

    def __init__(self, module: Any, x: Any) -> None:
        self._module = module
        self._x = x

    def run(self) -> None:
        import torch

        try:
            with torch.inference_mode():
                self._module(self._x)
        except RuntimeError as exc:
            raise LennaError(f"torch failed to run the model: {_one_line(exc)}") from None

    def close(self) -> None:
        self._module = self._x = None


class TorchTrainingRunner:
    """One training step: forward, mean-of-outputs loss, backward and an optimizer step."""

    def __init__(self, module: Any, x: Any, optimizer: Any) -> None:
        self._module = module
        self._x = x
        self._optimizer = optimizer

    def run(self) -> None:
        try:
            self._optimizer.zero_grad(set_to_none=True)
            out = self._module(self._x)
            outputs = out if isinstance(out, tuple) else (out,)
            loss = sum(o.mean() for o in outputs)
            loss.backward()
            self._optimizer.step()
        except RuntimeError as exc:
            raise LennaError(f"torch failed to train the model: {_one_line(exc)}") from None

    def close(self) -> None:
        self._module = self._x = self._optimizer = None


class TorchCpuBackend:
    """PyTorch on CPU; ``threads`` is passed to ``torch.set_num_threads`` at prepare time."""

    name: ClassVar[str] = "torch-cpu"
    requires: ClassVar[tuple[str, ...]] = ("torch",)
    extra: ClassVar[str] = "torch"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def fingerprint(self) -> dict[str, Any]:
        """The torch version, the device and the thread setting."""
        import torch

        return {"torch": torch.__version__, "device": "cpu", "threads": self.threads}

    def prepare(self, workload: Workload) -> TorchInferenceRunner | TorchTrainingRunner:
        """Build the module (weights seed 0) and a random input; training gets an optimizer."""
        import torch

        if workload.dtype != "float32":
            raise LennaError(f"the {self.name} backend supports float32 only, "
                             f"not {workload.dtype!r}")
        optimizer_name = workload.optimizer or "sgd"
        if workload.mode == "training" and optimizer_name not in OPTIMIZERS:
            raise LennaError(f"unknown optimizer {workload.optimizer!r}; the {self.name} "
                             f"backend supports {', '.join(OPTIMIZERS)}")
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        graph = workload.architecture.graph
        module = graph_to_module(graph, init_weights(graph, seed=0))
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(workload.input_shape, generator=generator)
        if workload.mode == "inference":
            return TorchInferenceRunner(module, x)
        parameters = list(module.parameters())
        if not parameters:
            raise LennaError(f"architecture {workload.architecture.id} has no trainable "
                             "parameters, so it cannot be measured in training mode")
        module.train()
        cls = torch.optim.SGD if optimizer_name == "sgd" else torch.optim.Adam
        return TorchTrainingRunner(module, x, cls(parameters, lr=1e-3))
