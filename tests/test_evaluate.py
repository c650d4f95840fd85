"""lenna evaluate: estimators compared on the same splits, random, by family and by device."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_error, run_lenna

from lenna_core.data.dataset import Dataset, load_dataset, resolve_target
from lenna_core.data.store import Store
from lenna_core.errors import LennaError
from lenna_core.learning import validation
from lenna_core.learning.metrics import METRICS, regression_metrics
from lenna_core.learning.splits import make_splits
from lenna_core.learning.tuning import cross_validated_mape, grid_points, tune
from lenna_core.learning.validation import clone_estimator
from lenna_core.measurement.campaign import sample_architectures
from lenna_core.records import Measurement, Target, Workload
from lenna_layer_stats.featurizer import LayerStatsFeaturizer
from lenna_nasbench201.cells import all_arch_strings, canonical_arch, parse_arch
from lenna_nasbench201.source import NasBench201Source
from lenna_sklearn.estimators import KNNEstimator, RidgeEstimator
from lenna_training.source import TrainingWorkloadsSource

COST = {"none": 0.0, "skip_connect": 0.05, "nor_conv_1x1": 0.4, "nor_conv_3x3": 1.2,
        "avg_pool_3x3": 0.3}
"""Milliseconds per op: a device on which a cell's latency is the sum of its ops."""


def cells(n: int, seed: int = 0) -> list[str]:
    """``n`` cells from distinct isomorphism classes."""
    distinct = sorted({canonical_arch(a) for a in all_arch_strings()})
    return [distinct[i] for i in np.random.default_rng(seed).choice(len(distinct), n,
                                                                     replace=False)]


def additive_latency(arch: str, scale: float, rng: np.random.Generator) -> float:
    cost = 1.0 + sum(COST[op] for op in parse_arch(arch))
    return scale * cost * (1 + 0.01 * rng.standard_normal())


@pytest.fixture(scope="module")
def devices(tmp_path_factory):
    """300 cells on three devices (one twice as fast, one with dearer 3x3 convs), imported."""
    base = tmp_path_factory.mktemp("evaluate")
    rng = np.random.default_rng(0)
    rows = []
    for arch in cells(300):
        for device, scale in (("fast", 1.0), ("slow", 2.0), ("odd", 1.5)):
            extra = 0.5 * parse_arch(arch).count("nor_conv_3x3") if device == "odd" else 0
            rows.append((arch, device, additive_latency(arch, scale, rng) + extra))
    path = base / "m.csv"
    pd.DataFrame(rows, columns=["arch", "device", "ms"]).to_csv(path, index=False)
    db = base / "l.db"
    result = run_lenna("import", str(path), "--source", "nasbench201", "--arch-col", "arch",
                       "--target-cols", "device", "--latency-col", "ms", "--db", str(db))
    assert result.returncode == 0, result.stderr
    return base, db


def evaluate(db, *args: str, cwd=None):
    return run_lenna("evaluate", "--db", str(db), "--source", "nasbench201",
                     "--features", "nb201-encoding", *args, cwd=cwd)


