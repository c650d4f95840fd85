"""Registers the ``onnx-file`` source with LENNA."""

from lenna_core.api import hookimpl
from lenna_onnx_file.source import OnnxFileSource


@hookimpl
def lenna_register_sources() -> list[type]:
    return [OnnxFileSource]
