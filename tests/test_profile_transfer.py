"""Profile transfer on real torch-cpu measurements: training workloads profiled on one
thread (the anchor's 14) and on two threads (its first 12), predicted in both directions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_one_line_error, run_lenna
from scipy import stats

from lenna_core.data.dataset import resolve_target, target_label
from lenna_core.data.store import Store, measurement_from_row
from lenna_core.errors import LennaError
from lenna_core.learning.metrics import METRICS
from lenna_core.plugins.registry import make_registry
from lenna_core.transfer.profiles import profile_vectors, top_columns, transfer_profiles

SOURCE = "training-workloads"
SEED = "175"
"""Samples 14 workloads whose ResNet and VGG batch sizes differ (16, 32, 256 and 32, 64, 256),
so held-out rankings are not coin flips, and which measure quickly."""
ANCHOR_N, TARGET_N = 14, 12
"""One seed samples both runs: the two-thread workloads are the first 12 of the anchor's."""
MIN_SPEARMAN = 0.5
"""Spearman of the end-to-end predictions: the mean over held-out models, or pooled over the
random splits' test rows (0.90 to 0.97 measured)."""
PASSIVE = {"OMP_WAIT_POLICY": "passive"}
"""On a busy host, OpenMP threads spinning at each barrier wait for descheduled peers: a
LeNet-5 step took 400 ms on two threads instead of 8 ms with passive waiting."""


def _measure(db, out, n: int, *options: str, models: str = "lenet5,vgg-small,resnet-small",
             env: dict[str, str] | None = None) -> None:
    result = run_lenna("run", "--source", SOURCE, "-O", f"models={models}",
                       "-O", "datasets=mnist", "--backend", "torch-cpu", "--n", str(n),
                       "--seed", SEED, "--protocol", "fixed:3", "--passes", "1", "--no-reference",
                       "--estimator", "linear", "--repeats", "1", "--out", str(out),
                       "--db", str(db), *options, env=env)
    assert result.returncode == 0, result.stderr


pytestmark = pytest.mark.slow  # every test shares one measured campaign of about a minute


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The store and its targets: one thread, two threads and one without profiles."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("transfer")
    db = root / "lenna.db"
    _measure(db, root / "one", ANCHOR_N, "--threads", "1", "--profile-runs", "2")
    _measure(db, root / "two", TARGET_N, "--threads", "2", "--profile-runs", "2", env=PASSIVE)
    _measure(db, root / "bare", 5, "--threads", "1", "--cpus", "0", "--profile-runs", "0",
             models="lenet5")
    store = Store(str(db), create=False)
    stored = store.targets()
    by_label = {target_label(t, stored): t for t in stored}
    assert all(label.startswith("torch-cpu@") for label in by_label)
    targets = {}
    for label, target in by_label.items():
        assert resolve_target(store, label).id == target.id  # Targets equal by backend
        fingerprint = target.fingerprint
        key = "bare" if fingerprint["cpus"] else fingerprint["threads_setting"]
        targets[key] = target
    return store, targets[1], targets[2], targets["bare"]


def profiled_ids(store: Store, target) -> set[str]:
    """The workloads with a stored profile on ``target``, read straight from the store."""
    return {row["workload_id"] for row in store.measurement_rows(SOURCE, [target.id],
                                                                  status="ok")
            if measurement_from_row(row).op_profile}


def totals(vectors, ids) -> dict[str, float]:
    result: dict[str, float] = {}
    for i in ids:
        for op, ns in vectors.ops[i].items():
            result[op] = result.get(op, 0.0) + ns
    return result


def subset_store(store: Store, path, *keep) -> Store:
    """A new store holding the real measurements of the workloads ``ids`` on ``target``, for
    each (target, ids) of ``keep``."""
    subset = Store(str(path))
    for target, ids in keep:
        workloads = profile_vectors(store, SOURCE, target).workloads
        subset.add_measurements(
            (workloads[row["workload_id"]], target, row["protocol"], measurement_from_row(row))
            for row in store.measurement_rows(SOURCE, [target.id], status="ok")
            if row["workload_id"] in ids)
    return subset


