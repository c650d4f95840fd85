"""Registers the ``layer-stats`` featurizer with LENNA."""

from lenna_core.api import hookimpl
from lenna_layer_stats.featurizer import LayerStatsFeaturizer


@hookimpl
def lenna_register_featurizers() -> list[type]:
    return [LayerStatsFeaturizer]
