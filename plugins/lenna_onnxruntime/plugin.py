"""Registers the ``onnxruntime`` and ``onnxruntime-cuda`` backends with LENNA."""

from lenna_core.api import hookimpl
from lenna_onnxruntime.backend import OnnxRuntimeBackend, OnnxRuntimeCudaBackend


@hookimpl
def lenna_register_backends() -> list[type]:
    return [OnnxRuntimeBackend, OnnxRuntimeCudaBackend]