def test_profile_vectors_hold_each_workloads_latest_profile(measured):
    store, one, two, bare = measured
    anchor = profile_vectors(store, SOURCE, one)
    target = profile_vectors(store, SOURCE, two, level="framework")
    assert set(anchor.ops) == profiled_ids(store, one) and len(anchor.ops) == ANCHOR_N
    assert set(target.ops) == profiled_ids(store, two) and len(target.ops) == TARGET_N
    assert set(target.ops) < set(anchor.ops)
    assert all(w.id == i for i, w in anchor.workloads.items())  # rebuilt with their ids
    assert all(w.mode == "training" for w in anchor.workloads.values())
    assert all(v > 0 for v in anchor.end_to_end_ns.values())
    assert {"conv2d", "linear"} <= set().union(*anchor.ops.values())
    assert "aten::conv2d" in set().union(*target.ops.values())
    assert profile_vectors(store, SOURCE, bare).ops == {}
    with pytest.raises(LennaError, match="unknown profile level 'kernel'"):
        profile_vectors(store, SOURCE, one, level="kernel")


def test_top_columns_are_the_largest_totals(measured):
    store, one, _, _ = measured
    vectors = profile_vectors(store, SOURCE, one, level="framework")
    total = totals(vectors, vectors.ops)
    ranked = sorted(total, key=total.get, reverse=True)
    assert top_columns(vectors, 10) == ranked[:10]
    top = top_columns(vectors, 3)
    assert min(total[c] for c in top) >= max(total[c] for c in total if c not in top)
    assert top_columns(vectors) == [c for c in ranked if total[c] > 0]
    assert len(top_columns(vectors, 90)) == len(top_columns(vectors)) < 90
    with pytest.raises(LennaError, match="at least 1, got 0"):
        top_columns(vectors, 0)


@pytest.mark.parametrize(("direction", "validation", "top_n", "level"), [
    ("forward", "model", None, "lenna"),
    ("forward", "random", 10, "framework"),
    ("backward", "model", 10, "framework"),
    ("backward", "random", None, "lenna"),
])
def test_transfer_between_thread_counts(measured, direction, validation, top_n, level):
    store, one, two, _ = measured
    anchor, target = (one, two) if direction == "forward" else (two, one)
    repeats = 3 if validation == "model" else 10
    report = transfer_profiles(make_registry(), store, SOURCE, anchor, target,
                               features=["layer-stats"], top_n=top_n, level=level,
                               validation=validation, repeats=repeats)
    common = profiled_ids(store, one) & profiled_ids(store, two)
    assert report["rows"] == len(common) == TARGET_N
    only = ANCHOR_N - TARGET_N
    assert (report["anchor_only"], report["target_only"]) == (
        (only, 0) if direction == "forward" else (0, only))
    stored = store.targets()
    assert (report["anchor"], report["target"]) == (target_label(anchor, stored),
                                                    target_label(target, stored))
    # the columns are the largest totals over the aligned workloads
    for side, key in ((anchor, "input_columns"), (target, "output_columns")):
        vectors = profile_vectors(store, SOURCE, side, level)
        total = totals(vectors, common)
        assert report[key] == sorted((c for c in total if total[c] > 0), key=total.get,
                                     reverse=True)[:top_n]
    assert set(report["op_metrics"]) <= set(report["output_columns"])
    assert report["op_metrics"] and all(
        m["rows"] > 0 and np.isfinite(m["mape"]) for m in report["op_metrics"].values())
    # every prediction is of an aligned workload, against the target's own latency
    latency = profile_vectors(store, SOURCE, target, level).end_to_end_ns
    predicted = {p["workload_id"] for p in report["predictions"]}
    assert predicted == common if validation == "model" else predicted <= common
    assert all(p["measured_s"] == latency[p["workload_id"]] / 1e9
               for p in report["predictions"])
    assert set(report["metrics"]) == set(report["metrics_std"]) == set(METRICS)
    assert len(report["splits"]) == len(report["per_split"]) == repeats
    if validation == "model":
        assert report["splits"] == [f"held out {m}"
                                    for m in ("lenet5", "resnet-small", "vgg-small")]
        spearman = report["metrics"]["spearman"]
    else:
        assert report["splits"] == [f"seed {k}" for k in range(repeats)]
        pooled = report["predictions"]
        spearman = stats.spearmanr([p["measured_s"] for p in pooled],
                                   [p["predicted_s"] for p in pooled]).statistic
    assert spearman > MIN_SPEARMAN, report["per_split"]


