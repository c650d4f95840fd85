"""Registers the ``torch-cpu`` and ``torch-cuda`` backends with LENNA."""

from lenna_core.api import hookimpl
from lenna_torch.backend import TorchCpuBackend, TorchCudaBackend


@hookimpl
def lenna_register_backends() -> list[type]:
    return [TorchCpuBackend, TorchCudaBackend]
