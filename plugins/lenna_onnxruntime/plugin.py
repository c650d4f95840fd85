"""Registers the ``onnxruntime`` backend with LENNA."""

from lenna_core import hookimpl
from lenna_onnxruntime.backend import OnnxRuntimeBackend


@hookimpl
def lenna_register_backends() -> list[type]:
    return [OnnxRuntimeBackend]
