"""Measurement protocols: parsing, stopping rules, interleaved references, statistics."""

from __future__ import annotations

import time

import numpy as np
import pytest

from lenna_core.errors import LennaError
from lenna_core.measurement.interference import clean_mask
from lenna_core.measurement.protocol import (
    LennaRule,
    MeasurementProtocol,
    median_ci_halfwidth,
    run_protocol,
)
from lenna_core.records import Measurement


class Sleeper:
    """A runner whose step is a sleep of known length (real time, really measured)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    def run(self) -> None:
        self.calls += 1
        time.sleep(self.seconds)

    def close(self) -> None:
        pass


def test_parse_protocols():
    assert MeasurementProtocol.parse("fixed:1000").fixed_runs == 1000
    assert MeasurementProtocol.parse("adaptive:0.02").ci == 0.02
    assert MeasurementProtocol.parse("lenna").kind == "lenna"
    keys = {MeasurementProtocol.parse(t).key for t in ("adaptive", "fixed:10", "lenna")}
    assert len(keys) == 3
    assert MeasurementProtocol(compensate=True).key != MeasurementProtocol().key


@pytest.mark.parametrize("text", ["fixed", "fixed:0", "adaptive:2", "lenna:3", "median:5"])
def test_bad_protocols(text):
    with pytest.raises(LennaError, match="protocol"):
        MeasurementProtocol.parse(text)


def test_fixed_protocol_takes_exactly_n_runs_after_warmup():
    runner = Sleeper(0.0005)
    protocol = MeasurementProtocol.parse("fixed:25", warmup_runs=4, warmup_seconds=0.0,
                                         compensate=False, passes=1)
    series = run_protocol(runner, protocol)
    # a run whose threads waited for a CPU (another process ran) is retaken
    clean = clean_mask(series.samples_ns, series.wait_ns, protocol.max_wait)
    assert sum(clean) == 25 and clean[-1] and series.stop_reason == "fixed_runs"
    assert runner.calls == 4 + len(series.samples_ns)
    assert min(series.samples_ns) >= 500_000


def test_adaptive_stops_when_the_median_is_pinned_down():
    protocol = MeasurementProtocol(ci=0.05, warmup_runs=1, warmup_seconds=0.0,
                                   budget_seconds=10.0, compensate=False, passes=1)
    series = run_protocol(Sleeper(0.002), protocol)
    assert series.stop_reason == "ci_reached"
    assert 10 <= len(series.samples_ns) < 1000
    assert median_ci_halfwidth(np.array(series.samples_ns, dtype=float)) <= 0.05


def test_adaptive_gives_up_at_the_budget():
    protocol = MeasurementProtocol(ci=1e-6, warmup_runs=1, warmup_seconds=0.0,
                                   budget_seconds=0.2, compensate=False)
    started = time.perf_counter()
    series = run_protocol(Sleeper(0.001), protocol)
    assert series.stop_reason == "time_budget"
    assert time.perf_counter() - started < 1.5


def test_lenna_rule_needs_ten_calm_rounds():
    rule = LennaRule(tolerance=0.01, patience=10)
    assert not any(rule.add(v) for v in [10.0, 12.0, 8.0])
    # The first calm round is stable (its average equals the last); the tenth converges.
    assert [rule.add(10.0) for _ in range(12)] == [False] * 9 + [True] * 3
    assert rule.converged


def test_lenna_protocol_converges_on_a_steady_runner():
    protocol = MeasurementProtocol(kind="lenna", warmup_runs=1, warmup_seconds=0.0,
                                   round_runs=5, budget_seconds=20.0, compensate=False,
                                   passes=1)
    series = run_protocol(Sleeper(0.001), protocol)
    assert series.stop_reason == "converged"
    clean = clean_mask(series.samples_ns, series.wait_ns, protocol.max_wait)
    assert sum(clean) % 5 == 0 and sum(clean) >= 55


def test_reference_is_interleaved_and_matched_in_duration():
    workload, reference = Sleeper(0.004), Sleeper(0.001)
    protocol = MeasurementProtocol.parse("fixed:20", warmup_runs=2, warmup_seconds=0.0,
                                         passes=1)
    series = run_protocol(workload, protocol, reference)
    clean = clean_mask(series.samples_ns, series.wait_ns, protocol.max_wait)
    assert len(series.reference_ns) == len(series.samples_ns) >= 20 and sum(clean) >= 20
    # each reference sample is a block of about four runs, reported per run
    assert reference.calls >= 20 * 3
    m = Measurement.from_samples(series.samples_ns, series.stop_reason, series.reference_ns)
    assert m.ratio == pytest.approx(4.0, rel=0.35)
    assert m.latency_ns(1_000_000) == pytest.approx(m.ratio * 1e6)
    assert Measurement.from_samples(series.samples_ns, "x").latency_ns(1e6) == m.median_ns


def test_ci_halfwidth_shrinks_with_more_samples():
    rng = np.random.default_rng(0)
    small = median_ci_halfwidth(1 + 0.1 * rng.random(20))
    large = median_ci_halfwidth(1 + 0.1 * rng.random(2000))
    assert large < small / 4
