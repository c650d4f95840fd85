"""``lenna report``: a small real campaign on two backends rendered as Markdown, HTML, CSV and
JSON; rendering from the store alone; two reports combined; user columns; the page opened in
headless Chromium."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import pytest
from conftest import assert_one_line_error, run_lenna

LENET = '{"model": "lenet5", "dataset": "mnist", "optimizer": "sgd", "batch_size": 32}'
RESNET = '{"model": "resnet-small", "dataset": "cifar10", "optimizer": "sgd", "batch_size": 32}'
MEASURE = ["--source", "training-workloads", "--arch", LENET, "--arch", RESNET,
           "--batch-size", "4", "--protocol", "fixed:12", "--passes", "1"]
LENET_PARAMS = 6 * 25 + 6 + 16 * 6 * 25 + 16 + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One report of LeNet-5 and ResNet-20 on onnxruntime and torch-cpu, both modes."""
    base = tmp_path_factory.mktemp("report")
    result = run_lenna("report", *MEASURE, "--backends", "onnxruntime,torch-cpu",
                       "--out", str(base / "out"), "--db", str(base / "l.db"))
    assert result.returncode == 0, result.stderr
    return base, result


def _data(base, name="out"):
    return json.loads((base / name / "report.json").read_text())


def test_the_report_holds_every_label_the_backends_can_take(made):
    base, result = made
    data = _data(base)
    cells = {(lb["model"], lb["target"], lb["mode"]) for lb in data["labels"]}
    # onnxruntime has no training step: absent, not zero
    assert cells == {(m, t, mode) for m in ("lenet5", "resnet-small")
                     for t, mode in (("onnxruntime", "inference"), ("torch-cpu", "inference"),
                                     ("torch-cpu", "training"))}
    for label in data["labels"]:
        assert label["status"] in ("ok", "contended") and label["runs"] >= 12
        assert label["low_ms"] <= label["latency_ms"] <= label["high_ms"]
    lenet = next(m for m in data["models"] if m["name"] == "lenet5")
    assert lenet["params"] == LENET_PARAMS and lenet["input"] == "1×28×28"
    assert [t["key"] for t in data["targets"]] == ["onnxruntime", "torch-cpu"]
    assert data["targets"][1]["system"]["frameworks"]["torch"]
    assert "measuring 2 workloads on onnxruntime (1/2)" in result.stderr
    assert "measuring 4 workloads on torch-cpu (2/2)" in result.stderr


def test_speedups_are_the_baseline_latency_over_each_target(made):
    base, _ = made
    data = _data(base)
    latency = {(lb["model"], lb["target"], lb["mode"]): lb["latency_ms"]
               for lb in data["labels"]}
    ups = {(u["model"], u["mode"], u["target"]): u["speedup"] for u in data["speedups"]}
    assert ups[("lenet5", "inference", "onnxruntime")] == 1.0
    assert ups[("lenet5", "inference", "torch-cpu")] == pytest.approx(
        latency[("lenet5", "onnxruntime", "inference")]
        / latency[("lenet5", "torch-cpu", "inference")])
    assert ("lenet5", "training", "torch-cpu") not in ups  # no baseline for training


