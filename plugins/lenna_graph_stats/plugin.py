"""Registers the ``graph-stats`` featurizer."""

from lenna_core.api import hookimpl
from lenna_graph_stats.featurizer import GraphStatsFeaturizer


@hookimpl
def lenna_register_featurizers() -> list[type]:
    return [GraphStatsFeaturizer]
