"""Registers the ``torchvision`` source."""

from lenna_core.api import hookimpl
from lenna_torchvision.source import TorchvisionSource


@hookimpl
def lenna_register_sources() -> list[type]:
    return [TorchvisionSource]
