"""Registers the ``kernels`` featurizer."""

from lenna_core.api import hookimpl
from lenna_kernels.featurizer import KernelsFeaturizer


@hookimpl
def lenna_register_featurizers() -> list[type]:
    return [KernelsFeaturizer]
