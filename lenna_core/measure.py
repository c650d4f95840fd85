"""The measurement protocol: warm-up, timed repetitions and robust statistics."""

from __future__ import annotations

import time

import attrs

from lenna_core.interfaces import Runner
from lenna_core.records import Measurement


@attrs.frozen
class MeasurementProtocol:
    """Warm up by count and by time, then time runs until a run or time budget is spent."""

    warmup_runs: int = 3
    warmup_seconds: float = 0.2
    min_runs: int = 10
    max_runs: int = 200
    max_seconds: float = 0.5

    @property
    def key(self) -> str:
        """Identifies the protocol in the store: equal keys mean reusable measurements."""
        return (f"basic:warmup={self.warmup_runs}/{self.warmup_seconds}s,"
                f"runs={self.min_runs}-{self.max_runs},budget={self.max_seconds}s")


def measure(runner: Runner, protocol: MeasurementProtocol) -> Measurement:
    """Time ``runner.run`` under the protocol and summarise the samples."""
    clock = time.perf_counter_ns
    start = clock()
    warm = 0
    while warm < protocol.warmup_runs or clock() - start < protocol.warmup_seconds * 1e9:
        runner.run()
        warm += 1
    samples: list[int] = []
    start = clock()
    stop_reason = "max_runs"
    while len(samples) < protocol.max_runs:
        t0 = clock()
        runner.run()
        t1 = clock()
        samples.append(t1 - t0)
        if len(samples) >= protocol.min_runs and t1 - start >= protocol.max_seconds * 1e9:
            stop_reason = "time_budget"
            break
    return Measurement.from_samples(samples, stop_reason)
