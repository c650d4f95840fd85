"""Measurement protocols: warm-up, then timed runs until a stopping rule is met.

- ``adaptive`` (default): repeat until the 95% confidence interval of the median is within
  ``±ci`` of it (default ±1%) or the time budget is spent.
- ``fixed:N``: exactly N clean timed runs.
- ``lenna``: the LENNA study's rule: rounds of runs; keep the cumulative average of each
  round's 40th percentile; stop when it moves by less than 1% for 10 consecutive rounds.

A label is taken in several *passes* (a campaign spreads them over its whole length); one
call of :func:`run_protocol` is one pass, with its share of the budget and of the runs. Every
timed run records how long the worker's threads waited for a CPU; a run that waited more than
``max_wait`` of its duration is *spoiled*: it is kept in the raw samples, but the rules and the
summaries see only clean runs, and the pass keeps timing (up to ``contended_budget`` times
its budget) until it has enough clean ones. How much CPU time other processes took over
the pass is recorded too (see :mod:`lenna_core.measurement.passes` for what a label makes of it).

With a reference runner, every timed run of the workload is paired with one of the reference
(A/B/A/B), and the rules apply to the per-pair ratio workload/reference, which host drift
cancels out of.

A ``between_runs`` callable is called before every run, outside the timed stretch: a worker
process uses it to exit as soon as its parent is gone.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

import attrs
import numpy as np

from lenna_core import limits
from lenna_core.errors import LennaError
from lenna_core.measurement.interference import HostLoadWindow, ThreadWaits, is_clean
from lenna_core.plugins.interfaces import Runner, optional

KINDS = ("adaptive", "fixed", "lenna")


@attrs.frozen
class MeasurementProtocol:
    """How long to warm up, how to decide when to stop, and whether to interleave a reference."""

    kind: str = "adaptive"
    warmup_runs: int = 3
    warmup_seconds: float = 0.1
    min_runs: int = 10
    max_runs: int = 5000
    budget_seconds: float = 2.0
    ci: float = 0.01
    fixed_runs: int = 100
    round_runs: int = 10
    tolerance: float = 0.01
    patience: int = 10
    compensate: bool = False
    passes: int = 3
    max_passes: int = limits.MAX_PASSES
    agreement: float = 0.10
    max_wait: float = 0.05
    contended_budget: float = 2.0
    max_others: float = 0.8

    def __attrs_post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LennaError(f"unknown protocol {self.kind!r}; use adaptive, fixed:N or lenna")
        limits.BUDGET.check(self.budget_seconds)
        limits.PASSES.check(self.passes)
        limits.FIXED_RUNS.check(self.fixed_runs)
        limits.CI.check(self.ci)
        if self.passes > self.max_passes:
            raise LennaError(f"--passes must be between 1 and {self.max_passes}, got "
                             f"{self.passes}")

    @property
    def pass_budget(self) -> float:
        """Seconds one pass may time runs for before it stops (clean runs permitting)."""
        return self.budget_seconds / self.passes

    @property
    def pass_min_runs(self) -> int:
        """Clean runs a pass needs: its share of ``min_runs`` (at most its fixed runs)."""
        runs = max(3, math.ceil(self.min_runs / self.passes))
        return min(runs, self.pass_fixed_runs) if self.kind == "fixed" else runs

    @property
    def label_min_runs(self) -> int:
        """Clean runs a label needs not to be contended (at most its fixed runs)."""
        return min(self.min_runs, self.fixed_runs) if self.kind == "fixed" else self.min_runs

    @property
    def pass_fixed_runs(self) -> int:
        return math.ceil(self.fixed_runs / self.passes)

    def single_pass(self) -> MeasurementProtocol:
        """The same rule taken in one pass with the whole budget (a supernet's children)."""
        return attrs.evolve(self, passes=1, max_passes=1)

    @classmethod
    def parse(cls, text: str, **settings: object) -> MeasurementProtocol:
        """``adaptive``, ``adaptive:0.02`` (CI half-width), ``fixed:1000`` or ``lenna``."""
        match = re.fullmatch(r"(adaptive|fixed|lenna)(?::([0-9]+|[0-9]*\.[0-9]+))?",
                             text.strip())
        if match is None:
            raise LennaError(f"bad --protocol {text!r}; use adaptive[:CI] (e.g. adaptive:0.02), "
                             "fixed:N (e.g. fixed:100) or lenna")
        kind, arg = match.groups()
        if kind == "fixed":
            if arg is None or not arg.isdigit():
                raise LennaError(
                    f"bad --protocol {text!r}: fixed needs a run count, e.g. fixed:100")
            settings["fixed_runs"] = limits.FIXED_RUNS.check(int(arg))
        elif kind == "adaptive" and arg is not None:
            settings["ci"] = limits.CI.check(float(arg))
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
        passes = (f",passes={self.passes}-{self.max_passes}/agree={self.agreement}"
                  f",wait<={self.max_wait}x{self.contended_budget},others<{self.max_others}")
        return (f"{rule}{budget},warmup={self.warmup_runs}/{self.warmup_seconds}s"
                f"{reference}{passes}")


def median_ci(samples: np.ndarray) -> tuple[float, float]:
    """The distribution-free 95% confidence interval of the median (order statistics)."""
    n = len(samples)
    ordered = np.sort(samples)
    spread = 1.96 * math.sqrt(n) / 2
    low = max(0, math.floor(n / 2 - spread) - 1)
    high = min(n - 1, math.ceil(n / 2 + spread))
    return float(ordered[low]), float(ordered[high])


def median_ci_halfwidth(samples: np.ndarray) -> float:
    """Relative half-width of :func:`median_ci`."""
    low, high = median_ci(samples)
    median = float(np.median(samples))
    return (high - low) / (2 * median) if median > 0 else math.inf


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
    timed_run = optional(runner, "timed_run")
    if timed_run is not None:
        return timed_run
    clock = time.perf_counter_ns

    def timed() -> int:
        start = clock()
        runner.run()
        return clock() - start

    return timed


def _matched_timer(reference: Runner, timed: Callable[[], int],
                   workload_ns: int) -> tuple[Callable[[], int], int]:
    """Time the reference as ``k`` back-to-back runs lasting about as long as the workload;
    return the timer (ns per run) and ``k``.

    A reference sample spanning the same stretch of time as the workload sample it is paired
    with sees the same host speed, which is what makes the ratio drift-free.
    """
    single = min(timed() for _ in range(3))
    repeats = max(1, min(1000, round(workload_ns / max(single, 1))))
    if repeats == 1:
        return timed, 1

    def timed_block() -> int:
        total = 0
        for _ in range(repeats):
            total += timed()
        return total // repeats

    return timed_block, repeats


@attrs.frozen
class Series:
    """The raw outcome of one pass: workload and reference samples, how long the worker's
    threads waited for a CPU during each, how many CPUs' worth of time other processes used
    over the pass, and why it stopped."""

    samples_ns: tuple[int, ...]
    reference_ns: tuple[int, ...]
    wait_ns: tuple[int, ...]
    reference_wait_ns: tuple[int, ...]
    others_cpu: float | None
    stop_reason: str


class _Timing:
    """The samples of a pass as they are taken, and the clean ones the rules look at."""

    def __init__(self, protocol: MeasurementProtocol) -> None:
        self.protocol = protocol
        self.samples: list[int] = []
        self.references: list[int] = []
        self.waits: list[int] = []
        self.reference_waits: list[int] = []
        self.clean: list[float] = []

    def add(self, sample: int, wait: int, reference: int | None, reference_wait: int) -> None:
        self.samples.append(sample)
        self.waits.append(wait)
        limit = self.protocol.max_wait
        clean = is_clean(sample, wait, limit)
        if reference is not None:
            self.references.append(reference)
            self.reference_waits.append(reference_wait)
            clean = clean and is_clean(reference, reference_wait, limit)
        if clean:
            self.clean.append(sample / reference if reference else float(sample))

    def series(self, stop_reason: str, others_cpu: float | None) -> Series:
        return Series(tuple(self.samples), tuple(self.references), tuple(self.waits),
                      tuple(self.reference_waits), others_cpu, stop_reason)


def run_protocol(runner: Runner, protocol: MeasurementProtocol,
                 reference: Runner | None = None,
                 between_runs: Callable[[], None] = lambda: None) -> Series:
    """One pass: warm up (both runners), then time runs until the protocol's rule, applied
    to the clean runs, stops them; ``between_runs`` is called before each run."""
    time_workload = _timer(runner)
    start = time.perf_counter()
    warm = 0
    while warm < protocol.warmup_runs or time.perf_counter() - start < protocol.warmup_seconds:
        between_runs()
        runner.run()
        if reference is not None:
            reference.run()
        warm += 1
    time_reference, repeats = None, 1
    if reference is not None:
        time_reference, repeats = _matched_timer(reference, _timer(reference), time_workload())
    with ThreadWaits() as threads:
        window = HostLoadWindow()
        timing = _Timing(protocol)
        stop_reason = _time_runs(protocol, time_workload, time_reference, repeats, threads,
                                 timing, between_runs)
        return timing.series(stop_reason, window.stop().others_cpus)


def _time_runs(protocol: MeasurementProtocol, time_workload: Callable[[], int],
               time_reference: Callable[[], int] | None, repeats: int, threads: ThreadWaits,
               timing: _Timing, between_runs: Callable[[], None]) -> str:
    """Time pairs until the rule stops; return the stop reason. A reference sample is the mean
    of ``repeats`` runs, and so is its wait."""
    rule = LennaRule(protocol.tolerance, protocol.patience)
    fixed = protocol.kind == "fixed"
    wanted = protocol.pass_fixed_runs if fixed else protocol.max_runs
    min_runs = protocol.pass_min_runs
    budget = protocol.pass_budget
    start = time.perf_counter()
    checked = 0
    while len(timing.clean) < wanted:
        between_runs()
        reference = reference_wait = None
        if time_reference is not None:
            before = threads.wait_ns()
            reference = time_reference()
            reference_wait = (threads.wait_ns() - before) // repeats
        before = threads.wait_ns()
        sample = time_workload()
        timing.add(sample, threads.wait_ns() - before, reference, reference_wait or 0)
        n = len(timing.clean)
        if n > checked:
            checked = n
            if protocol.kind == "lenna" and n % protocol.round_runs == 0:
                if rule.add(float(np.percentile(timing.clean[-protocol.round_runs:], 40))):
                    return "converged"
            elif protocol.kind == "adaptive" and n >= min_runs and n % 5 == 0:
                if median_ci_halfwidth(np.asarray(timing.clean)) <= protocol.ci:
                    return "ci_reached"
        elapsed = time.perf_counter() - start
        if n < min_runs:
            # spoiled runs get twice the budget to be made up for; a workload too slow for
            # its clean runs to fit in the budget is not contended, only sampled less
            spoiled = len(timing.samples) > n
            limit = budget * (protocol.contended_budget if spoiled else 1.0)
            if elapsed >= limit or len(timing.samples) >= protocol.max_runs:
                return "contended" if spoiled else "time_budget"
        elif not fixed and elapsed >= budget:
            return "time_budget"
        if len(timing.samples) >= protocol.max_runs:
            return "max_runs"
    return "fixed_runs" if fixed else "max_runs"
