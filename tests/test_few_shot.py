"""lenna transfer --anchors: a new device ranked from a few measured architectures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import assert_one_line_error, run_lenna

from lenna_core.transfer.few_shot import (
    MAPPING_ALPHAS,
    METHOD_FUNCTIONS,
    ridge,
    ridge_loo_error,
)
from lenna_nasbench201.cells import all_arch_strings, canonical_arch, parse_arch

COST = {"none": 0.0, "skip_connect": 0.05, "nor_conv_1x1": 0.4, "nor_conv_3x3": 1.2,
        "avg_pool_3x3": 0.3}
DEVICES = {"fast": {}, "slow": {"nor_conv_3x3": 2.0}, "pooly": {"avg_pool_3x3": 1.5},
           "new": {"nor_conv_3x3": 1.8, "avg_pool_3x3": 0.4}}
"""Per device, op costs that differ from COST: "new" is nearest to "slow"."""


def latency(arch: str, device: str, rng: np.random.Generator) -> float:
    costs = {**COST, **DEVICES[device]}
    return (1.0 + sum(costs[op] for op in parse_arch(arch))) * (1 + 0.01 * rng.normal())


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """400 distinct cells on four devices, the last 20 cells measured on "new" only."""
    base = tmp_path_factory.mktemp("few-shot")
    distinct = sorted({canonical_arch(a) for a in all_arch_strings()})
    rng = np.random.default_rng(0)
    cells = [distinct[i] for i in rng.choice(len(distinct), 400, replace=False)]
    rows = [(arch, device, latency(arch, device, rng))
            for i, arch in enumerate(cells) for device in DEVICES
            if device == "new" or i < 380]
    path = base / "m.csv"
    pd.DataFrame(rows, columns=["arch", "device", "ms"]).to_csv(path, index=False)
    result = run_lenna("import", str(path), "--source", "nasbench201", "--arch-col", "arch",
                       "--target-cols", "device", "--latency-col", "ms",
                       "--db", str(base / "l.db"))
    assert result.returncode == 0, result.stderr
    return base / "l.db"


def transfer(db, *args: str, cwd=None):
    return run_lenna("transfer", "--db", str(db), "--source", "nasbench201", *args, cwd=cwd)


@pytest.mark.slow
def test_methods_compared_in_one_table(db):
    result = transfer(db, "--anchors", "fast,slow,pooly", "--target", "new", "--shots", "10",
                      "--anchor-samples", "200", "--repeats", "3", "--method", "all",
                      "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["methods"]) == {"shots", "ratio", "mapping", "blend"}
    assert report["architectures"] == 400 and report["features"] == ["nb201-encoding"]
    for method in report["methods"].values():
        assert len(method["repeats"]) == 3
        assert method["spearman"] == pytest.approx(
            np.mean([r["spearman"] for r in method["repeats"]]))
    methods = report["methods"]
    # the anchors know the space: every anchor-based method ranks far better than the shots
    assert min(methods[m]["spearman"] for m in ("ratio", "mapping", "blend")) > 0.9
    assert methods["shots"]["spearman"] < methods["blend"]["spearman"]
    assert methods["blend"]["within_10pct"] > 0.5
    text = transfer(db, "--anchors", "fast,slow,pooly", "--target", "new", "--repeats", "2",
                    "--anchor-samples", "200", "--method", "all")
    assert text.returncode == 0 and "blend" in text.stdout and "Spearman" in text.stdout


def test_one_method_prints_the_issue_s_json(db):
    result = transfer(db, "--anchors", "fast,slow", "--target", "new", "--shots", "5",
                      "--anchor-samples", "100", "--repeats", "2", "--method", "ratio",
                      "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"spearman", "kendall", "mape", "within_10pct", "repeats"}


def test_zero_shots_rank_by_the_anchors_consensus(db):
    result = transfer(db, "--anchors", "fast,slow,pooly", "--target", "new", "--shots", "0",
                      "--anchor-samples", "200", "--repeats", "2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["spearman"] > 0.8


@pytest.mark.parametrize(("args", "fragment"), [
    (("--anchors", "fast", "--target", "mars"), "unknown target 'mars'; targets in the "
                                                "store: fast, new, pooly, slow"),
    (("--anchors", "fast,new", "--target", "new"), "cannot be one of its own anchors"),
    (("--anchors", "fast", "--target", "new", "--shots", "500"),
     "have 380 architecture(s) in common; --shots 500"),
    (("--anchors", "fast", "--target", "new", "--shots", "0", "--method", "mapping"),
     "method mapping needs at least 2 shot(s)"),
    (("--anchors", "fast", "--target", "new", "--method", "oracle"), "unknown method oracle"),
    (("--target", "new"), "give --anchors"),
    (("--anchors", "fast", "--anchor", "slow", "--target", "new"), "give --anchors"),
])
def test_bad_requests_are_one_line_errors(db, tmp_path, args, fragment):
    assert_one_line_error(transfer(db, *args, cwd=tmp_path), fragment)


def test_anchors_without_common_architectures(tmp_path):
    rows = [(a, "one" if i % 2 else "two", 1.0 + i % 7)
            for i, a in enumerate(sorted({canonical_arch(x) for x in all_arch_strings()})[:40])]
    path = tmp_path / "m.csv"
    pd.DataFrame(rows, columns=["arch", "device", "ms"]).to_csv(path, index=False)
    run_lenna("import", str(path), "--source", "nasbench201", "--arch-col", "arch",
              "--target-cols", "device", "--latency-col", "ms", "--db", str(tmp_path / "l.db"))
    assert_one_line_error(transfer(tmp_path / "l.db", "--anchors", "one", "--target", "two",
                                   cwd=tmp_path),
                          "have 0 architecture(s) in common", "one: 20", "two: 20")


def test_ridge_methods_match_scikit_learn():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    encoding = (rng.random((60, 30)) < 0.2).astype(float)  # more features than shots
    y = encoding @ rng.normal(size=30) * 0.1 + rng.normal(size=60) * 0.05
    predicted = np.column_stack([y * a + b + rng.normal(size=60) * s
                                 for a, b, s in ((1.0, 0.1, 0.3), (0.8, 0.5, 0.05), (2, 0, 1))])
    shots = np.arange(0, 60, 6)
    expected = linear_model.Ridge(alpha=1.0).fit(encoding[shots], y[shots]).predict(encoding)
    np.testing.assert_allclose(METHOD_FUNCTIONS["shots"](predicted, shots, y, encoding),
                               expected, atol=1e-6)
    for scale in (1.0, 100.0):
        ridge_cv = linear_model.RidgeCV(alphas=MAPPING_ALPHAS, store_cv_results=True)
        model = ridge_cv.fit(predicted[shots] * scale, y[shots])
        np.testing.assert_allclose(
            [ridge_loo_error(predicted[shots] * scale, y[shots], a) for a in MAPPING_ALPHAS],
            model.cv_results_.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(
            METHOD_FUNCTIONS["mapping"](predicted * scale, shots, y, encoding),
            model.predict(predicted * scale), atol=1e-6)


def test_two_shots_map_with_the_smallest_alpha():
    """With two shots, leaving one out predicts it by the other whatever the alpha."""
    predicted = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
    y = np.array([0.5, 1.5, 0.0])
    shots = np.array([0, 1])
    errors = [ridge_loo_error(predicted[shots], y[shots], a) for a in MAPPING_ALPHAS]
    assert errors == pytest.approx([1.0] * len(MAPPING_ALPHAS))
    intercept, coef = ridge(predicted[shots], y[shots], 0.01)
    np.testing.assert_allclose(METHOD_FUNCTIONS["mapping"](predicted, shots, y, None),
                               intercept + predicted @ coef)


def test_the_methods_run_without_scikit_learn():
    code = ("import sys; import numpy as np; "
            "from lenna_core.transfer.few_shot import METHOD_FUNCTIONS; "
            "p = np.arange(12.0).reshape(6, 2) ** 1.5; y = np.arange(6.0); "
            "[f(p, np.arange(4), y, p) for f in METHOD_FUNCTIONS.values()]; "
            "print('sklearn' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout == "False\n"
