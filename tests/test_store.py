"""The SQLite store: commits, reuse without duplicates, and refusal of foreign databases."""

from __future__ import annotations

import sqlite3

import attrs
import numpy as np
import pytest
import sqlalchemy as sa
from conftest import chaos_workload

from lenna_core.data.dataset import stored_labels
from lenna_core.data.store import (
    SCHEMA_VERSION,
    Store,
    architecture_from_row,
    measurement_from_row,
    measurements,
)
from lenna_core.errors import StoreError
from lenna_core.ir import GraphBuilder
from lenna_core.measurement.campaign import run_campaign, target_of
from lenna_core.measurement.protocol import MeasurementProtocol
from lenna_core.measurement.worker import Worker, WorkerSettings
from lenna_core.records import Architecture, Measurement, Target, Workload

QUICK = MeasurementProtocol.parse("fixed:5", warmup_runs=1, warmup_seconds=0.0)


def test_measurements_are_reused_not_repeated(tmp_path, chaos_backend):
    store = Store(str(tmp_path / "l.db"))
    loads = [chaos_workload(w) for w in (4, 8, 16)]
    with Worker(WorkerSettings("chaos")) as worker:
        first = run_campaign(store, worker, loads, QUICK)
        assert first.measured == 3
        again = run_campaign(Store(str(tmp_path / "l.db")), worker, loads + [chaos_workload(32)],
                             QUICK)
    assert (again.measured, again.reused) == (1, 3)
    assert again.measurements[:3] == first.measurements
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(measurements)).scalar() == 4
    # the sleeps order the medians
    medians = [m.median_ns for m in again.measurements]
    assert medians == sorted(medians)


def test_a_different_protocol_is_measured_again(tmp_path, chaos_backend):
    store = Store(str(tmp_path / "l.db"))
    with Worker(WorkerSettings("chaos")) as worker:
        run_campaign(store, worker, [chaos_workload(4)], QUICK)
        other = MeasurementProtocol.parse("fixed:4", warmup_runs=1, warmup_seconds=0.0)
        assert run_campaign(store, worker, [chaos_workload(4)], other).measured == 1
        assert run_campaign(store, worker, [chaos_workload(4)], other).measured == 0


def test_framework_failure_is_a_stored_failed_measurement(tmp_path, chaos_backend):
    store = Store(str(tmp_path / "l.db"))
    loads = [chaos_workload(4), chaos_workload(8, "raise"), chaos_workload(16)]
    with Worker(WorkerSettings("chaos")) as worker:
        result = run_campaign(store, worker, loads, QUICK)
        assert [m.status for m in result.measurements] == ["ok", "failed", "ok"]
        assert result.measurements[1].error == "RuntimeError: unsupported kernel in layer 3"
        assert run_campaign(store, worker, [chaos_workload(8, "raise")], QUICK).measured == 0


def test_a_workload_larger_than_memory_fails_without_running(tmp_path, chaos_backend):
    b = GraphBuilder()
    y = b.add_node("conv2d", b.input((200_000, 8, 8)), out_channels=200_000, kernel_size=3)
    huge = Workload(Architecture("test", {"behaviour": "crash"}, b.build(y)))
    store = Store(str(tmp_path / "l.db"))
    with Worker(WorkerSettings("chaos")) as worker:
        (m,) = run_campaign(store, worker, [huge], QUICK).measurements
    assert m.status == "failed" and m.error.startswith("needs at least 1341.2 GiB")


def test_reference_baseline_is_the_median_over_the_campaign(tmp_path, chaos_backend):
    store = Store(str(tmp_path / "l.db"))
    compensated = MeasurementProtocol.parse("fixed:5", warmup_runs=1, warmup_seconds=0.0,
                                            compensate=True)
    with Worker(WorkerSettings("chaos")) as worker:
        result = run_campaign(store, worker, [chaos_workload(w) for w in (4, 8, 16)], compensated)
    baseline = store.reference_baseline(result.target, compensated.key)
    refs = sorted(m.reference_median_ns for m in result.measurements)
    assert baseline == refs[1]
    assert store.reference_baseline(result.target, QUICK.key) is None


def test_samples_are_stored_raw_and_summaries_recomputable(tmp_path):
    store = Store(str(tmp_path / "l.db"))
    w = chaos_workload(4)
    m = Measurement.from_samples([5, 1, 4, 2, 3], "max_runs")
    target = Target("counting", {"kind": "sleep"})
    assert store.add_measurements([(w, target, "p", m)]) == 1
    stored = store.get_measurement(w, target, "p")
    assert stored.samples_ns == (5, 1, 4, 2, 3)
    assert stored.median_ns == 3 and stored.runs == 5
    assert Measurement.from_samples(stored.samples_ns, "max_runs").iqr_ns == stored.iqr_ns
    assert store.add_measurements([(w, target, "p", m)]) == 0  # kept as it was
    assert store.get_measurement(w, target, "p") == stored


def test_measurement_rows_are_filtered_and_read_back(tmp_path):
    store = Store(str(tmp_path / "l.db"))
    pi, pc = Target("pi", {}), Target("pc", {})
    other = Workload(Architecture("other", {}, chaos_workload(12).architecture.graph))
    ok = Measurement.from_samples([5, 1, 4], "max_runs", timestamp=1.0)
    failed = Measurement.failed("boom", timestamp=2.0)
    store.add_measurements([(chaos_workload(4), pi, "p", ok), (chaos_workload(8), pi, "p", failed),
                            (chaos_workload(4), pc, "p", ok), (other, pi, "p", ok)])
    rows = list(store.measurement_rows())
    assert [r["measurement_id"] for r in rows] == [1, 2, 3, 4]
    assert [(r["source"], r["backend"], r["status"]) for r in rows] == [
        ("test", "pi", "ok"), ("test", "pi", "failed"), ("test", "pc", "ok"),
        ("other", "pi", "ok")]
    assert "graph" not in rows[0]
    (row,) = store.measurement_rows("test", [pi.id], status="ok", graphs=True)
    assert measurement_from_row(row) == ok
    assert architecture_from_row(row) == chaos_workload(4).architecture
    assert store.architecture(row["arch_id"]).spec == {"sleep": 4e-4, "behaviour": "ok"}
    assert [r["status"] for r in store.measurement_rows("test", [pi.id])] == ["ok", "failed"]
    assert list(store.measurement_rows("test", [])) == []


