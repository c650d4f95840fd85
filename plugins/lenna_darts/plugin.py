"""Registers the ``darts-cells`` source and its featurizers."""

from lenna_core.api import hookimpl
from lenna_darts.encoding import DartsEncodingFeaturizer, DartsFlopsFeaturizer
from lenna_darts.source import DartsCellsSource


@hookimpl
def lenna_register_sources() -> list[type]:
    return [DartsCellsSource]


@hookimpl
def lenna_register_featurizers() -> list[type]:
    return [DartsEncodingFeaturizer, DartsFlopsFeaturizer]
