"""Accuracy metrics of latency predictions, on the original (not log) scale."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Metric keys in display order; MAPE and the within-10% share are fractions.
METRICS = ("r2", "rmse", "mape", "within_10pct", "spearman", "kendall")


def regression_metrics(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """R², RMSE, MAPE, share within ±10%, Spearman and Kendall of one test set."""
    from scipy import stats

    y = np.asarray(measured, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    residual = y - p
    total = float(((y - y.mean()) ** 2).sum())
    relative = np.abs(residual) / y
    constant = np.ptp(y) == 0 or np.ptp(p) == 0
    return {
        "r2": 1.0 - float((residual**2).sum()) / total if total > 0 else float("nan"),
        "rmse": float(np.sqrt((residual**2).mean())),
        "mape": float(relative.mean()),
        "within_10pct": float((relative <= 0.10).mean()),
        "spearman": float("nan") if constant else float(stats.spearmanr(y, p).statistic),
        "kendall": float("nan") if constant else float(stats.kendalltau(y, p).statistic),
    }


def summarise(per_split: Sequence[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each metric over the splits."""
    return {
        key: (float(np.mean([m[key] for m in per_split])),
              float(np.std([m[key] for m in per_split])))
        for key in METRICS
    }
