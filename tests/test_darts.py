"""DARTS blocks: shapes, α in the identity, binary-gate children and the study's encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_lenna

from lenna_core.errors import LennaError
from lenna_core.ir import init_weights
from lenna_core.records import Workload
from lenna_darts.blocks import OPS
from lenna_darts.encoding import DartsEncodingFeaturizer, DartsFlopsFeaturizer
from lenna_darts.source import DartsCellsSource, softmax


@pytest.mark.parametrize("channels", [1, 3, 17, 64])
def test_normal_keeps_and_reduction_halves(channels):
    rng = np.random.default_rng(channels)
    alpha = rng.random((20, 8)).tolist()
    source = DartsCellsSource()
    for block, expected in (("normal", (channels, 32, 32)),
                            ("reduction", (2 * channels, 16, 16))):
        arch = source.from_spec({"block": block, "channels": channels, "alpha": alpha})
        assert arch.graph.input_shape == (channels, 32, 32)
        assert arch.graph.shapes[arch.graph.outputs[0]] == expected
        child = source.children(arch, rng)
        assert child.graph.shapes[child.graph.outputs[0]] == expected


def test_alpha_is_part_of_the_identity_and_specs_round_trip():
    source = DartsCellsSource()
    arch = source.sample(np.random.default_rng(0))
    again = source.from_spec(json.loads(json.dumps(arch.spec)))
    assert again.id == arch.id
    nudged = json.loads(json.dumps(arch.spec))
    nudged["alpha"][0][0] += 1e-3
    other = source.from_spec(nudged)
    assert other.id != arch.id


def _chi_square(counts: np.ndarray, probabilities: np.ndarray) -> float:
    expected = counts.sum(axis=1, keepdims=True) * probabilities
    return float(((counts - expected) ** 2 / expected).sum())


def test_children_follow_softmax_of_alpha():
    source = DartsCellsSource()
    alpha = np.random.default_rng(5).normal(scale=1.5, size=(20, 8)).round(6)
    arch = source.from_spec({"block": "normal", "channels": 2, "alpha": alpha.tolist()})
    rng = np.random.default_rng(0)
    counts = np.zeros((20, 8))
    for _ in range(200):
        counts[np.arange(20), source.children(arch, rng).spec["choice"]] += 1
    bound = 140 + 4 * np.sqrt(2 * 140)  # 20 edges x 7 degrees of freedom, mean + 4 sd
    assert _chi_square(counts, softmax(alpha)) < bound
    assert _chi_square(counts, np.full((20, 8), 1 / 8)) > bound  # the check has power


def test_children_round_trip_and_stay_children():
    source = DartsCellsSource(max_channels=16)
    arch = source.sample(np.random.default_rng(4))
    child = source.children(arch, np.random.default_rng(5))
    assert child.source == "darts-cells" and child.params is None
    assert child.spec["parent"] == arch.spec
    again = source.from_spec(json.loads(json.dumps(child.spec)))
    assert again.id == child.id and again.spec == child.spec
    with pytest.raises(LennaError, match="drawn from a supernet"):
        source.children(child, np.random.default_rng(0))


@pytest.mark.parametrize("block", ["normal", "reduction"])
def test_every_op_runs_on_onnxruntime(block):
    onnx = pytest.importorskip("lenna_onnxruntime.convert")
    source = DartsCellsSource(layers=2)
    rng = np.random.default_rng(6)
    parent = {"block": block, "layers": 2, "channels": 3, "input_size": 8,
              "alpha": [[0.0] * 8] * 5}
    for op in range(len(OPS)):
        child = source.from_spec({"parent": parent, "choice": [op] * 5})
        x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
        (out,) = onnx.run_onnx(child.graph, init_weights(child.graph), x)
        assert out.shape == (2, *child.graph.shapes[child.graph.outputs[0]])
        assert np.isfinite(out).all()


def test_children_run_on_onnxruntime():
    onnx = pytest.importorskip("lenna_onnxruntime.convert")
    source = DartsCellsSource(max_channels=8)
    rng = np.random.default_rng(1)
    for block in ("normal", "reduction"):
        arch = DartsCellsSource(max_channels=8, block=block).sample(rng)
        child = source.children(arch, rng)
        x = rng.standard_normal((1, *child.graph.input_shape)).astype(np.float32)
        (out,) = onnx.run_onnx(child.graph, init_weights(child.graph), x)
        assert out.shape[1:] == child.graph.shapes[child.graph.outputs[0]]


def test_encoding_has_the_studys_167_numbers():
    arch = DartsCellsSource().sample(np.random.default_rng(2))
    values = DartsEncodingFeaturizer().featurize(Workload(arch))
    assert len(values) == 167
    for edge in range(20):
        assert sum(values[f"edge{edge}_{op}"] for op in OPS) == pytest.approx(1.0)


def test_children_are_encoded_one_hot():
    source = DartsCellsSource()
    arch = source.sample(np.random.default_rng(2))
    child = source.children(arch, np.random.default_rng(3))
    values = DartsEncodingFeaturizer().featurize(Workload(child))
    parent_values = DartsEncodingFeaturizer().featurize(Workload(arch))
    assert values.keys() == parent_values.keys()
    for edge, op in enumerate(child.spec["choice"]):
        assert [values[f"edge{edge}_{name}"] for name in OPS] == np.eye(8)[op].tolist()
    flops = DartsFlopsFeaturizer().featurize(Workload(child, batch_size=2))
    layer_stats = pytest.importorskip("lenna_layer_stats.stats")
    assert flops["expected_flops"] == flops["argmax_flops"] == (
        4 * layer_stats.count_macs(child.graph))
    assert flops["expected_params"] == layer_stats.count_params(child.graph)


def test_featurizers_refuse_other_sources():
    from lenna_resnet.source import ResNetFamilySource

    arch = ResNetFamilySource().sample(np.random.default_rng(0))
    with pytest.raises(LennaError, match="needs darts-cells blocks"):
        DartsEncodingFeaturizer().featurize(Workload(arch))


def test_expected_flops_lie_between_the_cheapest_and_dearest_children():
    source = DartsCellsSource(max_channels=64)
    arch = source.sample(np.random.default_rng(3))
    flops = DartsFlopsFeaturizer().featurize(Workload(arch))
    layer_stats = pytest.importorskip("lenna_layer_stats.stats")
    rng = np.random.default_rng(0)
    child_flops = [2 * layer_stats.count_macs(source.children(arch, rng).graph)
                   for _ in range(300)]
    assert min(child_flops) <= flops["expected_flops"] <= max(child_flops)
    assert flops["expected_flops"] == pytest.approx(np.mean(child_flops), rel=0.1)


@pytest.mark.parametrize(("change", "fragment"), [
    ({"block": "sideways"}, "block must be one of"),
    ({"channels": 0}, "channels must be an int"),
    ({"layers": 0}, "layers must be an int"),
    ({"alpha": [[0.1] * 8] * 3}, "alpha must be 20 edges x 8"),
    ({"alpha": [[float("nan")] * 8] * 20}, "finite"),
    ({"block": "reduction", "input_size": 31}, "even input_size"),
    ({"colour": 1}, "unknown field"),
    ({"ops": list(reversed(OPS))}, "ops must be"),
])
def test_bad_specs_name_the_field(change, fragment):
    spec = {"block": "normal", "channels": 8, "alpha": [[0.5] * 8] * 20, **change}
    with pytest.raises(LennaError, match=fragment):
        DartsCellsSource().from_spec(spec)


@pytest.mark.slow
def test_a_campaign_labels_blocks_by_expected_latency(tmp_path):
    pytest.importorskip("onnxruntime")
    import pandas as pd

    db = tmp_path / "l.db"
    result = run_lenna("run", "--source", "darts-cells", "-O", "max_channels=4",
                       "-O", "layers=1", "-O", "input_size=8",
                       "--features", "darts-encoding,darts-flops", "--n", "5",
                       "--protocol", "fixed:5", "--passes", "1", "--threads", "1",
                       "--profile-runs", "0", "--estimator", "linear", "--repeats", "1",
                       "--out", str(tmp_path / "o"), "--db", str(db))
    assert result.returncode == 0, result.stderr
    run_lenna("export", str(tmp_path / "m.csv"), "--format", "csv", "--db", str(db))
    frame = pd.read_csv(tmp_path / "m.csv")
    assert len(frame) == 5 and (frame["runs"] >= 11).all()
    assert frame["stop_reason"].isin(["converged", "max_children"]).all()
    assert (frame["latency_ns"] == frame["expected_ns"]).all()


@pytest.mark.parametrize(("change", "fragment"), [
    ({"choice": [0] * 19}, "choice must be 20 op indices"),
    ({"choice": [8] * 20}, "choice must be"),
    ({"choice": [True] * 20}, "choice must be"),
    ({"parent": None}, "parent must be"),
    ({"parent": {"block": "normal", "channels": 0}}, "channels must be"),
    ({"colour": 1}, "unknown field"),
])
def test_bad_child_specs_name_the_field(change, fragment):
    parent = {"block": "normal", "channels": 8, "alpha": [[0.5] * 8] * 20}
    with pytest.raises(LennaError, match=fragment):
        DartsCellsSource().from_spec({"parent": parent, "choice": [0] * 20, **change})


def test_block_encoding_of_a_one_hot_alpha_is_the_childs_encoding():
    torch = pytest.importorskip("torch")
    from lenna_darts.latency import BlockEncoding

    source = DartsCellsSource()
    arch = source.sample(np.random.default_rng(5))
    child = source.children(arch, np.random.default_rng(6))
    values = DartsEncodingFeaturizer().featurize(Workload(child))
    names = [f"darts-encoding.{key}" for key in values]
    names = [names[i] for i in np.random.default_rng(7).permutation(len(names))]
    alpha = torch.full((20, 8), -40.0)
    alpha[torch.arange(20), torch.tensor(child.spec["choice"])] = 40.0
    encoded = BlockEncoding(arch.spec, names)(alpha)
    expected = [values[name.removeprefix("darts-encoding.")] for name in names]
    assert encoded.shape == (1, 167)
    assert encoded[0].tolist() == pytest.approx(expected, abs=1e-6)


def test_a_latency_term_on_the_block_encoding_sends_its_gradient_to_alpha():
    """With op costs on edge 0 only, a gradient step on α lowers the latency term, and the
    gradient favours the cheaper ops of that edge over the dearer ones."""
    torch = pytest.importorskip("torch")
    from lenna_darts.latency import BlockEncoding

    arch = DartsCellsSource().sample(np.random.default_rng(5))
    names = [f"darts-encoding.{key}" for key in
             DartsEncodingFeaturizer().featurize(Workload(arch))]

    def op_cost(name: str) -> float:
        key = name.removeprefix("darts-encoding.")
        return float(len(OPS) - OPS.index(key[len("edge0_"):])) if key.startswith("edge0_") \
            else 0.0

    cost = torch.tensor([op_cost(name) for name in names])
    encode = BlockEncoding(arch.spec, names)
    alpha = torch.zeros((20, 8), requires_grad=True)
    latency = (encode(alpha) @ cost).sum()
    latency.backward()
    grad = alpha.grad
    assert torch.isfinite(grad).all() and grad[0].abs().sum() > 0 and grad[1:].abs().sum() == 0
    assert grad[0, 0] > 0 > grad[0, -1]  # sep_conv_3x3 costs most, none least
    with torch.no_grad():
        lower = (encode(alpha - grad) @ cost).sum()
    assert lower < latency


@pytest.mark.parametrize(("names", "shape", "fragment"), [
    (["darts-encoding.edge20_none"], (20, 8), "is not one of darts-encoding's"),
    (["layer-stats.flops"], (20, 8), "is not one of darts-encoding's"),
    (["darts-encoding.channels"], (19, 8), "α must be 20 × 8"),
])
def test_block_encoding_refuses_foreign_features_and_misshapen_alpha(names, shape, fragment):
    torch = pytest.importorskip("torch")
    from lenna_darts.latency import BlockEncoding

    arch = DartsCellsSource().sample(np.random.default_rng(5))
    with pytest.raises(LennaError, match=fragment):
        BlockEncoding(arch.spec, names)(torch.zeros(shape))


def test_sampled_cells_keep_two_inputs_per_layer_with_real_ops():
    source = DartsCellsSource(layers=4, min_channels=8, max_channels=8, input_size=[16, 8],
                              sample="cells")
    rng = np.random.default_rng(0)
    sizes = set()
    none = OPS.index("none")
    for _ in range(30):
        arch = source.sample(rng)
        assert arch.params is None and arch.spec["parent"]["channels"] == 8
        sizes.add(arch.spec["parent"]["input_size"])
        choice, first = arch.spec["choice"], 0
        for layer in range(1, 5):
            kept = [i for i in choice[first:first + layer + 1] if i != none]
            assert len(kept) == 2
            first += layer + 1
    assert sizes == {16, 8}


def test_sampled_cells_have_a_uniform_number_of_convolutions():
    """Cells of skips and pools only, and cells of convolutions only, are as common as any
    mix (with each op drawn uniformly, 0.6% of cells would have no convolution)."""
    source = DartsCellsSource(layers=3, min_channels=8, max_channels=8, input_size=16,
                              sample="cells")
    rng = np.random.default_rng(0)
    counts = np.bincount([sum(OPS[i].endswith(("conv_3x3", "conv_5x5"))
                              for i in source.sample(rng).spec["choice"])
                          for _ in range(700)], minlength=7)
    assert counts.sum() == 700 and counts.min() >= 70 and counts.max() <= 130


@pytest.mark.parametrize(("options", "message"), [
    ({"sample": "graphs"}, "sample must be one of supernets, cells"),
    ({"input_size": [16, 1]}, "input_size must be an int >= 2 or a list of them"),
])
def test_bad_sampling_options(options, message):
    with pytest.raises(LennaError, match=message):
        DartsCellsSource(**options)