def test_markdown_csv_and_html_show_the_same_figures(made):
    base, _ = made
    data = _data(base)
    md = (base / "out" / "report.md").read_text()
    assert "| Model | Params | MACs | Input | Batch | Library | Backends | CPU(P) ms | " \
           "CPU(T) ms | Host MB (P) | Host MB (T) |" in md
    assert "GPU(P)" not in md  # no GPU target
    lenet_ort = next(lb for lb in data["labels"]
                     if lb["model"] == "lenet5" and lb["target"] == "onnxruntime")
    row = next(line for line in md.splitlines()
               if line.startswith("| lenet5 |") and "| onnxruntime |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[7].startswith(f"{lenet_ort['latency_ms']:.3g} ±")
    assert cells[8] == ""  # onnxruntime trains nothing: the cell is empty
    assert "![lenet5](plots/lenet5.png)" in md
    assert (base / "out" / "plots" / "lenet5.png").read_bytes()[:4] == b"\x89PNG"

    rows = list(csv.DictReader((base / "out" / "report.csv").open()))
    assert len(rows) == len(data["labels"]) == 6
    assert {float(r["latency_ms"]) for r in rows} == {lb["latency_ms"] for lb in data["labels"]}

    page = (base / "out" / "report.html").read_text()
    assert [t for t in re.findall(r'<table id="(\w+)"', page)] == ["system", "models",
                                                                   "speedups"]
    models = page.split('<table id="models"')[1].split("</table>")[0]
    assert models.count("<tr>") == 1 + 4  # the header; each model on two libraries
    assert "http://" not in page and "https://" not in page  # viewable offline
    assert page.count('src="data:image/png;base64,') == 2


def test_from_db_renders_the_same_labels_without_measuring(made, tmp_path):
    base, _ = made
    again = run_lenna("report", *MEASURE, "--from-db", "--out", str(tmp_path / "again"),
                      "--db", str(base / "l.db"))
    assert again.returncode == 0, again.stderr
    assert "measuring" not in again.stderr
    assert _data(tmp_path, "again")["labels"] == _data(base)["labels"]
    only = run_lenna("report", *MEASURE, "--from-db", "--backends", "torch-cpu", "--out",
                     str(tmp_path / "only"), "--db", str(base / "l.db"))
    assert only.returncode == 0, only.stderr
    assert {lb["target"] for lb in _data(tmp_path, "only")["labels"]} == {"torch-cpu"}


def test_reports_of_two_machines_combine_side_by_side(made, tmp_path):
    base, _ = made
    other = _data(base)
    for target in other["targets"]:  # the same report as another machine would write it
        target["id"] = target["id"][::-1]
        target["machine"] = "Pi 5 ×4"
        target["system"]["cpu"] = "Pi 5"
    (tmp_path / "pi").mkdir()
    (tmp_path / "pi" / "report.json").write_text(json.dumps(other))
    result = run_lenna("report", "--combine", str(base / "out"), "--combine",
                       str(tmp_path / "pi"), "--baseline", "onnxruntime @ Pi 5 ×4",
                       "--out", str(tmp_path / "both"))
    assert result.returncode == 0, result.stderr
    data = _data(tmp_path, "both")
    assert len(data["targets"]) == 4 and len(data["labels"]) == 12
    machine = data["targets"][0]["machine"]
    assert [t["key"] for t in data["targets"]] == [
        f"onnxruntime @ {machine}", f"torch-cpu @ {machine}", "onnxruntime @ Pi 5 ×4",
        "torch-cpu @ Pi 5 ×4"]
    md = (tmp_path / "both" / "report.md").read_text()
    assert "| Machine |" in md and "## Speed-ups against onnxruntime @ Pi 5 ×4" in md
    # the same labels on both "machines": every speed-up of the same library is 1
    ups = {(u["model"], u["mode"], u["target"]): u["speedup"] for u in data["speedups"]}
    assert ups[("lenet5", "inference", f"onnxruntime @ {machine}")] == 1.0


def test_user_columns_join_by_model_name(made, tmp_path):
    base, _ = made
    (tmp_path / "acc.csv").write_text("model,accuracy,loss\nlenet5,0.991,0.03\nvgg,0.9,1\n")
    result = run_lenna("report", "--combine", str(base / "out"), "--columns",
                       str(tmp_path / "acc.csv"), "--out", str(tmp_path / "cols"))
    assert result.returncode == 0, result.stderr
    models = {m["name"]: m["columns"] for m in _data(tmp_path, "cols")["models"]}
    assert models == {"lenet5": {"accuracy": 0.991, "loss": 0.03}, "resnet-small": {}}
    md = (tmp_path / "cols" / "report.md").read_text()
    assert "| accuracy | loss |" in md.splitlines()[next(
        i for i, line in enumerate(md.splitlines()) if line.startswith("| Model |"))]
    rows = list(csv.DictReader((tmp_path / "cols" / "report.csv").open()))
    assert {r["accuracy"] for r in rows if r["model"] == "lenet5"} == {"0.991"}


@pytest.mark.parametrize(("args", "message"), [
    (["--source", "training-workloads", "--arch", LENET, "--backends", "onnxruntim"],
     "unknown backend 'onnxruntim'"),
    (["--source", "training-workloads", "--arch", LENET, "--from-db", "--targets", "pi9",
      "--db", "{made}/l.db"], "no target 'pi9' in"),
    (["--source", "training-workloads", "--arch", LENET, "--from-db", "--db", "{tmp}/none.db"],
     "database {tmp}/none.db does not exist"),
    (["--combine", "{made}/out", "--columns", "{tmp}/nomodel.csv"],
     "has no column 'model' (its columns: name, accuracy)"),
    (["--combine", "{made}/out", "--baseline", "tensorflow"],
     "--baseline 'tensorflow' is not a target of the report"),
    (["--source", "training-workloads", "--arch", LENET, "--backends", "onnxruntime",
      "--baseline", "torch-cpu"], "--baseline 'torch-cpu' is none of --backends and --targets"),
    (["--combine", "{tmp}"], "no report.json there"),
    (["--combine", "{made}/out", "--out", "/proc/report"], "cannot write to --out"),
    (["--source", "training-workloads", "--arch", LENET, "--modes", "inference,fast",
      "--backends", "onnxruntime"], "--modes must be a comma list of inference, training"),
    (["--backends", "onnxruntime"], "give the models to report with --models or --arch"),
])
def test_bad_input_is_one_line_and_nothing_is_written(made, tmp_path, args, message):
    base, _ = made
    (tmp_path / "nomodel.csv").write_text("name,accuracy\nlenet5,0.9\n")
    before = (base / "l.db").stat().st_mtime_ns
    fill = {"made": str(base), "tmp": str(tmp_path)}
    result = run_lenna("report", *(a if a.startswith("{\"") else a.format(**fill)
                                   for a in args), cwd=tmp_path)
    assert_one_line_error(result, message.format(**fill))
    assert not (tmp_path / "report").exists()
    assert (base / "l.db").stat().st_mtime_ns == before


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (.ci/run installs it)")
def test_headless_chromium_renders_the_tables(made, tmp_path):
    base, _ = made
    page = base / "out" / "report.html"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # the script ran (it marks the body) and the DOM holds the tables with their rows
    assert 'data-sortable="ready"' in dom.stdout
    models = dom.stdout.split('<table id="models"')[1].split("</table>")[0]
    assert models.count("<tr>") == 5 and "lenet5" in models
    shot = tmp_path / "report.png"
    done = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1400,1000",
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
