"""``lenna search``: the latency term's gradient, DARTS's derived cells, the predictor checks,
and a small search end to end (resumed, its cells usable with ``lenna predict``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_lenna

from lenna_core.errors import LennaError
from lenna_core.learning.predictor import load_predictor, save_predictor
from lenna_core.plugins.registry import make_registry
from lenna_core.records import Workload
from lenna_core.search.latency import search_predictor
from lenna_darts.blocks import OPS
from lenna_darts.encoding import DartsEncodingFeaturizer, DartsFlopsFeaturizer
from lenna_darts.search import DartsSearchSpace, derived_cell
from lenna_darts.source import DartsCellsSource

torch = pytest.importorskip("torch")

LAYERS = 2
SOURCE = DartsCellsSource(layers=LAYERS, min_channels=4, max_channels=4, input_size=8)
TARGET = {"backend": "onnxruntime", "id": "t", "fingerprint": {"threads_setting": 1}}


def _flops_predictor(directory: Path, estimator_name: str = "torch-mlp",
                     source: str = "darts-cells", target=TARGET, count: int = 200) -> Path:
    """A predictor of darts-encoding fitted on the blocks' expected FLOPs (a cost that grows
    with every conv), saved as ``lenna run`` saves one."""
    registry = make_registry()
    rng = np.random.default_rng(0)
    encoding, flops = DartsEncodingFeaturizer(), DartsFlopsFeaturizer()
    rows, cost = [], []
    for _ in range(count):
        arch = SOURCE.sample(rng)
        workload = Workload(arch)
        features = encoding.featurize(workload)
        rows.append(features)
        cost.append(1e-3 + 1e-9 * flops.featurize(workload)["expected_flops"])
    names = sorted(rows[0])
    X = np.array([[r[n] for n in names] for r in rows])
    estimator = registry.create("estimator", estimator_name)
    if estimator_name == "torch-mlp":
        estimator.set_params(hidden_layer_sizes=[32], epochs=1000 if count > 50 else 10)
    estimator.fit(X, np.log(cost))
    save_predictor(directory, estimator, [encoding], [f"darts-encoding.{n}" for n in names],
                   {"workload": Workload(SOURCE.sample(rng)).settings(),
                    "source": {"name": source, "options": {"layers": LAYERS}},
                    "target": target, "training_data": {"rows": count, "sha256": "0"},
                    "metrics": {}})
    return directory


@pytest.fixture(scope="module")
def predictor_dir(tmp_path_factory) -> Path:
    return _flops_predictor(tmp_path_factory.mktemp("search") / "predictor")


def _space(cells: str = "normal,reduction") -> DartsSearchSpace:
    return DartsSearchSpace(SOURCE, (1, 8, 8), 10, 0, channels=4, cells=cells)


def test_latency_gradient_reaches_alpha_with_the_sign_that_lowers_latency(predictor_dir):
    _, latency = search_predictor(predictor_dir, make_registry(), "darts-cells",
                                  "darts-encoding", "onnxruntime", 1)
    space = _space()
    alphas = {b: torch.zeros(5, len(OPS), requires_grad=True) for b in ("normal", "reduction")}
    seconds = space.expected_latency(alphas, latency)
    seconds.backward()
    for alpha in alphas.values():
        grad = alpha.grad
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
        # raising the heaviest op raises latency, raising none lowers it
        heavy, none = grad[:, OPS.index("sep_conv_5x5")], grad[:, OPS.index("none")]
        assert (heavy > none).all() and heavy.sum() > 0 > none.sum()
    with torch.no_grad():
        stepped = {b: a - 1.0 * a.grad / a.grad.abs().max() for b, a in alphas.items()}
        assert float(space.expected_latency(stepped, latency)) < float(seconds)


def test_one_hot_alpha_predicts_what_the_predictor_gives_that_child(predictor_dir):
    predictor, latency = search_predictor(predictor_dir, make_registry(), "darts-cells",
                                          "darts-encoding", "onnxruntime", 1)
    space = _space()
    rng = np.random.default_rng(3)
    alphas = {b: 1000.0 * torch.from_numpy(np.eye(len(OPS))[rng.integers(0, 8, 5)]).float()
              for b in ("normal", "reduction")}
    cells = [{"parent": {**cell, "alpha": [[0.0] * 8] * 5, "ops": list(OPS)},
              "choice": alphas[cell["block"]].argmax(dim=1).tolist()} for cell in space.cells]
    expected = sum(predictor.predict_seconds(Workload(SOURCE.from_spec(c),
                                                      **predictor.workload_settings()))
                   for c in cells)
    with torch.no_grad():
        assert float(space.expected_latency(alphas, latency)) == pytest.approx(expected,
                                                                               rel=1e-5)


def test_derived_cell_keeps_the_strongest_op_and_two_inputs_per_layer():
    # 3 layers: edges (1,0) (1,1) | (2,0) (2,1) (2,2) | (3,0) (3,1) (3,2) (3,3)
    alpha = np.zeros((9, len(OPS)))
    strong = {0: ("none", 5.0), 1: ("avg_pool_3x3", 1.0),  # none never wins an edge
              2: ("dil_conv_3x3", 3.0), 3: ("skip_connect", 0.5), 4: ("sep_conv_5x5", 2.0),
              5: ("max_pool_3x3", 0.2), 6: ("sep_conv_3x3", 4.0), 7: ("dil_conv_5x5", 0.1),
              8: ("skip_connect", 3.5)}
    for edge, (op, value) in strong.items():
        alpha[edge, OPS.index(op)] = value
    alpha[0, OPS.index("sep_conv_5x5")] = 0.5  # edge 0's best op but none
    none = OPS.index("none")
    assert derived_cell(alpha, 3) == [
        OPS.index("sep_conv_5x5"), OPS.index("avg_pool_3x3"),
        OPS.index("dil_conv_3x3"), none, OPS.index("sep_conv_5x5"),
        none, OPS.index("sep_conv_3x3"), none, OPS.index("skip_connect")]


def test_search_space_refuses_bad_options():
    with pytest.raises(LennaError, match="unknown search option colour"):
        DartsSearchSpace(SOURCE, (1, 8, 8), 10, colour=1)
    with pytest.raises(LennaError, match="search option channels must be an integer"):
        DartsSearchSpace(SOURCE, (1, 8, 8), 10, channels=0)
    with pytest.raises(LennaError, match="cells must be a comma-separated list"):
        DartsSearchSpace(SOURCE, (1, 8, 8), 10, cells="normal,pooling")
    with pytest.raises(LennaError, match="needs an even input size"):
        DartsSearchSpace(SOURCE, (1, 6, 6), 10, cells="reduction,reduction")


@pytest.mark.parametrize(("change", "message"), [
    ({"estimator_name": "ridge"}, "not differentiable"),
    ({"source": "nasbench201"}, "fitted on source nasbench201, not darts-cells"),
    ({"target": {**TARGET, "backend": "torch-cpu"}}, "fitted on torch-cpu with threads 1"),
    ({"target": {**TARGET, "fingerprint": {"threads_setting": None}}},
     "with threads auto, but the search measures on onnxruntime with threads 1"),
])
def test_search_predictor_refuses_a_predictor_of_the_wrong_kind(tmp_path, change, message):
    directory = _flops_predictor(tmp_path / "p", count=20, **change)
    with pytest.raises(LennaError, match=message):
        search_predictor(directory, make_registry(), "darts-cells", "darts-encoding",
                         "onnxruntime", 1)


def test_search_predictor_refuses_other_features(tmp_path, predictor_dir):
    manifest = json.loads((predictor_dir / "predictor.json").read_text())
    assert [f["name"] for f in manifest["featurizers"]] == ["darts-encoding"]
    loaded = load_predictor(predictor_dir, make_registry())
    with pytest.raises(LennaError, match="fitted on features darts-encoding; the search "
                                         "builds darts-flops alone"):
        search_predictor(predictor_dir, make_registry(), "darts-cells", "darts-flops",
                         "onnxruntime", 1)
    assert loaded.feature_names[0].startswith("darts-encoding.")


def test_a_data_directory_without_images_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_lenna("search", "--lambda", "0", "--data", str(tmp_path / "empty"),
                       "--out", str(tmp_path / "out"), "--db", str(tmp_path / "l.db"))
    assert_one_line_error(result, str(tmp_path / "empty"))


@pytest.mark.slow
def test_search_end_to_end_resumes_and_writes_usable_cells(tmp_path, predictor_dir):
    common = ["--predictor", str(predictor_dir), "--epochs", "2", "--train-epochs", "1",
              "--limit", "200", "--image-size", "8", "-O", f"layers={LAYERS}",
              "-S", "channels=4", "-S", "cells=normal,reduction", "-S", "warmup=1",
              "--protocol", "fixed:20", "--passes", "1", "--out", str(tmp_path / "out"),
              "--db", str(tmp_path / "l.db")]
    first = run_lenna("search", "--lambda", "0", "--json", *common)
    assert first.returncode == 0, first.stderr
    result = json.loads((tmp_path / "out" / "search.json").read_text())
    assert list(result["points"]) == ["0"]
    point = result["points"]["0"]
    assert len(point["cells"]) == 2 and point["measured_ms"] == pytest.approx(
        sum(point["cell_measured_ms"]))
    for cell, predicted in zip(point["cells"], point["cell_predicted_ms"], strict=True):
        arch = json.loads((tmp_path / "out" / cell).read_text())
        assert arch["source"] == "darts-cells" and len(arch["spec"]["choice"]) == 5
        shown = run_lenna("predict", "--predictor", str(predictor_dir), "--arch",
                          str(tmp_path / "out" / cell), "--json")
        assert json.loads(shown.stdout)["latency_ms"] == pytest.approx(predicted, rel=1e-6)
    assert (tmp_path / "out" / "pareto.png").stat().st_size > 10_000

    # the derived cells join a campaign of lenna run, their labels reused from the search
    cells = [a for c in point["cells"] for a in ("--arch", str(tmp_path / "out" / c))]
    run = run_lenna("run", "--source", "darts-cells", "-O", f"layers={LAYERS}", "-O",
                    "min_channels=4", "-O", "max_channels=4", "-O", "input_size=8", "--n", "5",
                    "--features", "darts-encoding", "--estimator", "ridge", "--repeats", "2",
                    "--protocol", "fixed:20", "--passes", "1", *cells,
                    "--out", str(tmp_path / "run"), "--db", str(tmp_path / "l.db"))
    assert run.returncode == 0, run.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["config"]["architectures"] == point["arch_ids"]
    assert report["measurements"]["rows"] == 7 and report["measurements"]["new"] == 5

    second = run_lenna("search", "--lambda", "0,10", "--json", *common)
    assert second.returncode == 0, second.stderr
    assert "λ=0 (" not in second.stderr  # the finished point is not searched again
    again = json.loads((tmp_path / "out" / "search.json").read_text())
    assert again["points"]["0"] == point
    assert [p["lambda"] for p in json.loads(second.stdout)["points"]] == [0, 10]

    changed = run_lenna("search", "--lambda", "0", *common[:-4], "--epochs", "3",
                        "--out", str(tmp_path / "out"), "--db", str(tmp_path / "l.db"))
    assert_one_line_error(changed, "holds a search with other settings (epochs)")
