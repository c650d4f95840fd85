"""The graph-stats featurizer on hand-built graphs and on every bundled source."""

from __future__ import annotations

import math

import numpy as np

from lenna_conv_layers.source import ConvLayersSource
from lenna_core.ir import GraphBuilder
from lenna_graph_stats.featurizer import graph_stats
from lenna_nasbench201.source import NasBench201Source
from lenna_resnet.source import ResNetFamilySource


def residual():
    b = GraphBuilder()
    x = b.input((4, 8, 8))
    y = b.add_node("conv2d", x, out_channels=4, kernel_size=3, padding=1)
    y = b.add_node("relu", y)
    z = b.add_node("add", x, y)
    return b.build(b.add_node("relu", z))


def test_values_on_a_residual_block():
    stats = graph_stats(residual())
    assert stats["depth"] == 4  # input, conv, relu, add, relu: four steps from the input
    assert stats["nodes"] == 5 and stats["edges"] == 5
    assert stats["branch_nodes"] == 1 and stats["max_out_degree"] == 2
    assert stats["merge_nodes"] == 1 and stats["skip_connections"] == 1
    assert stats["log_paths"] == math.log1p(2)
    assert stats["width"] == 1


def test_a_squeeze_excitation_scale_is_a_merge():
    b = GraphBuilder()
    x = b.add_node("conv2d", b.input((4, 8, 8)), out_channels=4, kernel_size=1)
    scale = b.add_node("sigmoid", b.add_node("global_avgpool", x))
    stats = graph_stats(b.build(b.add_node("mul", x, scale)))
    assert stats["merge_nodes"] == 1 and stats["skip_connections"] == 1
    assert stats["log_paths"] == math.log1p(2)


def test_same_keys_for_every_source():
    rng = np.random.default_rng(0)
    graphs = [ResNetFamilySource().sample(rng).graph, ConvLayersSource().sample(rng).graph,
              NasBench201Source().sample(rng).graph]
    keys = [set(graph_stats(g)) for g in graphs]
    assert keys[0] == keys[1] == keys[2]
    assert graph_stats(graphs[1])["depth"] == 1
    assert graph_stats(graphs[2])["log_paths"] > graph_stats(graphs[1])["log_paths"]
