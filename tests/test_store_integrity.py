"""Damaged stores: every damaged cell is a one-line error naming its row when read, ``lenna db
check`` lists it (exit 1), and ``--drop-damaged`` removes it and what depends on it, keeping
every other row."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from conftest import assert_one_line_error, chaos_workload, run_lenna

from lenna_core.data.check import check_store, drop_damaged
from lenna_core.data.store import DamagedRow, Store
from lenna_core.records import Measurement, Target

PI = Target("pi", {"imported": True})
WIDTHS = (4, 8, 16)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    """A store with three labels, a pass of an unfinished label and features."""
    db = tmp_path_factory.mktemp("healthy") / "l.db"
    store = Store(str(db))
    store.add_measurements((chaos_workload(w), PI, "p", Measurement.from_samples(
        [w * 100, w * 110, w * 120], "max_runs")) for w in WIDTHS)
    store.add_pass(chaos_workload(32), PI, "p", 0, Measurement.from_samples([5, 6], "max_runs"))
    store.add_features(chaos_workload(4), "layer-stats", "1", {"flops": 10.0})
    return db


@pytest.fixture
def damaged(healthy, tmp_path):
    """A copy of the healthy store and a function that runs SQL on it."""
    db = tmp_path / "l.db"
    shutil.copy(healthy, db)

    def damage(sql: str) -> None:
        with sqlite3.connect(db) as conn:
            assert conn.execute(sql).rowcount == 1, sql

    return db, damage


W4 = chaos_workload(4)
A4 = W4.architecture.id
WIDER = W4.architecture.graph.to_json().replace('"out_channels": 4', '"out_channels": 5')

#: (SQL damaging one row, the table the check names, the problem it states)
CASES = [
    ("UPDATE measurements SET samples_ns = 'not json' WHERE id = 1",
     "measurements", "samples_ns is not valid JSON"),
    ("UPDATE measurements SET samples_ns = '{\"a\": 1}' WHERE id = 1",
     "measurements", "samples_ns is not a JSON list"),
    ("UPDATE measurements SET samples_ns = '[1, \"x\"]' WHERE id = 1",
     "measurements", "samples_ns holds a value that is not a number"),
    ("UPDATE measurements SET sample_pass = '[true]' WHERE id = 1",
     "measurements", "sample_pass holds a value that is not a number"),
    ("UPDATE measurements SET wait_ns = '' WHERE id = 1",
     "measurements", "wait_ns is not valid JSON"),
    ("UPDATE measurements SET status = 'weird' WHERE id = 2",
     "measurements", "unknown status 'weird'"),
    ("UPDATE measurements SET median_ns = 'fast' WHERE id = 2",
     "measurements", "median_ns is 'fast', not a finite number"),
    ("UPDATE measurements SET timestamp = 'yesterday' WHERE id = 2",
     "measurements", "timestamp is 'yesterday', not a finite number"),
    ("UPDATE measurements SET runs = 'many' WHERE id = 2",
     "measurements", "runs is 'many', not a count"),
    ("UPDATE measurements SET op_profile = '[1]' WHERE id = 3",
     "measurements", "op_profile is not a JSON object"),
    (f"UPDATE architectures SET graph = 'garbage' WHERE id = '{A4}'",
     "architectures", "its graph cannot be read"),
    (f"UPDATE architectures SET graph = '{WIDER}' WHERE id = '{A4}'",
     "architectures", "not to its id"),
    (f"UPDATE architectures SET graph = '{{\"nodes\": 3}}' WHERE id = '{A4}'",
     "architectures", "its graph cannot be read"),
    (f"UPDATE architectures SET spec = '[]' WHERE id = '{A4}'",
     "architectures", "spec is not a JSON object"),
    (f"UPDATE architectures SET params = 'x{{' WHERE id = '{A4}'",
     "architectures", "params is not valid JSON"),
    ("UPDATE targets SET fingerprint = 'nope'", "targets", "fingerprint is not valid JSON"),
    ("UPDATE targets SET backend = 'jetson'", "targets", "not to its id"),
    (f"UPDATE workloads SET batch_size = 0 WHERE arch_id = '{A4}'",
     "workloads", "batch size 0 is not a positive count"),
    (f"UPDATE workloads SET mode = 'dance' WHERE arch_id = '{A4}'",
     "workloads", "unknown mode 'dance'"),
    ("UPDATE passes SET measurement = '{}'", "passes", "missing"),
    ("UPDATE passes SET measurement = 'x'", "passes", "measurement is not valid JSON"),
    ("UPDATE features SET \"values\" = '{\"flops\": \"many\"}'",
     "features", "a value is not a number"),
    ("UPDATE features SET \"values\" = '[]'", "features", "values is not a JSON object"),
]


@pytest.mark.parametrize(("sql", "table", "problem"), CASES, ids=[c[2] for c in CASES])
def test_damage_is_found_named_and_dropped(damaged, sql, table, problem):
    db, damage = damaged
    damage(sql)
    store = Store(str(db), create=False)
    report = check_store(store)
    assert not report.ok and report.database == ()
    assert [(d.table, problem in d.problem) for d in report.damage] == [(table, True)]
    rows = sum(report.rows.values())
    deleted = drop_damaged(store, report)
    after = check_store(store)
    assert after.ok and sum(after.rows.values()) == rows - deleted
    assert deleted >= 1


@pytest.mark.parametrize(("sql", "where", "problem"), [
    ("UPDATE measurements SET samples_ns = 'not json' WHERE id = 2", "stored measurement 2",
     "samples_ns is not valid JSON"),
    ("UPDATE targets SET fingerprint = '[]'", "stored target", "fingerprint is not a JSON object"),
    (f"UPDATE architectures SET graph = 'garbage' WHERE id = '{A4}'",
     f"stored architecture {A4}", "its graph cannot be read"),
])
def test_reading_a_damaged_row_is_one_error_naming_it(damaged, sql, where, problem):
    from lenna_core.data.dataset import stored_labels

    db, damage = damaged
    damage(sql)
    store = Store(str(db), create=False)
    with pytest.raises(DamagedRow, match=problem) as caught:
        store.targets()
        for label in stored_labels(store, "test", [PI]):
            store.architecture(label.row["arch_id"])
    assert str(caught.value).startswith(where)
    assert "'lenna db check' lists every damaged row" in str(caught.value)


def test_a_missing_parent_row_is_a_database_problem(damaged):
    db, damage = damaged
    damage(f"DELETE FROM architectures WHERE id = '{A4}'")
    report = check_store(Store(str(db), create=False))
    assert any("refers to a missing architectures row" in p for p in report.database)


@pytest.mark.slow
def test_db_check_and_commands_on_a_damaged_store(damaged):
    db, damage = damaged
    assert run_lenna("db", "check", "--db", str(db)).returncode == 0
    damage("UPDATE measurements SET samples_ns = '[' WHERE id = 2")
    assert_one_line_error(run_lenna("export", str(db.with_suffix(".csv")), "--format", "csv",
                                    "--db", str(db)),
                          "stored measurement 2 is damaged: samples_ns is not valid JSON")
    checked = run_lenna("db", "check", "--db", str(db), "--json")
    assert checked.returncode == 1
    found = json.loads(checked.stdout)
    assert found["damaged"] == [{"table": "measurements", "key": {"id": 2},
                                 "problem": "samples_ns is not valid JSON"}]
    dropped = run_lenna("db", "check", "--db", str(db), "--drop-damaged")
    assert dropped.returncode == 0 and "deleted 1 rows" in dropped.stderr
    assert run_lenna("db", "check", "--db", str(db)).returncode == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone() == (2,)
