"""End to end through the CLI: run, reuse, predict, export, and one-line errors on bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, assert_one_line_error, make_distribution, run_lenna

from lenna_core.measurement.host import has_cuda_device

SMALL = ("--source-option", "input_size=32", "--source-option", "max_depth_factor=0.5",
         "--source-option", "max_width_factor=1.5")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One real `lenna run` on ONNX Runtime with LightGBM, shared by the tests below (about a
    minute, so every test that uses it is marked slow)."""
    base = tmp_path_factory.mktemp("run")
    out, db = base / "out", base / "lenna.db"
    result = run_lenna("run", "--n", "16", "--seed", "3", "--repeats", "3", *SMALL,
                       "--reference", "--keep-contended", "--out", str(out), "--db", str(db))
    assert result.returncode == 0, result.stderr
    return base, out, db, result


@pytest.mark.slow
def test_run_writes_report_plot_and_predictor(finished_run):
    _, out, db, result = finished_run
    report = json.loads((out / "report.json").read_text())
    keys = {"r2", "rmse", "mape", "within_10pct", "spearman", "kendall"}
    assert keys <= set(report["metrics"])
    assert all(isinstance(report["metrics"][k], float) for k in keys)
    counts = report["measurements"]
    assert counts["new"] == 16 and counts["failed"] == 0
    assert counts["rows"] == 16  # contended labels are fitted too (--keep-contended)
    assert len(report["per_split"]) == 3
    # the saved predictor, fitted on every label, ranks those labels: with 3 test rows a split
    # the cross-validated Spearman is noise, but latency grows with the architecture
    assert _predictor_ranks_its_labels(out, db) > 0.9
    assert (out / "predicted_vs_measured.png").read_bytes()[:4] == b"\x89PNG"
    manifest = json.loads((out / "predictor" / "predictor.json").read_text())
    assert manifest["estimator"]["name"] == "additive-lightgbm"
    assert manifest["featurizers"] == [{"name": "layer-stats", "version": "2"}]
    assert {"model.txt", "additive.json"} <= set(manifest["files"])
    assert "Spearman" in result.stdout and "within ±10%" in result.stdout
    assert "measuring on onnxruntime" in result.stderr


def _predictor_ranks_its_labels(out, db) -> float:
    """Spearman's rank correlation of the run's predictor with the labels it was fitted on
    (those not taken under contention)."""
    from scipy.stats import spearmanr

    from lenna_core.data.dataset import load_dataset
    from lenna_core.data.store import Store
    from lenna_core.learning.predictor import load_predictor
    from lenna_core.plugins.registry import make_registry

    registry = make_registry()
    store = Store(str(db), create=False)
    data = load_dataset(store, registry.create("source", "resnet-family", dict(
        input_size=32, max_depth_factor=0.5, max_width_factor=1.5)), store.targets())
    predictor = load_predictor(out, registry)
    predicted = [predictor.predict_seconds(w) for w in data.workloads]
    assert len(predicted) >= 5
    return float(spearmanr(predicted, data.latency).statistic)


