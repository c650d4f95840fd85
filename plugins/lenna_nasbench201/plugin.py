"""Registers the ``nasbench201`` source and the ``nb201-encoding`` featurizer."""

from lenna_core.api import hookimpl
from lenna_nasbench201.encoding import Nb201EncodingFeaturizer
from lenna_nasbench201.source import NasBench201Source


@hookimpl
def lenna_register_sources() -> list[type]:
    return [NasBench201Source]


@hookimpl
def lenna_register_featurizers() -> list[type]:
    return [Nb201EncodingFeaturizer]
