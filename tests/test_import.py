"""lenna import: long and wide CSV and Parquet, units, arch maps, duplicates, isomorphic
copies, degenerate and bad rows, one-line errors that leave the store as it was, atomicity,
idempotence, and the real HW-NAS-Bench-360 data."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter

import pandas as pd
import pytest
from conftest import ROOT, SHARED_DATA, assert_one_line_error, run_lenna

from lenna_core.data.store import Store
from lenna_core.ir import GraphBuilder
from lenna_core.records import Architecture, Measurement, Target, Workload
from lenna_nasbench201.cells import all_arch_strings, canonical_arch

CELLS = all_arch_strings()
CLASS = {c: canonical_arch(c) for c in CELLS}
REPS = sorted(set(CLASS.values()))
A = next(r for r, n in Counter(CLASS.values()).most_common() if n >= 3)
B, C = [r for r in REPS if r != A][2000:4001:2000]
COPIES = [c for c in CELLS if CLASS[c] == A and c != A]
NB201 = ("--source", "nasbench201")
TABLES = ("architectures", "workloads", "targets", "measurements")


def row_counts(db) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


def import_json(*args: str):
    result = run_lenna("import", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def measured(db) -> pd.DataFrame:
    """The stored measurements with their target name and architecture spec."""
    frame = pd.DataFrame(Store(str(db)).measurement_rows())
    frame["arch"] = frame["spec"].map(lambda s: json.loads(s)["arch"])
    return frame


def long_csv(path, rows) -> str:
    pd.DataFrame(rows, columns=["arch", "device", "runtime", "latency"]).to_csv(path,
                                                                              index=False)
    return str(path)


def long_args(path, db, *extra: str) -> tuple[str, ...]:
    return (str(path), *NB201, "--arch-col", "arch", "--target-cols", "device,runtime",
            "--latency-col", "latency", "--db", str(db), *extra)


@pytest.fixture
def seeded(tmp_path):
    """A store that already holds one small import, and the file it came from."""
    path = long_csv(tmp_path / "seed.csv", [(A, "pi", "ort", 3.0), (B, "pi", "ort", 4.0)])
    db = tmp_path / "l.db"
    import_json(*long_args(path, db))
    return db, path


def test_long_csv_is_stored_with_its_origin_and_exported(tmp_path):
    path = long_csv(tmp_path / "m.csv", [(A, "pi5", "onnx", 3.0), (B, "pi5", "onnx", 4.5),
                                         (A, "pixel", "litert", 2.0)])
    db = tmp_path / "l.db"
    summary, _ = import_json(*long_args(path, db))
    assert (summary["kept"], summary["new"], summary["already_stored"]) == (3, 3, 0)
    assert summary["targets"]["pi5/onnx"]["kept"] == 2
    rows = measured(db).sort_values(["backend", "arch"])
    assert list(rows["backend"]) == ["pi5/onnx", "pi5/onnx", "pixel/litert"]
    assert set(rows["protocol"]) == {"imported"} and set(rows["stop_reason"]) == {"imported"}
    assert set(rows["source"]) == {"nasbench201"}
    by = {(r.backend, r.arch): r.median_ns for r in rows.itertuples()}
    assert by == {("pi5/onnx", A): 3e6, ("pi5/onnx", B): 4.5e6, ("pixel/litert", A): 2e6}
    digest = hashlib.sha256((tmp_path / "m.csv").read_bytes()).hexdigest()
    fingerprints = {t.name: dict(t.fingerprint) for t in Store(str(db)).targets()}
    assert fingerprints["pi5/onnx"] == {"imported": True, "origin": "m.csv", "sha256": digest,
                                        "device": "pi5", "runtime": "onnx"}
    out = tmp_path / "e.csv"
    exported = run_lenna("export", str(out), "--format", "csv", "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    frame = pd.read_csv(out)
    assert len(frame) == 3 and sorted(frame["latency_ns"]) == [2e6, 3e6, 4.5e6]
    assert set(frame["backend"]) == {"pi5/onnx", "pixel/litert"}


def test_human_summary_names_targets_and_drops(tmp_path):
    path = long_csv(tmp_path / "m.csv", [(A, "pi", "ort", 3.0), (A, "pi", "ort", 5.0),
                                         (B, "pi", "ort", 4.0)])
    result = run_lenna("import", *long_args(path, tmp_path / "l.db"))
    assert result.returncode == 0, result.stderr
    assert "pi/ort" in result.stdout
    assert "1 exact duplicates (median kept)" in result.stdout
    assert "stored 2 measurements as nasbench201 architectures" in result.stdout


def test_reimport_is_idempotent(seeded):
    db, path = seeded
    before = row_counts(db)
    summary, _ = import_json(*long_args(path, db))
    assert (summary["new"], summary["already_stored"]) == (0, 2)
    assert row_counts(db) == before


@pytest.mark.parametrize(("unit", "ns"), [("ms", 2.5e6), ("us", 2.5e3), ("s", 2.5e9)])
def test_units(tmp_path, unit, ns):
    path = long_csv(tmp_path / "m.csv", [(A, "pi", "ort", 2.5)])
    import_json(*long_args(path, tmp_path / "l.db", "--unit", unit))
    assert measured(tmp_path / "l.db")["median_ns"].tolist() == [ns]


def test_parquet_with_json_specs_arch_map_and_where(tmp_path):
    mapping = tmp_path / "map.csv"
    pd.DataFrame({"idx": [7, 8, 9], "spec": [A, json.dumps({"arch": B}), C]}).to_csv(
        mapping, index=False)
    path = tmp_path / "m.parquet"
    pd.DataFrame({"arch_idx": [7, 8, 9, 42, 7], "dev": ["pi"] * 5,
                  "task": ["c100", "c100", "c100", "c100", "other"],
                  "lat_us": [1500.0, 2500.0, 3500.0, 1000.0, 9.0]}).to_parquet(path)
    db = tmp_path / "l.db"
    summary, stderr = import_json(
        str(path), *NB201, "-O", "num_classes=100", "--arch-col", "arch_idx", "--arch-map",
        str(mapping), "--target-cols", "dev,task", "--latency-col", "lat_us", "--unit", "us",
        "--where", "task=c100", "--db", str(db))
    assert (summary["rows_in_file"], summary["rows"], summary["kept"]) == (5, 4, 3)
    assert summary["skipped"]["bad_spec"] == 1
    assert "row 4: index '42' is not in --arch-map" in stderr
    rows = measured(db)
    assert dict(zip(rows["arch"], rows["median_ns"], strict=True)) == {
        A: 1.5e6, B: 2.5e6, C: 3.5e6}
    assert set(rows["backend"]) == {"pi/c100"}
    specs = rows["spec"].map(json.loads)
    assert all(s["num_classes"] == 100 for s in specs)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_wide_every_numeric_column_is_a_target(tmp_path, fmt):
    frame = pd.DataFrame({"arch": [A, B], "pi5_onnx": [3.0, 4.0], "pixel_tflite": [1.0, 2.0],
                          "seed": [1, 2], "note": ["x", "y"]})
    path = tmp_path / f"w.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    db = tmp_path / "l.db"
    summary, _ = import_json(str(path), *NB201, "--wide", "--arch-col", "arch",
                             "--ignore-cols", "seed", "--db", str(db))
    assert summary["format"] == "wide" and summary["latencies"] == 4
    assert set(summary["targets"]) == {"pi5_onnx", "pixel_tflite"}
    rows = measured(db)
    got = {(r.backend, r.arch): r.median_ns for r in rows.itertuples()}
    assert got == {("pi5_onnx", A): 3e6, ("pi5_onnx", B): 4e6, ("pixel_tflite", A): 1e6,
                   ("pixel_tflite", B): 2e6}
    fingerprint = next(t.fingerprint for t in Store(str(db)).targets()
                       if t.name == "pi5_onnx")
    assert fingerprint["column"] == "pi5_onnx" and fingerprint["origin"] == f"w.{fmt}"


def test_duplicates_keep_the_median_and_isomorphic_copies_the_representative(tmp_path):
    rows = [(A, "pi", "ort", 3.0), (A, "pi", "ort", 9.0), (A, "pi", "ort", 4.0),
            (COPIES[0], "pi", "ort", 7.0), (COPIES[1], "pi", "ort", 7.5),
            (COPIES[0], "pi", "tfl", 2.0), (COPIES[1], "pi", "tfl", 2.2)]
    db = tmp_path / "l.db"
    summary, _ = import_json(*long_args(long_csv(tmp_path / "m.csv", rows), db))
    assert summary["dropped"] == {"isomorphic": 3, "duplicates": 2, "degenerate": 0}
    assert summary["targets"]["pi/ort"] == {"kept": 1, "isomorphic": 2, "duplicates": 2,
                                            "degenerate": 0}
    got = {(r.backend, r.arch): r.median_ns for r in measured(db).itertuples()}
    # the first row of each class wins: the network that was measured
    assert got == {("pi/ort", A): 4e6, ("pi/tfl", COPIES[0]): 2e6}


def test_bad_and_degenerate_rows_are_counted_with_a_first_example(tmp_path):
    good = [(r, "pi", "ort", 3.0 + i) for i, r in enumerate(REPS[:6])]
    bad = [(REPS[6], "pi", "ort", "fast"), (REPS[7], "pi", "ort", None),
           (REPS[8], "pi", "ort", 0.0), (REPS[9], "pi", "ort", -1.0),
           ("|conv9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|", "pi", "ort", 3.0),
           (REPS[10], None, "ort", 3.0), (REPS[11], "pi", "ort", 0.004)]
    db = tmp_path / "l.db"
    summary, stderr = import_json(*long_args(long_csv(tmp_path / "m.csv", good + bad), db))
    assert summary["skipped"] == {"bad_latency": 4, "bad_spec": 1, "bad_target": 1}
    assert summary["dropped"]["degenerate"] == 1 and summary["kept"] == 6
    assert "skipped 4 rows with a bad latency (non-numeric, NaN, zero or negative), " \
           "e.g. row 7: 'fast'" in stderr
    assert "skipped 1 row with an unknown or unparseable spec, e.g. row 11:" in stderr
    assert "unknown op 'conv9x9'" in stderr
    assert "row 12: device is empty" in stderr
    assert "row 13 on pi/ort" in summary["degenerate_example"]
    assert summary["latencies"] == 13 == summary["kept"] + sum(summary["skipped"].values()) \
        + sum(summary["dropped"].values())
    assert len(measured(db)) == 6


def error_cases(tmp_path):
    """(arguments, fragments of the one-line error) of imports that must store nothing."""
    good = long_csv(tmp_path / "good.csv", [(C, "pi", "ort", 1.0)])
    all_bad = long_csv(tmp_path / "bad.csv", [(C, "pi", "ort", "x"), ("nope", "pi", "ort", 1)])
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    (tmp_path / "m.json").write_text("{}")
    base = ("--db", str(tmp_path / "l.db"), "--arch-col", "arch")
    return [
        ((good, *NB201, *base, "--target-cols", "device", "--latency-col", "lat_ms"),
         ("--latency-col: no column 'lat_ms' in good.csv", "columns are arch, device, runtime, "
                                                            "latency")),
        ((good, *NB201, *base, "--target-cols", "device,framework", "--latency-col", "latency"),
         ("--target-cols: no column 'framework'",)),
        ((good, *NB201, *base, "--wide", "--latency-col", "latency"),
         ("--wide takes no --latency-col",)),
        ((str(broken), *NB201, *base, "--wide"), ("cannot read", "broken.parquet as parquet")),
        ((str(tmp_path / "missing.csv"), *NB201, *base, "--wide"), ("no such file",)),
        ((str(tmp_path / "m.json"), *NB201, *base, "--wide"), ("unknown extension .json",)),
        ((all_bad, *NB201, *base, "--target-cols", "device", "--latency-col", "latency"),
         ("no usable row in bad.csv", "1 with a bad latency", "e.g. row 1: 'x'",
          "1 with an unknown or unparseable spec")),
        ((good, "--source", "nasbench", *base, "--wide"), ("unknown source 'nasbench'",)),
        ((good, *NB201, *base, "--wide", "--where", "device=tpu"),
         ("no row of good.csv has device = tpu; its values are pi",)),
        ((good, *NB201, *base, "--wide", "--where", "colour=red"),
         ("--where: no column 'colour'",)),
        ((good, *NB201, *base, "--target-cols", "device"), ("give --target-cols and "
                                                           "--latency-col",)),
        ((good, *NB201, *base, "--wide", "--unit", "min"), ("unknown --unit 'min'",)),
    ]


@pytest.mark.slow
def test_errors_are_one_line_and_store_nothing(seeded, tmp_path):
    db, _ = seeded
    before = row_counts(db)
    for args, fragments in error_cases(tmp_path):
        assert_one_line_error(run_lenna("import", *map(str, args)), *fragments)
        assert row_counts(db) == before, args


@pytest.mark.slow
def test_an_interrupted_import_keeps_whole_chunks_and_resumes(seeded, tmp_path):
    db = tmp_path / "copy.db"
    shutil.copy(seeded[0], db)
    before = row_counts(db)["measurements"]
    path = long_csv(tmp_path / "many.csv", [(r, "pi", "ort", 1.0) for r in REPS[:1600]])
    proc = subprocess.Popen([sys.executable, "-m", "lenna_core", "import", *long_args(path, db)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "[3/4]" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130 and "Traceback" not in rest
    assert "an import in chunks of 500 rows" in rest
    kept = row_counts(db)["measurements"] - before
    assert kept in (500, 1000, 1500)  # whole chunks only, not all
    again = run_lenna("import", *map(str, long_args(path, db)), "--json")
    summary = json.loads(again.stdout)
    assert (summary["new"], summary["already_stored"]) == (summary["kept"] - kept, kept)
    assert row_counts(db)["measurements"] == before + summary["kept"]


def test_bulk_store_write_commits_whole_chunks(tmp_path):
    store = Store(str(tmp_path / "l.db"))
    target = Target("t", {"imported": True})

    def items(n, interrupt_at=None):
        for width in range(1, n + 1):
            if width == interrupt_at:
                raise KeyboardInterrupt
            b = GraphBuilder()
            y = b.add_node("conv2d", b.input((3, 8, 8)), out_channels=width, kernel_size=1)
            load = Workload(Architecture("test", {"w": width}, b.build(y)))
            yield load, target, "imported", Measurement.from_samples([width], "imported")

    with pytest.raises(KeyboardInterrupt):
        store.add_measurements(items(1200, interrupt_at=1100))  # after two chunks of 500
    assert row_counts(tmp_path / "l.db") == {"architectures": 1000, "workloads": 1000,
                                             "targets": 1, "measurements": 1000}
    assert store.add_measurements(items(1003)) == 3
    assert store.add_measurements([*items(1004), *items(1004)]) == 1
    assert row_counts(tmp_path / "l.db") == {"architectures": 1004, "workloads": 1004,
                                             "targets": 1, "measurements": 1004}


@pytest.mark.slow
def test_real_hw_nas_bench_360(tmp_path):
    """Pi 5 ONNX Runtime and LiteRT on CIFAR-100: one row per isomorphism class, each with
    the latency of the cell HW-NAS-Bench-360 measured, LiteRT's constant-folded cells
    dropped."""
    data = SHARED_DATA / "hw-nas-bench-360" / "dataset.parquet"
    db = tmp_path / "l.db"
    summary, _ = import_json(
        str(data), *NB201, "-O", "num_classes=100", "--arch-col", "arch_idx",
        "--arch-map", str(SHARED_DATA / "nasbench201" / "arch_index_to_str.csv"),
        "--target-cols", "device,framework,task", "--latency-col", "lat_ms_median",
        "--where", "task=cifar100", "--where", "device=pi5", "--where", "framework=onnx",
        "--where", "framework=litert", "--db", str(db))
    onnx, litert = summary["targets"]["pi5/onnx/cifar100"], summary["targets"][
        "pi5/litert/cifar100"]
    assert onnx == {"kept": 6466, "isomorphic": 15625 - 6466, "duplicates": 0,
                    "degenerate": 0}
    assert litert["isomorphic"] == 15625 - 6466 and litert["degenerate"] >= 1
    assert litert["kept"] == 6466 - litert["degenerate"]
    frame = pd.read_parquet(data)
    frame = frame[(frame.task == "cifar100") & (frame.device == "pi5")]
    rows = measured(db)
    for framework in ("onnx", "litert"):
        file = frame[frame.framework == framework]
        reps = file[file.arch_idx == file.rep_arch_idx]["lat_ms_median"] * 1e6
        mine = rows[rows.backend == f"pi5/{framework}/cifar100"]["median_ns"]
        median = reps.median()
        assert sorted(mine) == pytest.approx(sorted(reps[reps >= 0.01 * median].round()))
    # the stored cells are the ones HW-NAS-Bench-360 measured, not other members of a class
    names = pd.read_csv(SHARED_DATA / "nasbench201" / "arch_index_to_str.csv")
    measured_cells = set(names.arch_str[frame[frame.arch_idx == frame.rep_arch_idx].arch_idx])
    assert set(rows[rows.backend == "pi5/onnx/cifar100"]["arch"]) == measured_cells
    assert rows[rows.backend == "pi5/litert/cifar100"]["median_ns"].min() > 0.1e6
