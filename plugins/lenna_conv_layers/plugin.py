"""Registers the ``conv-layers`` source with LENNA."""

from lenna_conv_layers.source import ConvLayersSource
from lenna_core.api import hookimpl


@hookimpl
def lenna_register_sources() -> list[type]:
    return [ConvLayersSource]