@pytest.mark.slow
def test_second_run_reuses_every_measurement(finished_run, tmp_path):
    _, _, db, _ = finished_run
    result = run_lenna("run", "--n", "16", "--seed", "3", "--repeats", "2", *SMALL,
                       "--reference", "--keep-contended", "--out", str(tmp_path / "again"),
                       "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "0 new, 16 reused" in result.stderr


@pytest.mark.slow
def test_predict_from_architecture_file_and_onnx(finished_run, tmp_path):
    _, out, _, _ = finished_run
    arch = tmp_path / "arch.json"
    assert run_lenna("sample", *SMALL, "--seed", "11", "--out", str(arch)).returncode == 0
    result = run_lenna("predict", "--predictor", str(out), "--arch", str(arch), "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["arch_id"] == json.loads(arch.read_text())["id"]
    assert 0.01 < answer["latency_ms"] < 10_000

    onnx = pytest.importorskip("onnx")
    from lenna_core.ir import Graph, init_weights
    from lenna_onnxruntime.convert import graph_to_onnx

    graph = Graph.from_dict(json.loads(arch.read_text())["graph"])
    onnx.save(graph_to_onnx(graph, init_weights(graph), 1), tmp_path / "m.onnx")
    from_onnx = run_lenna("predict", "--predictor", str(out), "--onnx", str(tmp_path / "m.onnx"),
                          "--json")
    assert from_onnx.returncode == 0, from_onnx.stderr
    assert json.loads(from_onnx.stdout)["latency_ms"] == pytest.approx(answer["latency_ms"])


@pytest.mark.slow
def test_tampered_or_stale_predictor_is_refused(finished_run, tmp_path):
    _, out, _, _ = finished_run
    arch = tmp_path / "arch.json"
    run_lenna("sample", *SMALL, "--out", str(arch))
    copy = tmp_path / "copy"
    shutil.copytree(out / "predictor", copy)
    model = copy / "model.txt"
    model.write_text(model.read_text().replace("learning_rate", "learning_rat3", 1))
    assert_one_line_error(run_lenna("predict", "--predictor", str(copy), "--arch", str(arch)),
                          "model.txt has been modified")
    shutil.copy(out / "predictor" / "model.txt", model)
    manifest = json.loads((copy / "predictor.json").read_text())
    manifest["featurizers"][0]["version"] = "0"
    (copy / "predictor.json").write_text(json.dumps(manifest))
    assert_one_line_error(run_lenna("predict", "--predictor", str(copy), "--arch", str(arch)),
                          "modified since it was saved")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_one_row_per_measurement_with_features(finished_run, tmp_path, fmt):
    _, _, db, _ = finished_run
    path = tmp_path / f"m.{fmt}"
    result = run_lenna("export", str(path), "--format", fmt, "--db", str(db))
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    assert len(frame) == 16
    assert frame["arch_id"].is_unique
    assert {"latency_ns", "median_ns", "reference_median_ns", "ratio", "backend",
            "layer-stats.macs", "layer-stats.params"} <= set(frame)
    assert (frame["median_ns"] > 0).all()
    # the reference series calibrates each row; it is not a row of its own
    assert frame["source"].eq("resnet-family").all()
    baseline = frame["reference_median_ns"].median()
    assert np.allclose(frame["latency_ns"], frame["ratio"] * baseline)


@pytest.mark.slow
def test_example_plugin_is_found_and_usable(finished_run, tmp_path):
    base, _, db, _ = finished_run
    example = ROOT / "examples" / "lenna-example-plugin"
    meta = make_distribution(tmp_path / "meta", "lenna-example-plugin", "0.1.0",
                             {"example": "lenna_example_plugin"}, {})
    listed = run_lenna("plugins", "--json", pythonpath=[meta, example])
    row = next(r for r in json.loads(listed.stdout) if r["name"] == "power-law")
    assert row["kind"] == "estimator" and row["distribution"] == "lenna-example-plugin"
    result = run_lenna("run", "--n", "16", "--seed", "3", "--repeats", "2", *SMALL,
                       "--reference", "--estimator", "power-law", "--out", str(tmp_path / "pl"),
                       "--db", str(db), pythonpath=[meta, example])
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "pl" / "report.json").read_text())["estimator"] == "power-law"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("run", "--backend", "onnxruntim"), ("unknown backend 'onnxruntim'", "available:",
                                              "did you mean 'onnxruntime'")),
        (("run", "--estimator", "xgboost"), ("unknown estimator 'xgboost'", "lightgbm")),
        (("run", "--source", "nope"), ("unknown source 'nope'", "resnet-family")),
        (("run", "--n", "0"), ("--n must be at least 1",)),
        (("run", "-O", "colour=red"), ("source resnet-family has no option colour",)),
        (("run", "-O", "input_size=8"), ("input_size",)),
        (("predict", "--predictor", "nowhere", "--arch", "a.json"), ("no predictor at",)),
        (("export", "x.csv", "--db", "missing.db"), ("missing.db does not exist",)),
        (("run", "--bogus"), ("No such option: --bogus", "lenna run --help")),
        (("run", "--n", "many"), ("Invalid value for '--n'",)),
        (("frobnicate",), ("No such command 'frobnicate'",)),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, fragments):
    assert_one_line_error(run_lenna(*args, cwd=tmp_path), *fragments)
    assert not (tmp_path / "lenna.db").exists()


@pytest.mark.slow
def test_unknown_export_format(finished_run, tmp_path):
    _, _, db, _ = finished_run
    result = run_lenna("export", str(tmp_path / "x.json"), "--format", "json", "--db", str(db))
    assert_one_line_error(result, "unknown export format 'json'")


