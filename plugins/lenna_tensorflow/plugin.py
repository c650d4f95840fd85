"""Registers the ``tensorflow`` backend with LENNA."""

from lenna_core.api import hookimpl
from lenna_tensorflow.backend import TensorFlowBackend


@hookimpl
def lenna_register_backends() -> list[type]:
    return [TensorFlowBackend]
