"""The ranges of the numbers a user sets, each declared once: the CLI checks its options with
them as it parses, and the jobs' configs (``RunConfig``, ``MeasurementProtocol``) check the
same ranges with the same one-line message when they are made from code."""

from __future__ import annotations

import math
import os
from typing import Any

import attrs

from lenna_core.errors import LennaError


@attrs.frozen
class Bound:
    """The range of one numeric setting: whole numbers from ``low`` to ``high``, or finite
    numbers (of ``unit``) above ``low`` (at least ``low`` when ``low_open`` is false) and at
    most ``high``."""

    option: str
    low: float
    high: float
    integer: bool = True
    low_open: bool = False
    unit: str = ""

    def describe(self) -> str:
        """The range in words, as the error message and the option's help give it."""
        if self.integer:
            return f"at least {self.low} and at most {self.high}"
        unit = f" of {self.unit}" if self.unit else ""
        low = f"more than {self.low:g}" if self.low_open else f"at least {self.low:g}"
        return f"a finite number{unit}, {low} and at most {self.high:g}"

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value) or value > self.high:
            return False
        return value > self.low if self.low_open else value >= self.low

    def check(self, value: Any) -> Any:
        """``value`` itself (None too: an option not given); a LennaError naming the option,
        the range and the value when it is out of range, not finite or not a number."""
        if value is None or self.contains(value):
            return value
        raise LennaError(f"{self.option} must be {self.describe()}, got {value!r}")


MAX_PASSES = 5
"""Passes a label may take: the ``--passes`` asked for, and more when they disagree."""

N = Bound("--n", 1, 100_000)
SEED = Bound("--seed", 0, 2**32 - 1)
BATCH_SIZE = Bound("--batch-size", 1, 4096)
BUDGET = Bound("--budget", 0, 3600, integer=False, low_open=True, unit="seconds")
PASSES = Bound("--passes", 1, MAX_PASSES)
TIMEOUT = Bound("--timeout", 0, 86_400, integer=False, low_open=True, unit="seconds")
PROFILE_RUNS = Bound("--profile-runs", 0, 1000)
REPEATS = Bound("--repeats", 1, 1000)
TUNE_BUDGET = Bound("--tune-budget", 1, 100_000)
TRAIN_SIZE = Bound("--train-size", 5, 10_000_000)
"""At least ``lenna_core.learning.splits.MIN_TRAIN`` rows."""
ANCHORS = Bound("--anchors", 1, 100_000)
ANCHOR_SAMPLES = Bound("--anchor-samples", 1, 1_000_000)
SHOTS = Bound("--shots", 0, 100_000)
TOP_N = Bound("--top-n", 1, 100_000)
THREADS = Bound("--threads", 1, 4 * (os.cpu_count() or 1))
FIXED_RUNS = Bound("--protocol fixed:N", 1, 5000)
"""Clean runs of ``fixed:N``, at most a protocol's ``max_runs``."""
CI = Bound("--protocol adaptive:CI", 0, 0.5, integer=False, low_open=True)
"""The relative half-width of the median's confidence interval that stops ``adaptive``."""
EPOCHS = Bound("--epochs", 0, 10_000)
TRAIN_EPOCHS = Bound("--train-epochs", 1, 10_000)
IMAGE_SIZE = Bound("--image-size", 4, 512)
LIMIT = Bound("--limit", 10, 10_000_000)