def test_corrupt_database_is_refused_and_untouched(tmp_path):
    db = tmp_path / "bad.db"
    db.write_bytes(b"garbage" * 500)
    result = run_lenna("run", "--n", "2", "--db", str(db), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "bad.db", "file is not a database")
    assert db.read_bytes() == b"garbage" * 500


def test_unwritable_out_is_refused_before_measuring(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run_lenna("run", "--out", str(blocker / "sub"), "--db", str(tmp_path / "l.db"))
    assert_one_line_error(result, "cannot write to --out")
    assert not (tmp_path / "l.db").exists()


@pytest.mark.slow
def test_malformed_architecture_and_onnx_files(finished_run, tmp_path):
    _, out, _, _ = finished_run
    bad = tmp_path / "bad.json"
    bad.write_text("{\"nodes\": [")
    assert_one_line_error(run_lenna("predict", "--predictor", str(out), "--arch", str(bad)),
                          "not valid JSON")
    bad.write_text(json.dumps({"nodes": [{"name": "x", "op": "input", "attrs": {"shape": [3]}},
                                         {"name": "c", "op": "conv2d", "inputs": ["x"],
                                          "attrs": {"out_channels": 4, "kernel_size": 3}}],
                               "outputs": ["c"]}))
    assert_one_line_error(run_lenna("predict", "--predictor", str(out), "--arch", str(bad)),
                          "node 'c' (conv2d)")
    onnx = tmp_path / "bad.onnx"
    onnx.write_bytes(b"\x00\x01 not a model")
    assert_one_line_error(run_lenna("predict", "--predictor", str(out), "--onnx", str(onnx)),
                          "bad.onnx")


def test_cli_reference_is_current():
    import subprocess
    import sys

    generated = subprocess.run(
        [sys.executable, "-m", "typer", "lenna_core.cli", "utils", "docs", "--name", "lenna"],
        capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert generated.strip() == (ROOT / "docs" / "cli.md").read_text().strip(), (
        "docs/cli.md is stale: typer lenna_core.cli utils docs --name lenna --output docs/cli.md")


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_run_stops_cleanly_and_resumes(tmp_path, sig):
    import signal
    import subprocess
    import sys

    db = tmp_path / "l.db"
    args = ["run", "--n", "8", *SMALL, "--protocol", "fixed:30", "--profile-runs", "0",
            "--db", str(db), "--out", str(tmp_path / "o")]
    proc = subprocess.Popen([sys.executable, "-m", "lenna_core", *args], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    labels = 0
    for line in proc.stderr:
        labels += " passes)" in line  # a final label, committed with its passes dropped
        if labels == 3:
            break
    proc.send_signal(getattr(signal, sig))
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    assert "interrupted: everything committed so far is kept" in rest
    assert "Traceback" not in rest
    exported = run_lenna("export", str(tmp_path / "m.csv"), "--format", "csv", "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    kept = len(pd.read_csv(tmp_path / "m.csv"))
    assert 3 <= kept < 8
    resumed = run_lenna(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{8 - kept} new, {kept} reused, 0 failed" in resumed.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch-cpu", "tensorflow"])
def test_training_steps_are_measured_with_an_optimizer(tmp_path, backend):
    pytest.importorskip("torch" if backend == "torch-cpu" else "tensorflow")
    db = tmp_path / "l.db"
    result = run_lenna("run", "--backend", backend, "--mode", "training", "--optimizer", "adam",
                       "--batch-size", "2", "--n", "6", *SMALL, "--protocol", "fixed:10",
                       "--passes", "1", "--threads", "1", "--cpus", "0", "--estimator", "linear",
                       "--repeats", "1", "--out", str(tmp_path / "o"), "--db", str(db))
    assert result.returncode == 0, result.stderr
    run_lenna("export", str(tmp_path / "m.csv"), "--format", "csv", "--db", str(db))
    frame = pd.read_csv(tmp_path / "m.csv")
    assert (frame["mode"] == "training").all() and (frame["optimizer"] == "adam").all()
    assert (frame["batch_size"] == 2).all() and (frame["status"] == "ok").all()
    profile = json.loads(frame["op_profile"][0])
    assert profile["lenna"]["conv2d"] > 0 and 0.3 < profile["sum_over_end_to_end"] < 3


@pytest.mark.parametrize(("args", "fragment"), [
    (("--backend", "onnxruntime", "--mode", "training"),
     "backend onnxruntime supports inference, not training"),
    (("--backend", "torch-cpu", "--mode", "training", "--optimizer", "lbfgs"),
     "backend torch-cpu has no optimizer 'lbfgs'; available: sgd, adam"),
    (("--optimizer", "adam",), "--optimizer applies to --mode training only"),
    (("--protocol", "fixed",), "fixed needs a run count"),
    (("--cpus", "0,99",), "--cpus 0,99: usable CPUs are"),
    pytest.param(("--backend", "torch-cuda"),
                 "backend 'torch-cuda' is unavailable: no CUDA device",
                 marks=pytest.mark.skipif(has_cuda_device(), reason="a CUDA device is present")),
])
def test_impossible_measurement_settings(tmp_path, args, fragment):
    assert_one_line_error(run_lenna("run", *args, cwd=tmp_path), fragment)
    assert not (tmp_path / "lenna.db").exists()


def test_features_of_one_architecture_as_json():
    spec = json.dumps({"block": "basic", "blocks": [2, 2, 2, 2], "width": 64,
                       "input_size": 224})
    result = run_lenna("features", "--source", "resnet-family", "--arch", spec,
                       "--features", "layer-stats", "--json")
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["params"] == 11_689_512  # torchvision's resnet18
    assert values["macs"] == pytest.approx(1.82e9, rel=0.01)
    sampled = run_lenna("features", "--seed", "4", "--json", "--features",
                        "layer-stats,layer-stats")
    assert sampled.returncode == 0, sampled.stderr
    assert "layer-stats.macs" in json.loads(sampled.stdout)


def test_layers_lists_every_conv_layer():
    spec = json.dumps({"block": "basic", "blocks": [2, 2, 2, 2], "width": 64,
                       "input_size": 224})
    result = run_lenna("layers", "--arch", spec, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 20  # 17 convs on the main path and 3 downsampling shortcuts
    assert rows[0] == {"name": "conv1", "kernel": 7, "filters": 64, "in_channels": 3, "H": 224,
                       "W": 224, "stride": 2, "groups": 1, "dilation": 1}
    table = run_lenna("layers", "--arch", spec).stdout.splitlines()
    assert len(table) == 21 and table[1].split()[:7] == ["conv1", "7", "64", "3", "224", "224",
                                                         "2"]


@pytest.mark.parametrize(("args", "fragment"), [
    (("features", "--arch", "{\"block\": \"triangle\"}"), "block"),
    (("features", "--arch", "deadbeef", "--db", "missing.db"), "missing.db does not exist"),
    (("features", "--seed", "1", "--arch", "{}"), "give exactly one of"),
    (("layers", "--arch", "{bad json"), "--arch is not valid JSON"),
])
def test_bad_architecture_arguments(tmp_path, args, fragment):
    assert_one_line_error(run_lenna(*args, cwd=tmp_path), fragment)


@pytest.mark.slow
def test_a_predictor_is_found_in_the_out_of_lenna_run(finished_run):
    """``lenna layers --predictor`` takes the --out of lenna run, as ``lenna predict`` does:
    the bundle loads, and the command stops at the next check (the backend it was fitted on)."""
    from lenna_core.learning.predictor import load_predictor
    from lenna_core.plugins.registry import make_registry

    _, out, _, _ = finished_run
    registry = make_registry()
    assert (load_predictor(out, registry).manifest
            == load_predictor(out / "predictor", registry).manifest)
    result = run_lenna("layers", "--seed", "1", "--predictor", str(out), "--backend",
                       "torch-cpu")
    assert_one_line_error(result, "the predictor was fitted on onnxruntime measurements; "
                                  "measure on the same backend with --backend onnxruntime")


def test_tables_on_a_terminal_with_stdin_redirected():
    """A table sized for a terminal on stdout, whatever stdin is (here /dev/null)."""
    import os
    import pty

    main, replica = pty.openpty()
    try:
        result = subprocess.run([sys.executable, "-m", "lenna_core", "plugins"],
                                stdin=subprocess.DEVNULL, stdout=replica,
                                stderr=subprocess.PIPE, text=True, timeout=120)
        os.close(replica)
        output = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(main)
    assert result.returncode == 0, result.stderr
    assert b"onnxruntime" in output and b"availability" in output