def test_stored_labels_are_the_usable_ones_with_compensated_latencies(tmp_path):
    store = Store(str(tmp_path / "l.db"))
    pi = Target("pi", {})
    compensated = [Measurement.from_samples([4 * r] * 3, "max_runs", [r] * 3)
                   for r in (100, 200, 300)]
    items = [(chaos_workload(w), pi, "c", m) for w, m in zip((4, 8, 16), compensated, strict=True)]
    items += [(chaos_workload(4), pi, "plain", Measurement.from_samples([7, 7, 7], "max_runs")),
              (chaos_workload(8), pi, "plain", Measurement.failed("boom")),
              (chaos_workload(16), pi, "plain", Measurement.from_samples([0, 0, 0], "max_runs")),
              (chaos_workload(32), pi, "plain", Measurement(status="ok", samples_ns=(9, 9),
                                                      median_ns=9.0, expected_ns=6.0))]
    store.add_measurements(items)
    labels = list(stored_labels(store, "test", [pi]))
    # ratio 4 times the median reference (200 ns); failed and zero latencies are left out
    assert [(label.row["protocol"], label.latency_ns) for label in labels] == [
        ("c", 800.0), ("c", 800.0), ("c", 800.0), ("plain", 7.0), ("plain", 6.0)]
    assert all(label.target == pi for label in labels)
    assert labels[3].measurement == items[3][3]
    assert list(stored_labels(store, "other", [pi])) == []


def test_corrupt_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        Store(str(path)).targets()
    assert path.read_bytes().startswith(b"this is not sqlite")


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table invoices (id integer)")
    with pytest.raises(StoreError, match="not a LENNA database"):
        Store(str(path)).targets()


def test_a_store_is_opened_on_first_use(tmp_path):
    store = Store(str(tmp_path / "l.db"))
    assert not (tmp_path / "l.db").exists()
    assert store.targets() == []
    assert (tmp_path / "l.db").is_file()


def test_missing_database_when_reading(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(str(tmp_path / "nope.db"), create=False)
    with pytest.raises(StoreError, match="directory .* does not exist"):
        Store(str(tmp_path / "no" / "dir.db"))


def test_an_older_store_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table lenna_meta (key varchar(64) primary key, value text)")
        conn.execute("insert into lenna_meta values ('schema_version', '2')")
        conn.execute("create table architectures (id varchar(32) primary key, source "
                     "varchar(128) not null, spec text not null, graph text not null)")
        conn.execute("insert into architectures values ('a1', 'x', '{}', '{}')")
    assert Store(str(path)).targets() == []
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("pragma table_info(architectures)")]
        assert "params" in columns
        assert conn.execute("select id from architectures").fetchall() == [("a1",)]
        version = conn.execute("select value from lenna_meta").fetchone()[0]
    assert version == SCHEMA_VERSION


def test_a_supernet_is_labelled_by_its_expected_latency_over_children(tmp_path,
                                                                      chaos_backend):
    def children(arch, rng):
        sleep = float(rng.choice([0.001, 0.003], p=[0.75, 0.25]))
        return Architecture("test", {"sleep": sleep}, arch.graph)

    plain = chaos_workload(4)
    supernet = attrs.evolve(plain, architecture=attrs.evolve(plain.architecture,
                                                             params={"gates": [0.75, 0.25]}))
    protocol = MeasurementProtocol.parse("fixed:3", warmup_runs=1, warmup_seconds=0.0)
    store = Store(str(tmp_path / "l.db"))
    with Worker(WorkerSettings("chaos")) as worker:
        result = run_campaign(store, worker, [supernet], protocol, children)
    (m,) = result.measurements
    assert m.ok and m.stop_reason in ("converged", "max_children")
    assert m.runs == len(m.samples_ns) >= 11
    assert m.expected_ns == pytest.approx(np.mean(m.samples_ns), rel=1e-6)
    # three children in four sleep 1 ms, one sleeps 3 ms: about 1.5 ms on average
    assert 1.1e6 < m.latency_ns() < 2.3e6
    assert store.get_measurement(supernet, result.target, protocol.key) == m


def test_retry_failed_measures_failed_labels_again_and_replaces_them(tmp_path, chaos_backend):
    store = Store(str(tmp_path / "l.db"))
    loads = [chaos_workload(4), chaos_workload(8)]
    with Worker(WorkerSettings("chaos")) as worker:
        target = target_of(worker)
        killed = Measurement.failed("killed: killed by SIGKILL from outside LENNA while "
                                    "measuring (no out-of-memory kill recorded)")
        store.add_measurements([(loads[1], target, QUICK.key, killed)])
        kept = run_campaign(store, worker, loads, QUICK)
        assert kept.measured == 1 and kept.measurements[1] == killed
        retried = run_campaign(store, worker, loads, QUICK, retry_failed=True)
    assert retried.measured == 1 and retried.measurements[1].status != "failed"
    rows = list(store.measurement_rows())
    assert [(r["workload_id"], r["status"] != "failed") for r in rows] == [
        (loads[0].id, True), (loads[1].id, True)]
