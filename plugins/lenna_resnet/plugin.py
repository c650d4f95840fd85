"""Registers the ``resnet-family`` source with LENNA."""

from lenna_core.api import hookimpl
from lenna_resnet.source import ResNetFamilySource


@hookimpl
def lenna_register_sources() -> list[type]:
    return [ResNetFamilySource]
