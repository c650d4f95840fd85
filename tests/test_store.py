"""The SQLite store: commits, reuse without duplicates, and refusal of foreign databases."""

from __future__ import annotations

import sqlite3
import time

import pytest
import sqlalchemy as sa

from lenna_core.campaign import run_campaign
from lenna_core.errors import StoreError
from lenna_core.ir import GraphBuilder
from lenna_core.measure import MeasurementProtocol
from lenna_core.records import Architecture, Measurement, Workload
from lenna_core.store import Store, measurements

QUICK = MeasurementProtocol(warmup_runs=1, warmup_seconds=0.0, min_runs=3, max_runs=5,
                            max_seconds=0.01)


def workload(width: int) -> Workload:
    b = GraphBuilder()
    y = b.add_node("conv2d", b.input((3, 8, 8)), out_channels=width, kernel_size=3)
    return Workload(Architecture("test", {"width": width}, b.build(y)))


class CountingBackend:
    """Sleeps a known time per run and counts how often a model was prepared."""

    name = "counting"

    def __init__(self, threads=None, fail_width=None):
        self.prepared = 0
        self.fail_width = fail_width

    def fingerprint(self):
        return {"kind": "sleep"}

    def prepare(self, w):
        self.prepared += 1
        if w.architecture.spec["width"] == self.fail_width:
            raise RuntimeError("kernel not implemented\nsecond line")
        return _Sleeper(w.architecture.spec["width"] * 1e-4)


class _Sleeper:
    def __init__(self, seconds):
        self.seconds = seconds

    def run(self):
        time.sleep(self.seconds)

    def close(self):
        pass


def test_measurements_are_reused_not_repeated(tmp_path):
    store = Store(str(tmp_path / "l.db"))
    backend = CountingBackend()
    loads = [workload(w) for w in (4, 8, 16)]
    first = run_campaign(store, backend, loads, QUICK)
    assert (first.measured, backend.prepared) == (3, 3)
    again = run_campaign(Store(str(tmp_path / "l.db")), backend, loads + [workload(32)], QUICK)
    assert (again.measured, again.reused, backend.prepared) == (1, 3, 4)
    assert again.measurements[:3] == first.measurements
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(measurements)).scalar() == 4
    # the sleeps order the medians
    medians = [m.median_ns for m in again.measurements]
    assert medians == sorted(medians)


def test_a_different_protocol_is_measured_again(tmp_path):
    store = Store(str(tmp_path / "l.db"))
    backend = CountingBackend()
    run_campaign(store, backend, [workload(4)], QUICK)
    other = MeasurementProtocol(warmup_runs=2, warmup_seconds=0.0, min_runs=3, max_runs=4,
                                max_seconds=0.01)
    assert run_campaign(store, backend, [workload(4)], other).measured == 1


def test_framework_failure_is_a_stored_failed_measurement(tmp_path):
    store = Store(str(tmp_path / "l.db"))
    backend = CountingBackend(fail_width=8)
    result = run_campaign(store, backend, [workload(4), workload(8), workload(16)], QUICK)
    statuses = [m.status for m in result.measurements]
    assert statuses == ["ok", "failed", "ok"]
    assert result.measurements[1].error == "RuntimeError: kernel not implemented"
    assert run_campaign(store, backend, [workload(8)], QUICK).measured == 0


def test_samples_are_stored_raw_and_summaries_recomputable(tmp_path):
    store = Store(str(tmp_path / "l.db"))
    w = workload(4)
    m = Measurement.from_samples([5, 1, 4, 2, 3], "max_runs")
    run = CountingBackend()
    from lenna_core.campaign import target_of

    target = target_of(run)
    store.add_measurement(w, target, "p", m)
    stored = store.get_measurement(w, target, "p")
    assert stored.samples_ns == (5, 1, 4, 2, 3)
    assert stored.median_ns == 3 and stored.runs == 5
    assert Measurement.from_samples(stored.samples_ns, "max_runs").iqr_ns == stored.iqr_ns
    with pytest.raises(StoreError):
        store.add_measurement(w, target, "p", m)


def test_corrupt_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        Store(str(path))
    assert path.read_bytes().startswith(b"this is not sqlite")


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table invoices (id integer)")
    with pytest.raises(StoreError, match="not a LENNA database"):
        Store(str(path))


def test_missing_database_when_reading(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(str(tmp_path / "nope.db"), create=False)
    with pytest.raises(StoreError, match="directory .* does not exist"):
        Store(str(tmp_path / "no" / "dir.db"))