def test_featurizer_instances_and_no_features(measured):
    store, one, two, _ = measured
    plugins = make_registry()
    featurizer = plugins.create("featurizer", "layer-stats")
    with_instance = transfer_profiles(plugins, store, SOURCE, one, two, features=[featurizer],
                                      validation="random", repeats=2)
    by_name = transfer_profiles(plugins, store, SOURCE, one, two, features=["layer-stats"],
                                validation="random", repeats=2)
    assert with_instance["metrics"] == by_name["metrics"]
    assert with_instance["features"] == by_name["features"]
    bare = transfer_profiles(plugins, store, SOURCE, one, two, features=[],
                             validation="random", repeats=2, estimator="ridge")
    assert bare["features"] == [] and bare["estimator"] == "ridge"


def test_errors(measured, tmp_path):
    store, one, two, bare = measured
    plugins = make_registry()
    run = dict(features=["layer-stats"])
    with pytest.raises(LennaError, match="unknown validation 'family'; choose one of model"):
        transfer_profiles(plugins, store, SOURCE, one, two, validation="family", **run)
    with pytest.raises(LennaError, match="estimator ensemble fits one output only; .*"
                                         "random-forest"):
        transfer_profiles(plugins, store, SOURCE, one, two, estimator="ensemble", **run)
    for anchor, target in ((bare, one), (one, bare)):
        with pytest.raises(LennaError, match=rf"no per-op profiles of {SOURCE} workloads on "
                                             rf"{target_label(bare, store.targets())}; "
                                             r"measure them with --profile-runs > 0"):
            transfer_profiles(plugins, store, SOURCE, anchor, target, **run)
    common = sorted(profiled_ids(store, one) & profiled_ids(store, two))
    apart = subset_store(store, tmp_path / "apart.db",
                         (one, profiled_ids(store, one) - set(common)), (two, set(common)))
    stored = apart.targets()
    with pytest.raises(LennaError, match=rf"anchor {target_label(one, stored)} \(2 profiled "
                                         rf"{SOURCE} workloads\) and target "
                                         rf"{target_label(two, stored)} \(12\) have none in "
                                         "common; at least 5 are needed"):
        transfer_profiles(plugins, apart, SOURCE, one, two, **run)
    few = subset_store(store, tmp_path / "few.db", (one, set(common)), (two, set(common[:4])))
    with pytest.raises(LennaError, match=r"\(4\) have only 4 in common; at least 5"):
        transfer_profiles(plugins, few, SOURCE, one, two, **run)
    lenet = {i for i, w in profile_vectors(store, SOURCE, two).workloads.items()
             if w.architecture.spec["model"] == "lenet5"}
    assert len(lenet) >= 5
    single = subset_store(store, tmp_path / "single.db", (one, lenet), (two, lenet))
    with pytest.raises(LennaError, match="validation 'model' needs workloads of two models "
                                         "or more; the 6 in common are all lenet5"):
        transfer_profiles(plugins, single, SOURCE, one, two, **run)
    assert transfer_profiles(plugins, single, SOURCE, one, two, validation="random",
                             **run)["rows"] == 6


def test_cli_transfers_profiles_between_thread_counts(measured, tmp_path):
    store, one, two, _ = measured
    stored = store.targets()
    args = ("transfer", "--db", str(store.db), "--source", SOURCE, "--anchor",
            target_label(one, stored), "--target", target_label(two, stored),
            "--features", "layer-stats", "--validation", "random", "--repeats", "2",
            "--top-n", "10")
    result = run_lenna(*args, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == 12 and len(report["splits"]) == 2
    assert len(report["output_columns"]) <= 10 and report["estimator"] == "random-forest"
    text = run_lenna(*args)
    assert text.returncode == 0, text.stderr
    assert "12 workloads aligned by id" in text.stdout and "Spearman" in text.stdout
    for op in report["op_metrics"]:
        assert op in text.stdout
    bad = run_lenna("transfer", "--db", str(store.db), "--source", SOURCE, "--anchor",
                    "nowhere", "--target", target_label(two, stored), cwd=tmp_path)
    assert_one_line_error(bad, "unknown target 'nowhere'")