@pytest.mark.slow
def test_random_split_compares_estimators_in_one_table(devices):
    base, db = devices
    out = base / "random"
    result = evaluate(db, "--target", "fast", "--estimators", "linear,knn,lightgbm",
                      "--train-size", "200", "--repeats", "3", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["estimators"]) == {"linear", "knn", "lightgbm"}
    for metrics in report["estimators"].values():
        assert set(METRICS) <= set(metrics)
        assert {f"{m}_std" for m in METRICS} <= set(metrics)
    # the latency is additive in the one-hot ops, so the linear model of log latency is close
    # and far better than chance; every estimator ranks the cells
    assert report["estimators"]["linear"]["within_10pct"] > 0.5
    assert all(m["spearman"] > 0.8 for m in report["estimators"].values())
    assert report["rows"] == 300 and "200 training rows, 100 test rows" in report["split"]
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["estimator"]) == ["linear", "knn", "lightgbm"]
    assert table.loc[0, "mape"] == pytest.approx(report["estimators"]["linear"]["mape"])
    for plot in ("predicted_vs_measured.png", "error_cdf.png", "metrics.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"
    # the best estimator, fitted on every row, is a predictor for the imported device
    manifest = json.loads((out / "predictor" / "predictor.json").read_text())
    best = max(report["estimators"], key=lambda n: report["estimators"][n]["within_10pct"])
    assert manifest["estimator"]["name"] == best
    assert manifest["target"]["backend"] == "fast" and manifest["training_data"]["rows"] == 300
    arch = base / "arch.json"
    assert run_lenna("sample", "--source", "nasbench201", "--seed", "5",
                     "--out", str(arch)).returncode == 0
    predicted = run_lenna("predict", "--predictor", str(out), "--arch", str(arch), "--json")
    assert predicted.returncode == 0, predicted.stderr
    spec = json.loads(arch.read_text())["spec"]["arch"]
    expected = additive_latency(spec, 1.0, np.random.default_rng(0))
    assert json.loads(predicted.stdout)["latency_ms"] == pytest.approx(expected, rel=0.25)
    text = evaluate(db, "--target", "fast", "--estimators", "linear", "--repeats", "2",
                    "--out", str(base / "text"))
    assert text.returncode == 0 and "Spearman" in text.stdout and "linear" in text.stdout


def test_device_split_holds_out_each_device_in_turn(devices):
    base, db = devices
    result = evaluate(db, "--target", "fast,slow,odd", "--split", "device", "--estimators",
                      "lightgbm", "--repeats", "3", "--anchors", "10", "--out",
                      str(base / "device"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "device split x 3" in report["split"]
    # 600 training rows from two devices; the held-out device's 290 non-anchor cells
    assert "600 training rows, 290 test rows" in report["split"]
    assert report["estimators"]["lightgbm"]["spearman"] > 0.8


def test_isomorphic_copies_are_dropped_before_splitting(tmp_path):
    copies = ["|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
              "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|"]
    archs = [*cells(40, seed=3), *copies]
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"arch": archs, "ms": [additive_latency(a, 1, rng) for a in archs]})
    source = NasBench201Source()
    store = Store(str(tmp_path / "l.db"))
    target = Target("pi", {"threads": 1})
    store.add_measurements(  # measured as LENNA stores them
        (Workload(source.from_spec({"arch": arch})), target, "fixed:3",
         Measurement.from_samples([round(ms * 1e6)] * 3, "fixed"))
        for arch, ms in zip(frame.arch, frame.ms, strict=True))
    data = load_dataset(store, source, [resolve_target(store, "pi")])
    assert len(data) == 41 and data.dropped_isomorphic == 1
    kept = {w.architecture.spec["arch"] for w in data.workloads}
    assert copies[0] in kept and copies[1] not in kept  # the first measured of the class


def test_lenna_run_and_lenna_evaluate_split_alike_for_one_seed():
    source = NasBench201Source()
    workloads = tuple(Workload(source.from_spec({"arch": a})) for a in cells(23, seed=4))
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 1, size=(23, 3))
    latency = np.exp(X @ np.array([1.0, 2.0, 0.5])) * 1e-3
    ids = [w.architecture.id for w in workloads]
    data = Dataset(workloads, latency, ("pi",) * 23, ("nb201",) * 23)
    splits = make_splits(data, "random", repeats=3, seed=7)
    for k, split in enumerate(splits):  # 18 training rows, first in the seed's permutation
        order = np.random.default_rng(7 + k).permutation(23)
        assert split.train.tolist() == sorted(order[:18])
        assert split.test.tolist() == sorted(order[18:])
        assert split.label == f"seed {7 + k}"
    report = validation.evaluate(KNNEstimator(), X, latency, ids, repeats=3, seed=7)
    for k, split in enumerate(splits):
        tested = [arch_id for arch_id, _, _, index in report.predictions if index == k]
        assert tested == [ids[i] for i in split.test]
    assert report.split == "random 80%/20% x 3 seeds from 7"
    with pytest.raises(LennaError, match="only 4 successful measurement"):
        validation.evaluate(KNNEstimator(), X[:4], latency[:4], ids[:4])


