"""Interference: run-queue waits, host load, spoiled runs, labels taken in passes, resuming
an interrupted campaign, and contended labels through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import attrs
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import assert_one_line_error, chaos_workload, run_lenna

from lenna_core.data.store import Store, measurements, passes
from lenna_core.measurement import campaign
from lenna_core.measurement import protocol as measure
from lenna_core.measurement.campaign import run_campaign, target_of
from lenna_core.measurement.interference import MIN_JIFFIES, HostLoadWindow, ThreadWaits
from lenna_core.measurement.passes import combine, label_done, passes_agree, under_load
from lenna_core.measurement.protocol import MeasurementProtocol, run_protocol
from lenna_core.measurement.worker import Worker, WorkerSettings
from lenna_core.records import Measurement

HAS_SCHEDSTAT = Path("/proc/self/task").is_dir() and any(
    (task / "schedstat").exists() for task in Path("/proc/self/task").iterdir())
USABLE_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []

BUSY_LOOP = """
import os
os.sched_setaffinity(0, {%d})
print("ready", flush=True)
while True:
    pass
"""


def start_busy_child(cpu: int) -> subprocess.Popen[str]:
    """A process pinned to ``cpu`` that keeps it busy; returns once it is spinning there."""
    child = subprocess.Popen([sys.executable, "-c", BUSY_LOOP % cpu], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def stop(child: subprocess.Popen[str]) -> None:
    child.kill()
    child.wait(10)


# ------------------------------------------------------------------ ThreadWaits on a fake /proc


def write_schedstat(proc: Path, tid: int, cpu_ns: int, wait_ns: int, slices: int) -> Path:
    path = proc / "self" / "task" / str(tid) / "schedstat"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{cpu_ns} {wait_ns} {slices}\n")
    return path


def test_thread_waits_sum_the_run_queue_delay_of_every_thread(tmp_path):
    first = write_schedstat(tmp_path, 101, 5_000_000, 1_000, 7)
    write_schedstat(tmp_path, 102, 9_000_000, 20_000, 3)
    write_schedstat(tmp_path, 103, 1, 300, 1)
    with ThreadWaits(tmp_path) as waits:
        assert waits.available
        assert waits.wait_ns() == 21_300
        # the same file, rewritten in place: the open descriptor reads the new value
        first.write_text("6000000 51000 9\n")
        assert waits.wait_ns() == 71_300
        assert waits.wait_ns() == 71_300  # re-read from the start every time
        first.write_text("6000000 1000000000000 9\n")  # a longer line than before
        assert waits.wait_ns() == 1_000_000_020_300
    assert not waits.available and waits.wait_ns() == 0  # closed


def test_thread_waits_skip_a_thread_whose_line_cannot_be_read(tmp_path):
    write_schedstat(tmp_path, 1, 10, 400, 1)
    broken = write_schedstat(tmp_path, 2, 10, 600, 1)
    with ThreadWaits(tmp_path) as waits:
        assert waits.wait_ns() == 1000
        broken.write_text("")  # as a thread that ended reads
        assert waits.wait_ns() == 400


def test_a_thread_that_ended_before_it_was_opened_is_skipped(tmp_path):
    write_schedstat(tmp_path, 1, 10, 400, 1)
    (tmp_path / "self" / "task" / "2").mkdir()  # listed, but its schedstat is gone
    with ThreadWaits(tmp_path) as waits:
        assert waits.available and waits.wait_ns() == 400


def test_thread_waits_without_schedstat_are_unavailable_and_zero(tmp_path):
    waits = ThreadWaits(tmp_path / "no-proc")
    assert not waits.available
    assert waits.wait_ns() == 0
    waits.close()


@pytest.mark.skipif(not HAS_SCHEDSTAT, reason="no /proc/self/task/*/schedstat")
def test_thread_waits_read_this_process_for_real():
    with ThreadWaits() as waits:
        assert waits.available
        before = waits.wait_ns()
        time.sleep(0.01)
        assert waits.wait_ns() >= before >= 0


# -------------------------------------------------------------- HostLoadWindow on a fake /proc


def write_stat(proc: Path, busy: dict[int, int], idle: dict[int, int]) -> None:
    """A /proc/stat with per-CPU user and idle jiffies (other columns small and fixed), an
    aggregate line and a CPU this process may not use, both with huge values to be ignored."""
    stranger = max(USABLE_CPUS, default=0) + 1
    lines = [f"cpu  {10**9} 0 {10**9} {10**9} 0 0 0 0 0 0"]
    for cpu in USABLE_CPUS:
        lines.append(f"cpu{cpu} {busy[cpu]} 1 2 {idle[cpu]} 3 0 0 0 0 0")
    lines.append(f"cpu{stranger} {busy.get(stranger, 0)} 0 0 0 0 0 0 0 0 0")
    lines += ["intr 1 2 3", "ctxt 12345", "btime 1700000000"]
    (proc / "stat").write_text("\n".join(lines) + "\n")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@pytest.mark.skipif(not USABLE_CPUS, reason="no sched_getaffinity")
def test_host_load_is_busy_time_of_usable_cpus_minus_our_own(tmp_path):
    hz = os.sysconf("SC_CLK_TCK")
    n = len(USABLE_CPUS)
    busy = dict.fromkeys(USABLE_CPUS, 1000)
    idle = dict.fromkeys(USABLE_CPUS, 5000)
    write_stat(tmp_path, busy, idle)
    own_before = own_cpu_seconds()
    window = HostLoadWindow(tmp_path)
    # 100 jiffies elapse on every usable CPU: all busy on the first, half on the second
    # (150 busy in total with two CPUs), idle on the rest; the foreign CPU spins and the
    # aggregate line moves, neither of which may count
    for index, cpu in enumerate(USABLE_CPUS):
        share = (100, 50)[index] if index < 2 else 0
        busy[cpu] += share
        idle[cpu] += 100 - share
    busy[max(USABLE_CPUS) + 1] = 10**6
    write_stat(tmp_path, busy, idle)
    load = window.stop()
    own_after = own_cpu_seconds()
    busy_jiffies = 150 if n > 1 else 100
    assert load.cpus == tuple(USABLE_CPUS)
    # others = busy seconds - our CPU seconds, over the wall time (total / n), in CPUs
    wall = 100 / hz
    high = busy_jiffies / hz / wall
    low = (busy_jiffies / hz - (own_after - own_before)) / wall
    assert low - 0.05 <= load.others_cpus <= high + 1e-9
    if n == 2 and hz == 100:
        assert load.others_cpus == pytest.approx(1.5, abs=0.05)


@pytest.mark.skipif(not USABLE_CPUS, reason="no sched_getaffinity")
def test_host_load_is_never_negative_and_unknown_when_too_short(tmp_path):
    busy = dict.fromkeys(USABLE_CPUS, 0)
    idle = dict.fromkeys(USABLE_CPUS, 0)
    write_stat(tmp_path, busy, idle)
    window = HostLoadWindow(tmp_path)
    total = MIN_JIFFIES - 1  # one tick short, all idle
    for i, cpu in enumerate(USABLE_CPUS):
        idle[cpu] += total // len(USABLE_CPUS) + (1 if i < total % len(USABLE_CPUS) else 0)
    write_stat(tmp_path, busy, idle)
    assert window.stop().others_cpus is None
    # a window of exactly MIN_JIFFIES is long enough; all idle while we spent CPU time
    window = HostLoadWindow(tmp_path)
    deadline = time.process_time() + 0.02
    while time.process_time() < deadline:
        pass
    idle[USABLE_CPUS[0]] += MIN_JIFFIES
    write_stat(tmp_path, busy, idle)
    assert window.stop().others_cpus == 0.0


def test_host_load_without_proc_stat_is_unknown(tmp_path):
    assert HostLoadWindow(tmp_path / "missing").stop().others_cpus is None


# ------------------------------------------------------------------ Measurement with waits


def test_spoiled_runs_are_kept_raw_but_left_out_of_the_summary():
    m = Measurement.from_samples((100, 100, 100, 200), "fixed_runs", wait_ns=(0, 0, 1, 150),
                                 max_wait=0.05, min_clean=3)
    assert m.status == "ok" and m.ok
    assert m.clean_runs == 3 and m.runs == 4
    assert m.samples_ns == (100, 100, 100, 200) and m.wait_ns == (0, 0, 1, 150)
    assert m.median_ns == 100 and m.p90_ns == 100 and m.iqr_ns == 0
    assert m.contention == 151 / 500


def test_too_few_clean_runs_make_a_contended_summary_over_all_runs():
    m = Measurement.from_samples((100, 100, 100, 200), "fixed_runs", wait_ns=(0, 0, 1, 150),
                                 max_wait=0.05, min_clean=4)
    assert m.status == "contended" and m.contended and not m.ok
    assert m.clean_runs == 3 and m.runs == 4
    assert m.median_ns == 100
    assert m.p90_ns == pytest.approx(170)  # the spoiled 200 is in this summary
    assert m.contention == 151 / 500
    assert not m.usable() and m.usable(keep_contended=True)


def test_a_wait_at_exactly_the_limit_is_clean_and_no_waits_mean_all_clean():
    edge = Measurement.from_samples((1000, 1000), "x", wait_ns=(50, 51), max_wait=0.05,
                                    min_clean=1)
    assert edge.clean_runs == 1
    unknown = Measurement.from_samples((1000, 1000), "x", max_wait=0.05, min_clean=2)
    assert unknown.ok and unknown.clean_runs == 2 and unknown.contention is None


def test_a_pair_is_clean_only_when_workload_and_reference_both_are():
    samples = (100, 100, 100, 400, 900)
    reference = (50, 50, 50, 50, 50)
    m = Measurement.from_samples(samples, "fixed_runs", reference, wait_ns=(0, 0, 0, 0, 90),
                                 reference_wait_ns=(1, 0, 0, 10, 0), max_wait=0.05,
                                 min_clean=3)
    # pair 4: the reference waited 10 > 2.5 ns; pair 5: the workload waited 90 > 45 ns
    assert m.ok and m.clean_runs == 3
    assert m.median_ns == 100 and m.ratio == 2.0 and m.reference_median_ns == 50
    assert m.reference_wait_ns == (1, 0, 0, 10, 0)
    assert m.contention == (90 + 11) / (1600 + 250)
    clean_reference = Measurement.from_samples(samples, "fixed_runs", reference,
                                               wait_ns=(0, 0, 0, 0, 90), max_wait=0.05,
                                               min_clean=3)
    assert clean_reference.clean_runs == 4  # no reference waits: only the workload's count


# ------------------------------------------------------------------ passes


PROTOCOL = MeasurementProtocol(passes=3, max_passes=5, agreement=0.10, max_wait=0.05,
                               max_others=0.8)


def a_pass(median: int, others: float | None = 0.1, start: int = 0,
           status: str = "ok") -> Measurement:
    """A pass of four clean samples with median ``median``."""
    if status == "failed":
        return Measurement.failed("worker crashed", others_cpu=others)
    samples = (median - 1 - start, median, median, median + 1 + start)
    return Measurement.from_samples(samples, "fixed_runs", wait_ns=(0, 1, 2, 0),
                                    max_wait=0.05, min_clean=4, others_cpu=others, seconds=1.0,
                                    timestamp=1000.0 + median)


def test_three_passes_within_the_agreement_finish_the_label():
    taken = [a_pass(100), a_pass(105), a_pass(108)]
    assert not label_done(taken[:1], PROTOCOL) and not label_done(taken[:2], PROTOCOL)
    assert passes_agree(taken, PROTOCOL) and label_done(taken, PROTOCOL)
    label = combine(taken, PROTOCOL)
    assert label.status == "ok" and label.stop_reason == "passes_agree"
    assert label.passes == 3 and label.median_ns == 100  # the fastest pass's median


def test_passes_that_disagree_get_more_until_max_passes():
    taken = [a_pass(100), a_pass(130), a_pass(100)]
    assert not passes_agree(taken, PROTOCOL) and not label_done(taken, PROTOCOL)
    taken.append(a_pass(101))
    assert not label_done(taken, PROTOCOL)
    taken.append(a_pass(102))
    assert label_done(taken, PROTOCOL)
    label = combine(taken, PROTOCOL)
    assert label.status == "ok" and label.stop_reason == "max_passes" and label.passes == 5
    assert label.median_ns == 100  # the fastest pass: the slow one is left out, not averaged in


def test_a_contended_pass_does_not_count_towards_agreement():
    spoiled = Measurement.from_samples((500, 500, 500), "contended", wait_ns=(400, 400, 400),
                                       max_wait=0.05, min_clean=3)
    assert spoiled.contended
    taken = [a_pass(100), spoiled, a_pass(101)]
    assert not passes_agree(taken, PROTOCOL) and not label_done(taken, PROTOCOL)
    taken.append(a_pass(102))
    assert passes_agree(taken, PROTOCOL) and label_done(taken, PROTOCOL)
    label = combine(taken, PROTOCOL)
    assert label.status == "ok" and label.passes == 4
    assert label.runs == 15 and label.clean_runs == 12
    assert label.median_ns == 100 and label.p90_ns < 500  # the spoiled pass is left out
    assert label.sample_pass == (0,) * 4 + (1,) * 3 + (2,) * 4 + (3,) * 4
    # too few clean runs over all passes: the label is contended (label_min_runs is 10)
    short = combine(taken[:3], attrs.evolve(PROTOCOL, passes=2))
    assert short.clean_runs == 8 and short.status == "contended"


def test_a_failed_pass_fails_the_label():
    failed = a_pass(0, status="failed")
    taken = [a_pass(100), failed]
    assert label_done(taken, PROTOCOL)
    assert combine(taken, PROTOCOL) is failed


def test_passes_all_under_load_make_a_contended_label_after_the_planned_passes():
    taken = [a_pass(100, others=0.8), a_pass(150, others=0.95)]
    assert under_load(taken, PROTOCOL) and not label_done(taken, PROTOCOL)
    taken.append(a_pass(200, others=1.2))
    assert not passes_agree(taken, PROTOCOL)
    assert label_done(taken, PROTOCOL)  # more passes would only cost time
    label = combine(taken, PROTOCOL)
    assert label.status == "contended" and label.clean_runs == 12
    assert label.others_cpu == pytest.approx((0.8 + 0.95 + 1.2) / 3)
    # one quiet pass among them: not under load, the label is ok
    mixed = [a_pass(100, others=0.9), a_pass(101, others=None), a_pass(102, others=0.9)]
    assert not under_load(mixed, PROTOCOL)
    assert combine(mixed, PROTOCOL).status == "ok"


def test_combine_concatenates_samples_in_pass_order():
    taken = [a_pass(100, others=0.1), a_pass(200, others=0.3, start=1),
             a_pass(300, others=None, start=2)]
    label = combine(taken, attrs.evolve(PROTOCOL, agreement=3.0))
    assert label.samples_ns == (99, 100, 100, 101, 198, 200, 200, 202, 297, 300, 300, 303)
    assert label.wait_ns == (0, 1, 2, 0) * 3
    assert label.sample_pass == (0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2)
    assert label.runs == 12 and label.clean_runs == 12 and label.passes == 3
    assert label.status == "ok" and label.median_ns == 100  # the fastest of the three passes
    assert label.others_cpu == pytest.approx(0.2)  # the mean over the passes that know it
    assert label.seconds == 3.0 and label.timestamp == taken[-1].timestamp
    assert label.contention == 9 / sum(label.samples_ns)


# ------------------------------------------------------------------ a pass with chosen waits


class FakeWaits:
    """Stands in for ThreadWaits in run_protocol: the waits are what the runners add."""

    total = 0

    def __init__(self) -> None:
        FakeWaits.total = 0

    available = True

    def wait_ns(self) -> int:
        return FakeWaits.total

    def __enter__(self) -> FakeWaits:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class WaitingSleeper:
    """Sleeps ``seconds`` a run; run number k (from 1) waits ``waits(k)`` ns meanwhile."""

    def __init__(self, seconds: float, waits) -> None:
        self.seconds, self.waits, self.calls = seconds, waits, 0

    def run(self) -> None:
        self.calls += 1
        time.sleep(self.seconds)
        FakeWaits.total += self.waits(self.calls)

    def close(self) -> None:
        pass


@pytest.fixture
def fake_waits(monkeypatch):
    monkeypatch.setattr(measure, "ThreadWaits", FakeWaits)


def test_a_pass_keeps_timing_until_it_has_its_clean_runs(fake_waits):
    protocol = MeasurementProtocol.parse("fixed:10", warmup_runs=0, warmup_seconds=0.0,
                                         passes=1, compensate=False)
    runner = WaitingSleeper(0.001, lambda k: 10**9 if k % 3 == 0 else k)
    series = run_protocol(runner, protocol)
    # every third run waited a second: spoiled; 10 clean runs take 14
    assert series.stop_reason == "fixed_runs"
    assert series.wait_ns == tuple(10**9 if k % 3 == 0 else k for k in range(1, 15))
    assert len(series.samples_ns) == 14 and runner.calls == 14
    m = Measurement.from_samples(series.samples_ns, series.stop_reason, wait_ns=series.wait_ns,
                                 max_wait=protocol.max_wait, min_clean=protocol.pass_min_runs)
    assert m.ok and m.clean_runs == 10 and m.runs == 14


def test_a_slow_workload_whose_runs_are_all_clean_is_not_contended(fake_waits):
    """Runs longer than the budget allows ten of: the pass stops at its budget, and the
    measurement of its few clean runs is ok, not contended."""
    protocol = MeasurementProtocol(warmup_runs=0, warmup_seconds=0.0, passes=1,
                                   budget_seconds=0.1)
    started = time.perf_counter()
    series = run_protocol(WaitingSleeper(0.04, lambda k: 0), protocol)
    assert series.stop_reason == "time_budget" and 2 <= len(series.samples_ns) <= 4
    assert time.perf_counter() - started < 0.2  # the budget, not twice it
    m = Measurement.from_samples(series.samples_ns, series.stop_reason, wait_ns=series.wait_ns,
                                 max_wait=protocol.max_wait, min_clean=protocol.pass_min_runs)
    assert m.ok and m.clean_runs == len(series.samples_ns) < protocol.pass_min_runs


def test_a_pass_without_enough_clean_runs_gives_up(fake_waits):
    protocol = MeasurementProtocol(kind="fixed", fixed_runs=10, warmup_runs=0,
                                   warmup_seconds=0.0, passes=1, compensate=False,
                                   max_runs=20)
    series = run_protocol(WaitingSleeper(0.001, lambda k: 10**9), protocol)
    assert series.stop_reason == "contended" and len(series.samples_ns) == 20
    # and within twice its time budget when the runs cap is far
    slow = attrs.evolve(protocol, max_runs=5000, budget_seconds=0.1)
    started = time.perf_counter()
    series = run_protocol(WaitingSleeper(0.001, lambda k: 10**9), slow)
    assert series.stop_reason == "contended"
    assert 0.2 <= time.perf_counter() - started < 2.0
    assert len(series.samples_ns) < 5000


def test_reference_waits_are_per_reference_run_like_its_samples(fake_waits):
    protocol = MeasurementProtocol(kind="fixed", fixed_runs=5, warmup_runs=1,
                                   warmup_seconds=0.0, passes=1, compensate=True,
                                   max_runs=60)
    workload = WaitingSleeper(0.002, lambda k: 1000)
    reference = WaitingSleeper(0.0001, lambda k: 1000)  # ~10+ reference runs per pair
    series = run_protocol(workload, protocol, reference)
    # each run waited 1 us: 5% of a 100 us reference run is 5 us, every pair is clean
    assert series.reference_wait_ns == (1000,) * 5
    assert series.stop_reason == "fixed_runs" and len(series.samples_ns) == 5


# ------------------------------------------------------------------ real interference


class Spinner:
    """A CPU-bound pure-Python step of about ``seconds`` on this CPU."""

    def __init__(self, seconds: float) -> None:
        self.loops = 20_000
        self.run()  # warm
        took = min(self._time() for _ in range(5))
        self.loops = max(1000, int(self.loops * seconds / took))

    def _time(self) -> float:
        start = time.perf_counter()
        self.run()
        return time.perf_counter() - start

    def run(self) -> None:
        total = 0
        for i in range(self.loops):
            total += i * i

    def close(self) -> None:
        pass


def spoiled_share(series) -> float:
    spoiled = [w > 0.05 * s for s, w in zip(series.samples_ns, series.wait_ns, strict=True)]
    return sum(spoiled) / len(spoiled)


def clean_median(series) -> float:
    return float(np.median([s for s, w in zip(series.samples_ns, series.wait_ns, strict=True)
                            if w <= 0.05 * s]))


def idlest_cpu() -> int:
    """The usable CPU other processes use least right now (others share this host)."""
    def busy() -> dict[int, int]:
        found = {}
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu" and int(name[3:]) in USABLE_CPUS:
                values = [int(v) for v in fields[:8]]
                found[int(name[3:])] = sum(values) - values[3] - values[4]
        return found

    before = busy()
    time.sleep(0.2)
    after = busy()
    return min(USABLE_CPUS, key=lambda cpu: after.get(cpu, 0) - before.get(cpu, 0))


def quietest(runner: Spinner, protocol: MeasurementProtocol, attempts: int = 3):
    """The pass with the fewest spoiled runs of up to ``attempts`` (others share this host)."""
    taken = [run_protocol(runner, protocol)]
    while spoiled_share(taken[-1]) > 0.2 and len(taken) < attempts:
        taken.append(run_protocol(runner, protocol))
    return min(taken, key=spoiled_share)


@pytest.mark.skipif(not HAS_SCHEDSTAT or not USABLE_CPUS or not Path("/proc/stat").exists(),
                    reason="needs /proc/self/task/*/schedstat and sched_setaffinity")
def test_a_process_on_the_same_cpu_spoils_the_runs():
    protocol = MeasurementProtocol(passes=1, budget_seconds=0.5, warmup_seconds=0,
                                   compensate=False)
    original = os.sched_getaffinity(0)
    cpu = idlest_cpu()
    try:
        os.sched_setaffinity(0, {cpu})
        short, long = Spinner(0.003), Spinner(0.015)
        quiet_short, quiet_long = quietest(short, protocol), quietest(long, protocol)
        child = start_busy_child(cpu)
        try:
            loaded_short = run_protocol(short, protocol)
            loaded_long = run_protocol(long, protocol)
        finally:
            stop(child)
    finally:
        os.sched_setaffinity(0, original)
    for quiet in (quiet_short, quiet_long):
        assert len(quiet.wait_ns) == len(quiet.samples_ns) >= 10
        assert spoiled_share(quiet) <= 0.2, (quiet.samples_ns, quiet.wait_ns)
        assert quiet.stop_reason != "contended"
    for loaded in (loaded_short, loaded_long):
        assert len(loaded.wait_ns) == len(loaded.samples_ns) >= 10
        assert loaded.others_cpu is not None and loaded.others_cpu > 0.3
        assert Measurement.from_samples(loaded.samples_ns, loaded.stop_reason,
                                        wait_ns=loaded.wait_ns).contention > 0.1
    # a step longer than a time slice: every run is preempted by the other process; too
    # few clean runs in twice the budget, the pass gives up and its measurement is contended
    assert spoiled_share(loaded_long) > 0.8, (loaded_long.samples_ns, loaded_long.wait_ns)
    assert loaded_long.stop_reason == "contended"
    measured = Measurement.from_samples(loaded_long.samples_ns, loaded_long.stop_reason,
                                        wait_ns=loaded_long.wait_ns, max_wait=0.05,
                                        min_clean=10)
    assert measured.contended and measured.clean_runs < 10
    # a 3 ms step fits in a slice some of the time: the runs that did not waited for the
    # other process and took much longer; the summary leaves them out
    assert spoiled_share(loaded_short) > 0.3, (loaded_short.samples_ns, loaded_short.wait_ns)
    spoiled = [s for s, w in zip(loaded_short.samples_ns, loaded_short.wait_ns, strict=True)
               if w > 0.05 * s]
    assert float(np.median(spoiled)) > 1.3 * clean_median(loaded_short)
    summary = Measurement.from_samples(loaded_short.samples_ns, loaded_short.stop_reason,
                                       wait_ns=loaded_short.wait_ns, max_wait=0.05,
                                       min_clean=1)
    assert summary.median_ns == clean_median(loaded_short)


# ------------------------------------------------------------------ resuming a campaign


class Counting:
    """Wraps a worker's ``measure``: records every pass, raises KeyboardInterrupt on call
    ``interrupt_at`` (before measuring)."""

    def __init__(self, measure, interrupt_at: int | None = None) -> None:
        self.measure, self.interrupt_at = measure, interrupt_at
        self.taken: dict[str, list[Measurement]] = {}
        self.calls = 0

    def __call__(self, workload, protocol, *args, **kwargs):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        measured = self.measure(workload, protocol, *args, **kwargs)
        self.taken.setdefault(workload.id, []).append(measured)
        return measured


def count_rows(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


@pytest.mark.parametrize("group", [None, 2], ids=["one-group", "groups-of-2"])
def test_an_interrupted_campaign_resumes_without_losing_or_repeating_a_pass(tmp_path,
                                                                            chaos_backend,
                                                                            monkeypatch, group):
    if group is not None:  # labels of the first group are final before the interrupt
        monkeypatch.setattr(campaign, "GROUP", group)
    protocol = MeasurementProtocol.parse("fixed:6", warmup_runs=1, warmup_seconds=0.0,
                                         passes=3)
    loads = [chaos_workload(w) for w in (20, 30, 40, 50)]  # 2 to 5 ms sleeps
    store = Store(str(tmp_path / "l.db"))
    with Worker(WorkerSettings("chaos")) as worker:
        target = target_of(worker)
        real = worker.measure
        first = Counting(real, interrupt_at=6)
        monkeypatch.setattr(worker, "measure", first)
        with pytest.raises(KeyboardInterrupt):
            run_campaign(store, worker, loads, protocol)
        assert first.calls == 6 and sum(map(len, first.taken.values())) == 5
        # every pass taken is kept: committed as a pass, or in a label it finished
        pending = store.pending_passes(target, protocol.key)
        final = {w.id: m for w in loads
                 if (m := store.get_measurement(w, target, protocol.key)) is not None}
        assert set(pending).isdisjoint(final)
        assert set(pending) | set(final) == set(first.taken)
        for load_id, taken in first.taken.items():
            if load_id in final:
                assert label_done(taken, protocol)
                assert final[load_id] == combine(taken, protocol)
            else:
                assert not label_done(taken, protocol)
                assert pending[load_id] == taken
        if len(loads) <= campaign.GROUP:
            # a pass of each label in the first round, one of the second round's: all kept
            assert sorted(len(p) for p in pending.values()) == [1, 1, 1, 2]
            assert final == {}
        elif campaign.GROUP == 2 and final and all(m.stop_reason == "passes_agree"
                                                   for m in final.values()):
            # three rounds of the first two labels: one final, the other's 2 passes kept
            assert len(final) == 1 and [len(p) for p in pending.values()] == [2]
        assert count_rows(store, measurements) == len(final)

        again = Counting(real)
        monkeypatch.setattr(worker, "measure", again)
        result = run_campaign(Store(str(tmp_path / "l.db")), worker, loads, protocol)
        assert result.measured == 4 - len(final)
        for load, label in zip(loads, result.measurements, strict=True):
            if load.id in final:
                assert label == final[load.id] and load.id not in again.taken
                continue
            taken = pending.get(load.id, []) + again.taken[load.id]
            # the stored passes were used, none was taken again, and nothing after the end
            assert label_done(taken, protocol) and not label_done(taken[:-1], protocol)
            assert label == combine(taken, protocol)
            assert label.passes == len(taken) >= 3
            assert label.sample_pass == tuple(
                i for i, p in enumerate(taken) for _ in p.samples_ns)
            assert label.status in ("ok", "contended")  # contended only on a loaded host
            assert label.clean_runs >= 6
        total = sum(label.passes for label in result.measurements)
        assert again.calls == total - 5
        if all(label.stop_reason == "passes_agree" for label in result.measurements):
            assert again.calls == 7 and total == 12
        assert count_rows(store, passes) == 0
        assert count_rows(store, measurements) == 4
        assert store.pending_passes(target, protocol.key) == {}

        third = Counting(real)
        monkeypatch.setattr(worker, "measure", third)
        reused = run_campaign(store, worker, loads, protocol)
    assert (reused.measured, reused.reused, third.calls) == (0, 4, 0)
    assert reused.measurements == result.measurements


# ------------------------------------------------------------------ the CLI


@pytest.mark.parametrize(("args", "fragment"), [
    (("--threads", "0"), "--threads"),
    (("--threads", "-1"), "--threads"),
    (("--threads", "999"), "--threads"),
    (("--threads", "x"), "--threads"),
    (("--passes", "0"), "--passes"),
    (("--passes", "9"), "--passes"),
    (("--budget", "nan"), "--budget"),
    (("--budget", "inf"), "--budget"),
    (("--budget", "0"), "--budget"),
])
def test_bad_run_options_fail_in_one_line_before_measuring(tmp_path, args, fragment):
    db, out = tmp_path / "l.db", tmp_path / "out"
    result = run_lenna("run", *args, "--n", "5", "--db", str(db), "--out", str(out),
                       timeout=120)
    assert_one_line_error(result, fragment)
    assert not db.exists()


@pytest.mark.skipif(not USABLE_CPUS, reason="needs sched_setaffinity")
def test_a_bad_timeout_fails_in_one_line_on_a_busy_host_too(tmp_path):
    db, out = tmp_path / "l.db", tmp_path / "out"
    child = start_busy_child(USABLE_CPUS[0])  # the quick host check warns
    try:
        result = run_lenna("run", "--timeout", "nan", "--n", "5", "--db", str(db), "--out",
                           str(out), timeout=120)
    finally:
        stop(child)
    assert not db.exists()
    assert_one_line_error(result, "--timeout")


def test_threads_auto_and_a_count_are_accepted():
    from lenna_core.cli.options import parse_threads

    assert parse_threads("auto") is None and parse_threads(" AUTO ") is None
    assert parse_threads("1") == 1 and parse_threads("2") == 2


@pytest.mark.slow
@pytest.mark.skipif(len(USABLE_CPUS) < 2 or not HAS_SCHEDSTAT or 0 not in USABLE_CPUS,
                    reason="needs CPU 0 and another usable CPU, and schedstat")
def test_a_campaign_taken_under_contention_is_left_out_unless_kept(tmp_path):
    pytest.importorskip("onnxruntime")
    db, out = tmp_path / "l.db", tmp_path / "out"
    args = ("run", "--cpus", "0", "--threads", "1", "--n", "5",
            "--source-option", "input_size=32", "--source-option", "max_depth_factor=0.5",
            "--estimator", "linear", "--repeats", "1", "--profile-runs", "0",
            "--budget", "0.6", "--db", str(db), "--out", str(out))
    child = start_busy_child(0)
    try:
        refused = run_lenna(*args, timeout=300)
        kept = run_lenna(*args, "--keep-contended", timeout=300)
    finally:
        stop(child)
    assert refused.returncode != 0, refused.stderr
    assert "Traceback" not in refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, refused.stderr
    for fragment in ("left to fit", "contended", "--keep-contended"):
        assert fragment in errors[0], errors[0]

    assert kept.returncode == 0, kept.stderr
    assert "0 new, 5 reused" in kept.stderr  # the labels were stored by the refused run
    lines = [line for line in kept.stderr.splitlines() if "labels were taken under" in line]
    assert len(lines) == 1 and " of 5 labels were taken under contention" in lines[0], \
        kept.stderr
    assert "fitted anyway" in lines[0]

    csv = tmp_path / "m.csv"
    exported = run_lenna("export", str(csv), "--format", "csv", "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    frame = pd.read_csv(csv)
    assert {"clean_runs", "discarded_runs", "contention", "others_cpu", "passes"} <= set(frame)
    assert (frame["status"] == "contended").any()
    assert len(frame) == 5

