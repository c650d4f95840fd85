"""The layer-stats featurizer and its reusable counts."""

from __future__ import annotations

import pytest

from lenna_conv_layers.source import ConvLayersSource
from lenna_core.ir import OPS, GraphBuilder
from lenna_core.plugins.interfaces import Featurizer
from lenna_core.records import Architecture, Workload
from lenna_layer_stats.featurizer import LayerStatsFeaturizer
from lenna_layer_stats.stats import count_macs, count_params, node_elementwise
from lenna_resnet.source import ResNetFamilySource


@pytest.fixture(scope="module")
def resnet18() -> Architecture:
    return ResNetFamilySource(input_size=224).from_spec(
        {"block": "basic", "blocks": [2, 2, 2, 2], "width": 64}
    )


@pytest.fixture(scope="module")
def lstm_arch() -> Architecture:
    b = GraphBuilder()
    x = b.input((10, 16))
    x = b.add_node("lstm", x, hidden_size=32, num_layers=2)
    x = b.add_node("flatten", x)
    x = b.add_node("linear", x, out_features=4)
    return Architecture("test", {}, b.build(x))


def test_featurizer_satisfies_the_protocol() -> None:
    assert isinstance(LayerStatsFeaturizer(), Featurizer)
    assert (LayerStatsFeaturizer.name, LayerStatsFeaturizer.version) == ("layer-stats", "2")


def test_resnet18_counts(resnet18) -> None:
    assert count_params(resnet18.graph) == 11_689_512
    assert count_macs(resnet18.graph) == pytest.approx(1.82e9, rel=0.01)


def test_lstm_counts(lstm_arch) -> None:
    # per layer 4H(F+H) weights + 8H biases; MACs 4H(F+H) per step
    assert count_params(lstm_arch.graph) == (4 * 32 * 48 + 256) + (4 * 32 * 64 + 256) + 321 * 4
    assert count_macs(lstm_arch.graph) == 4 * 32 * 48 * 10 + 4 * 32 * 64 * 10 + 320 * 4


def test_bidirectional_lstm_counts_match_torch() -> None:
    torch = pytest.importorskip("torch")
    b = GraphBuilder()
    y = b.add_node("lstm", b.input((10, 16)), hidden_size=32, num_layers=2, bidirectional=True)
    graph = b.build(y)
    lstm = torch.nn.LSTM(16, 32, num_layers=2, bidirectional=True, batch_first=True)
    assert count_params(graph) == sum(p.numel() for p in lstm.parameters())
    # each layer runs twice; the second reads both directions' outputs (64 features)
    assert count_macs(graph) == 2 * (4 * 32 * (16 + 32) + 4 * 32 * (64 + 32)) * 10
    (node,) = [n for n in graph.nodes if n.op == "lstm"]
    assert node_elementwise(node, graph.shapes) == 17 * 32 * 10 * 4


def test_new_ops_count_elementwise_work_and_no_macs() -> None:
    b = GraphBuilder()
    x = b.input((4, 5, 5))
    gate = b.add_node("hardsigmoid", b.add_node("global_avgpool", x))
    x = b.add_node("silu", b.add_node("mul", x, gate))
    x = b.add_node("channel_shuffle", b.add_node("slice", x, start=0, end=2), groups=2)
    f = LayerStatsFeaturizer().featurize(Workload(Architecture("test", {}, b.build(x)),
                                                  batch_size=2))
    # global_avgpool reads 100, hardsigmoid 4, mul 100, silu 100; slice and shuffle move data
    assert f["flops"] == 2 * (100 + 4 + 100 + 100)
    assert f["macs"] == f["params"] == 0
    assert f["count_mul"] == f["count_slice"] == f["count_channel_shuffle"] == 1.0


def test_key_set_is_stable_across_graphs(resnet18, lstm_arch) -> None:
    conv = ConvLayersSource().from_spec(
        {"kernel": 3, "filters": 64, "in_channels": 32, "size": 56, "stride": 1}
    )
    featurizer = LayerStatsFeaturizer()
    tables = [featurizer.featurize(Workload(a)) for a in (resnet18, conv, lstm_arch)]
    assert tables[0].keys() == tables[1].keys() == tables[2].keys()
    for op in OPS:
        assert (f"count_{op}" in tables[0]) == (op != "input")
        assert (f"macs_{op}" in tables[0]) == (op != "input")
    assert all(type(v) is float for t in tables for v in t.values())
    lstm = tables[2]
    assert lstm["conv_count"] == lstm["conv_kernel_mean"] == lstm["conv_groups_max"] == 0.0
    assert lstm["count_lstm"] == 1.0 and lstm["count_conv2d"] == 0.0


def test_values_are_sane(resnet18) -> None:
    f = LayerStatsFeaturizer().featurize(Workload(resnet18))
    assert f["params"] == 11_689_512
    assert f["macs"] == count_macs(resnet18.graph)
    assert f["macs"] == f["macs_conv2d"] + f["macs_linear"]
    assert 2 * f["macs"] < f["flops"] < 2.05 * f["macs"]
    assert f["count_conv2d"] == f["conv_count"] == 20  # 17 convs + 3 downsamples
    assert f["count_batchnorm"] == 20 and f["count_add"] == 8 and f["count_linear"] == 1
    assert f["nodes"] == len(resnet18.graph.nodes)
    assert f["input_bytes"] == 3 * 224 * 224 * 4
    assert f["activation_bytes"] > 10 * f["input_bytes"]
    # input, stem (4), 8 blocks of 7 on the main path, avgpool, flatten, fc
    assert f["depth"] == 1 + 4 + 8 * 7 + 3
    assert f["conv_kernel_max"] == 7 and f["conv_stride_max"] == 2
    assert f["conv_out_channels_max"] == 512 and f["conv_in_channels_max"] == 512
    assert f["conv_out_size_max"] == 112 and f["conv_groups_mean"] == 1
    assert 1 < f["conv_kernel_mean"] < 7


def test_batch_scaling(resnet18) -> None:
    featurizer = LayerStatsFeaturizer()
    one = featurizer.featurize(Workload(resnet18, batch_size=1))
    eight = featurizer.featurize(Workload(resnet18, batch_size=8))
    assert eight["batch_size"] == 8.0
    for key in ("macs", "flops", "activation_bytes", "input_bytes", "macs_conv2d"):
        assert eight[key] == 8 * one[key]
    for key in ("params", "depth", "nodes", "conv_count", "conv_kernel_mean"):
        assert eight[key] == one[key]
