"""Registers the ``torch-cpu`` backend with LENNA."""

from lenna_core import hookimpl
from lenna_torch.backend import TorchCpuBackend


@hookimpl
def lenna_register_backends() -> list[type]:
    return [TorchCpuBackend]
