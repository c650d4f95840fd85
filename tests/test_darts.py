"""DARTS blocks: shapes, α in the identity, binary-gate children and the study's encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest

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


def test_children_follow_softmax_of_alpha():
    source = DartsCellsSource(layers=1)
    alpha = [[3.0, 0, 0, 0, 0, 0, 1.0, 0], [0, 0, 0, 0, 2.0, 0, 0, 0]]
    arch = source.from_spec({"block": "normal", "layers": 1, "channels": 4, "alpha": alpha})
    rng = np.random.default_rng(0)
    counts = np.zeros((2, 8))
    for _ in range(400):
        for edge, op in enumerate(source.children(arch, rng).spec["choice"]):
            counts[edge, op] += 1
    assert np.allclose(counts / 400, softmax(np.array(alpha)), atol=0.06)


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
])
def test_bad_specs_name_the_field(change, fragment):
    spec = {"block": "normal", "channels": 8, "alpha": [[0.5] * 8] * 20, **change}
    with pytest.raises(LennaError, match=fragment):
        DartsCellsSource().from_spec(spec)


def test_a_campaign_labels_blocks_by_expected_latency(tmp_path):
    pytest.importorskip("onnxruntime")
    import pandas as pd
    from conftest import run_lenna

    db = tmp_path / "l.db"
    result = run_lenna("run", "--source", "darts-cells", "-O", "max_channels=8",
                       "-O", "input_size=16", "--features", "darts-encoding,darts-flops",
                       "--n", "5", "--protocol", "fixed:5", "--threads", "1",
                       "--profile-runs", "0", "--estimator", "linear", "--repeats", "1",
                       "--out", str(tmp_path / "o"), "--db", str(db))
    assert result.returncode == 0, result.stderr
    run_lenna("export", str(tmp_path / "m.csv"), "--format", "csv", "--db", str(db))
    frame = pd.read_csv(tmp_path / "m.csv")
    assert len(frame) == 5 and (frame["runs"] >= 11).all()
    assert frame["stop_reason"].isin(["converged", "max_children"]).all()
    assert (frame["latency_ns"] == frame["expected_ns"]).all()
