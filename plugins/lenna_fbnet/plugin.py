"""Registers the ``fbnet`` source and the ``fbnet-encoding`` featurizer."""

from lenna_core.api import hookimpl
from lenna_fbnet.encoding import FbnetEncodingFeaturizer
from lenna_fbnet.source import FbnetSource


@hookimpl
def lenna_register_sources() -> list[type]:
    return [FbnetSource]


@hookimpl
def lenna_register_featurizers() -> list[type]:
    return [FbnetEncodingFeaturizer]
