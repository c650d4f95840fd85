"""Measurement protocols: warm-up, then timed runs until a stopping rule is met.

- ``adaptive`` (default): repeat until the 95% confidence interval of the median is within
  ``±ci`` of it (default ±1%) or the time budget is spent.
- ``fixed:N``: exactly N timed runs.
- ``lenna``: the LENNA study's rule: rounds of runs; keep the cumulative average of each
  round's 40th percentile; stop when it moves by less than 1% for 10 consecutive rounds.

With a reference runner, every timed run of the workload is paired with one of the reference
(A/B/A/B), and the rules apply to the per-pair ratio workload/reference, which host drift
cancels out of.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

import attrs
import numpy as np

from lenna_core.errors import LennaError
from lenna_core.interfaces import Runner

KINDS = ("adaptive", "fixed", "lenna")


@attrs.frozen
class MeasurementProtocol:
    """How long to warm up, how to decide when to stop, and whether to interleave a reference."""

    kind: str = "adaptive"
    warmup_runs: int = 3
    warmup_seconds: float = 0.2
    min_runs: int = 10
    max_runs: int = 5000
    budget_seconds: float = 2.0
    ci: float = 0.01
    fixed_runs: int = 100
    round_runs: int = 10
    tolerance: float = 0.01
    patience: int = 10
    compensate: bool = False

    def __attrs_post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LennaError(f"unknown protocol {self.kind!r}; use adaptive, fixed:N or lenna")

    @classmethod
    def parse(cls, text: str, **settings: object) -> MeasurementProtocol:
        """``adaptive``, ``adaptive:0.02`` (CI half-width), ``fixed:1000`` or ``lenna``."""
        match = re.fullmatch(r"(adaptive|fixed|lenna)(?::([0-9.]+))?", text.strip())
        if match is None:
            raise LennaError(f"bad --protocol {text!r}; use adaptive[:CI], fixed:N or lenna")
        kind, arg = match.groups()
        if kind == "fixed":
            if arg is None or not arg.isdigit() or int(arg) < 1:
                raise LennaError(
                    f"bad --protocol {text!r}: fixed needs a run count, e.g. fixed:100")
            settings["fixed_runs"] = int(arg)
        elif kind == "adaptive" and arg is not None:
            ci = float(arg)
            if not 0 < ci < 1:
                raise LennaError(f"bad --protocol {text!r}: the CI half-width must be in (0, 1)")
            settings["ci"] = ci
        elif arg is not None:
            raise LennaError(f"bad --protocol {text!r}: lenna takes no argument")
        return cls(kind=kind, **settings)

    @property
    def key(self) -> str:
        """Identifies the protocol in the store: equal keys mean reusable measurements."""
        rule = {
            "adaptive": f"adaptive:ci={self.ci},runs={self.min_runs}-{self.max_runs}",
            "fixed": f"fixed:{self.fixed_runs}",
            "lenna": f"lenna:round={self.round_runs},tol={self.tolerance},"
                     f"patience={self.patience},max={self.max_runs}",
        }[self.kind]
        budget = "" if self.kind == "fixed" else f",budget={self.budget_seconds}s"
        reference = ",reference" if self.compensate else ""
        return (f"{rule}{budget},warmup={self.warmup_runs}/{self.warmup_seconds}s"
                f"{reference}")


def median_ci_halfwidth(samples: np.ndarray) -> float:
    """Relative half-width of the distribution-free 95% confidence interval of the median."""
    n = len(samples)
    ordered = np.sort(samples)
    spread = 1.96 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - spread) - 1)
    high = min(n - 1, math.ceil(n / 2 + spread))
    median = float(np.median(ordered))
    return float(ordered[high] - ordered[low]) / (2 * median) if median > 0 else math.inf


class LennaRule:
    """The LENNA study's convergence rule on a stream of round values.

    Feed each round's value; ``converged`` once the cumulative average has changed by less
    than ``tolerance`` (relative) for ``patience`` consecutive rounds.
    """

    def __init__(self, tolerance: float = 0.01, patience: int = 10) -> None:
        self.tolerance, self.patience = tolerance, patience
        self.total, self.rounds, self.stable = 0.0, 0, 0
        self.average: float | None = None

    def add(self, value: float) -> bool:
        self.total += value
        self.rounds += 1
        previous, self.average = self.average, self.total / self.rounds
        if previous is not None and abs(self.average - previous) <= self.tolerance * previous:
            self.stable += 1
        else:
            self.stable = 0
        return self.converged

    @property
    def converged(self) -> bool:
        return self.stable >= self.patience


def _timer(runner: Runner) -> Callable[[], int]:
    timed_run = getattr(runner, "timed_run", None)
    if callable(timed_run):
        return timed_run
    clock = time.perf_counter_ns

    def timed() -> int:
        start = clock()
        runner.run()
        return clock() - start

    return timed


def _matched_timer(reference: Runner, timed: Callable[[], int],
                   workload_ns: int) -> Callable[[], int]:
    """Time the reference as ``k`` back-to-back runs lasting about as long as the workload.

    A reference sample spanning the same stretch of time as the workload sample it is paired
    with sees the same host speed, which is what makes the ratio drift-free.
    """
    single = min(timed() for _ in range(3))
    repeats = max(1, min(1000, round(workload_ns / max(single, 1))))
    if repeats == 1:
        return timed

    def timed_block() -> int:
        total = 0
        for _ in range(repeats):
            total += timed()
        return total // repeats

    return timed_block


@attrs.frozen
class Series:
    """The raw outcome of a protocol: workload samples, reference samples and why it stopped."""

    samples_ns: tuple[int, ...]
    reference_ns: tuple[int, ...]
    stop_reason: str


def run_protocol(runner: Runner, protocol: MeasurementProtocol,
                 reference: Runner | None = None) -> Series:
    """Warm up (both runners), then time runs until the protocol's rule stops them."""
    time_workload = _timer(runner)
    start = time.perf_counter()
    warm = 0
    while warm < protocol.warmup_runs or time.perf_counter() - start < protocol.warmup_seconds:
        runner.run()
        if reference is not None:
            reference.run()
        warm += 1
    time_reference = None
    if reference is not None:
        time_reference = _matched_timer(reference, _timer(reference), time_workload())

    samples: list[int] = []
    references: list[int] = []
    rule = LennaRule(protocol.tolerance, protocol.patience)
    start = time.perf_counter()
    limit = protocol.fixed_runs if protocol.kind == "fixed" else protocol.max_runs
    while len(samples) < limit:
        if time_reference is not None:
            references.append(time_reference())
        samples.append(time_workload())
        n = len(samples)
        if protocol.kind == "lenna" and n % protocol.round_runs == 0:
            last = _values(samples[-protocol.round_runs:], references[-protocol.round_runs:])
            if rule.add(float(np.percentile(last, 40))):
                return Series(tuple(samples), tuple(references), "converged")
        elif protocol.kind == "adaptive" and n >= protocol.min_runs and n % 5 == 0:
            if median_ci_halfwidth(_values(samples, references)) <= protocol.ci:
                return Series(tuple(samples), tuple(references), "ci_reached")
        if protocol.kind != "fixed" and n >= protocol.min_runs and (
                time.perf_counter() - start >= protocol.budget_seconds):
            return Series(tuple(samples), tuple(references), "time_budget")
    return Series(tuple(samples), tuple(references),
                  "fixed_runs" if protocol.kind == "fixed" else "max_runs")


def _values(samples: list[int], references: list[int]) -> np.ndarray:
    """What the stopping rules look at: raw times, or workload/reference ratios per pair."""
    values = np.asarray(samples, dtype=np.float64)
    if references:
        values = values / np.asarray(references, dtype=np.float64)
    return values
