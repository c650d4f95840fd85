"""Many writers on one store: racing creators, imports and campaigns at once, every label
stored exactly once, none crashing, no label taken twice."""

from __future__ import annotations

import multiprocessing
import sqlite3
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import pytest
from conftest import ROOT, chaos_workload, run_lenna

from lenna_core.data.store import Store
from lenna_core.measurement.campaign import run_campaign, target_of
from lenna_core.measurement.protocol import MeasurementProtocol
from lenna_core.measurement.worker import Worker, WorkerSettings
from lenna_core.records import Measurement, Target

QUICK = MeasurementProtocol.parse("fixed:5", warmup_runs=1, warmup_seconds=0.0, passes=2)
WIDTHS = tuple(range(1, 25))


def _import_at(db: str, start: float, widths: tuple[int, ...]) -> int:
    """Wait until ``start``, then store a measurement per width on one imported target."""
    while time.time() < start:
        time.sleep(0.001)
    target = Target("pi", {"imported": True})
    return Store(db).add_measurements(
        (chaos_workload(w), target, "imported", Measurement.from_samples([w], "imported"))
        for w in widths)


def _campaign_at(db: str, start: float, widths: tuple[int, ...], path: str) -> int:
    """Wait until ``start``, then run a chaos campaign over ``widths``; return how many
    labels it took itself."""
    sys.path.insert(0, path)
    while time.time() < start:
        time.sleep(0.001)
    with Worker(WorkerSettings("chaos")) as worker:
        return run_campaign(Store(db), worker, [chaos_workload(w) for w in widths],
                            QUICK).measured


def _at_once(function, calls: list[tuple]) -> list[int]:
    """Run ``function(*call)`` in a process per call, all starting in the same instant."""
    start = time.time() + 3.0
    with _processes(len(calls)) as pool:
        return list(pool.map(function, *zip(*[(call[0], start, *call[1:]) for call in calls],
                                            strict=True)))


def _processes(n: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))


def _rows(db, table: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT * FROM {table}").fetchall()


def _label_keys(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT workload_id, target_id, protocol FROM measurements").fetchall()


def test_four_imports_racing_into_a_new_store_store_each_label_once(tmp_path):
    db = str(tmp_path / "new.db")
    added = _at_once(_import_at, [(db, WIDTHS[i:i + 12]) for i in (0, 4, 8, 12)])
    assert sum(added) == 24  # the overlaps were stored by whichever writer came first
    assert len(_label_keys(db)) == len(set(_label_keys(db))) == 24
    assert _rows(db, "lenna_meta") == [("schema_version", "5")]


def test_campaigns_and_an_import_at_once_take_every_label_exactly_once(tmp_path,
                                                                       chaos_backend):
    """Two campaigns over the same workloads (same seed), one over part of them (another
    seed) and an import, at once: no label is taken twice and every one is stored once."""
    db = str(tmp_path / "shared.db")
    same, part = WIDTHS[:12], WIDTHS[6:18]
    start = time.time() + 8.0  # workers start slowly on a busy machine
    with _processes(4) as pool:
        campaigns = [pool.submit(_campaign_at, db, start, widths, str(chaos_backend))
                     for widths in (same, same, part)]
        imported = pool.submit(_import_at, db, start, WIDTHS)
        taken = [campaign.result(timeout=300) for campaign in campaigns]
        assert imported.result(timeout=300) == 24
    keys = _label_keys(db)
    assert len(keys) == len(set(keys)) == 24 + 18  # the import's, and the campaigns' widths 1–18
    assert sum(taken) == 18  # each label measured by exactly one campaign
    assert _rows(db, "claims") == [] and _rows(db, "passes") == []
    with Worker(WorkerSettings("chaos")) as worker:
        target = target_of(worker)
        again = run_campaign(Store(db), worker, [chaos_workload(w) for w in WIDTHS[:18]], QUICK)
    assert again.measured == 0 and again.target == target


def test_a_claim_of_an_ended_process_is_taken_over_at_once(tmp_path):
    store = Store(str(tmp_path / "l.db"))
    target = Target("pi", {})
    dead = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    import socket

    gone = f"{socket.gethostname()}:{dead.pid}:00000000"
    alive = f"{socket.gethostname()}:{multiprocessing.current_process().pid}:11111111"
    elsewhere = "another-host:1:22222222"
    assert store.claim(["a", "b"], target, "p", gone, 60) == {"a", "b"}
    assert store.claim(["c"], target, "p", elsewhere, 60) == {"c"}
    assert store.claim(["a", "b", "c", "d"], target, "p", alive, 60) == {"a", "b", "d"}
    assert store.claim(["c"], target, "p", alive, 60) == set()  # live elsewhere until expiry
    store.renew_claims(elsewhere, -1)  # as if it stopped renewing a while ago
    assert store.claim(["c"], target, "p", alive, 60) == {"c"}
    store.release_claims(alive)
    assert _rows(tmp_path / "l.db", "claims") == []


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [(0, 0), (0, 0, 1, 2)], ids=["two-same-seed", "four"])
def test_lenna_runs_at_once_on_one_store(tmp_path, seeds):
    """Real campaigns (ONNX Runtime) started together on one store, with an import: none
    fails, every label is stored once and measured by one campaign."""
    import subprocess

    from lenna_nasbench201.cells import all_arch_strings

    db = tmp_path / "shared.db"
    csv = tmp_path / "lat.csv"
    cells = all_arch_strings()[:1200]
    csv.write_text("arch,device,ms\n" + "".join(f"{c},pi,{1 + i % 7}.5\n"
                                                for i, c in enumerate(cells)))
    runs = [subprocess.Popen(
        [sys.executable, "-m", "lenna_core", "run", "--source", "resnet-family",
         "-O", "input_size=32", "--n", "6", "--seed", str(seed), "--passes", "1",
         "--budget", "0.2", "--repeats", "1", "--keep-contended", "--estimator", "ridge",
         "--db", str(db),
         "--out", str(tmp_path / f"out{i}")], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for i, seed in enumerate(seeds)]
    imported = run_lenna("import", str(csv), "--source", "nasbench201", "--arch-col", "arch",
                         "--latency-col", "ms", "--target-cols", "device", "--db", str(db))
    assert imported.returncode == 0, imported.stderr
    errors = [proc.communicate(timeout=900)[1] for proc in runs]
    assert [proc.returncode for proc in runs] == [0] * len(runs), errors
    keys = _label_keys(db)
    assert len(keys) == len(set(keys))
    measured = {k for k in keys if k[2] != "imported"}
    new = sum(int(e.split("measurements: ")[1].split(" new")[0]) for e in errors)
    assert new == len(measured)