@pytest.mark.slow
def test_family_split_trains_on_some_models_and_tests_on_another(tmp_path):
    """The cross-instance study: train on LeNet-5 and ResNet-small, validate on VGG-small,
    with training steps really measured."""
    db = tmp_path / "l.db"
    measured = run_lenna("run", "--source", "training-workloads", "-O",
                         "models=lenet5,vgg-small,resnet-small", "-O", "datasets=mnist",
                         "--backend", "torch-cpu", "--n", "24", "--protocol", "fixed:3",
                         "--passes", "1", "--threads", "1", "--profile-runs", "0", "--repeats", "2",
                         "--estimator", "random-forest", "--tune", "--tune-budget", "2",
                         "--db", str(db), "--out", str(tmp_path / "run"))
    assert measured.returncode == 0, measured.stderr
    config = json.loads((tmp_path / "run" / "report.json").read_text())["config"]
    assert config["tune"] is True and config["tune_budget"] == 2
    result = run_lenna("evaluate", "--db", str(db), "--source", "training-workloads",
                       "--target", "torch-cpu", "--features", "layer-stats",
                       "--estimators", "ridge,random-forest", "--split", "family",
                       "--holdout", "vgg-small", "--repeats", "1", "--json",
                       "--out", str(tmp_path / "family"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == 24 and "family split x 1" in report["split"]
    train, test = (int(x) for x in re.findall(r"(\d+) (?:training|test) rows",
                                                report["split"]))
    assert (train, test) == (16, 8)  # seed 0 draws 8 vgg-small workloads among the 24


def test_a_family_split_ranks_the_held_out_model_exactly():
    """Latency proportional to MACs: ridge on layer statistics, trained on LeNet-5 and
    ResNet-small, ranks VGG-small's workloads exactly."""
    source = TrainingWorkloadsSource(models="lenet5,vgg-small,resnet-small", datasets="mnist")
    workloads = tuple(Workload(a, **source.workload_settings(a))
                      for a in sample_architectures(source, 24, 0))
    rows = [LayerStatsFeaturizer().featurize(w) for w in workloads]
    names = sorted(rows[0])
    X = np.array([[row[k] for k in names] for row in rows], dtype=float)
    latency = X[:, names.index("macs")] * 1e-12
    models = tuple(w.architecture.spec["model"] for w in workloads)
    data = Dataset(workloads, latency, ("cpu",) * 24, models)
    (split,) = make_splits(data, "family", repeats=1, seed=0, holdout=("vgg-small",))
    assert (len(split.train), len(split.test)) == (16, 8)
    ids = [w.architecture.id for w in workloads]
    report = validation.evaluate_on(RidgeEstimator(), X, latency, ids,
                                    [(split.train, split.test)], "family")
    assert report.metrics["spearman"] == (1.0, 0.0)


@pytest.mark.parametrize(("args", "fragment"), [
    (("--target", "nowhere"), "unknown target 'nowhere'; targets in the store: fast, odd, "
                              "slow"),
    (("--target", "fast,slow"), "a random split needs one target"),
    (("--target", "fast", "--train-size", "300"), "has 300 measurement(s); a random split "
                                                   "training on 300 needs at least 301"),
    (("--target", "fast", "--estimators", "linear,oracle"), "oracle"),
    (("--target", "fast", "--split", "family"), "a family split needs at least two families"),
    (("--target", "fast,slow", "--split", "device", "--holdout", "mars"),
     "--holdout mars is not among the targets"),
    (("--target", "fast,slow", "--split", "device", "--anchors", "400"),
     "device embedding needs 400"),
    (("--target", "fast", "--split", "diagonal"), "unknown split 'diagonal'"),
])
def test_bad_requests_are_one_line_errors(devices, tmp_path, args, fragment):
    _, db = devices
    assert_one_line_error(evaluate(db, *args, "--out", str(tmp_path / "o"), cwd=tmp_path),
                          fragment)


def test_missing_database_is_an_error(tmp_path):
    assert_one_line_error(evaluate(tmp_path / "none.db", "--target", "x", cwd=tmp_path),
                          "none.db")


def test_tuning_picks_the_grid_point_with_the_lowest_cross_validated_error():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(120, 3))
    latency = np.exp(X @ np.array([1.0, 2.0, 0.5])) * 1e-3
    chosen = tune(KNNEstimator(n_neighbors=20, weights="uniform"), X, latency, seed=0)
    assert chosen.get_params() != KNNEstimator(n_neighbors=20, weights="uniform").get_params()
    scores = {(p["n_neighbors"], p["weights"]): cross_validated_mape(
        clone_estimator(KNNEstimator()).set_params(**p), X, latency, 0)
        for p in grid_points(KNNEstimator.param_grid, None, 0)}
    best = min(scores, key=scores.get)
    assert (chosen.n_neighbors, chosen.weights) == best
    assert len(grid_points(KNNEstimator.param_grid, 3, 0)) == 3


def test_metrics_on_known_values():
    measured = np.array([1.0, 2.0, 4.0, 8.0])
    predicted = np.array([1.04, 2.3, 4.0, 7.0])
    m = regression_metrics(measured, predicted)
    assert m["within_5pct"] == 0.5 and m["within_10pct"] == 0.5
    assert m["mae"] == pytest.approx((0.04 + 0.3 + 0 + 1) / 4)
    relative = np.array([0.04, 0.15, 0.0, 0.125])
    assert m["mape"] == pytest.approx(relative.mean())
    assert m["rmspe"] == pytest.approx(np.sqrt((relative**2).mean()))
    assert m["spearman"] == 1.0


