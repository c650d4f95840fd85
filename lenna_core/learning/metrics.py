"""Accuracy metrics of latency predictions, on the original (not log) scale."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Metric keys in display order; MAPE, RMSPE and the within shares are fractions.
METRICS = ("r2", "rmse", "mae", "mape", "rmspe", "within_5pct", "within_10pct", "spearman",
           "kendall")
LABELS = {"r2": "R²", "rmse": "RMSE (ms)", "mae": "MAE (ms)", "mape": "MAPE",
          "rmspe": "RMSPE", "within_5pct": "within ±5%", "within_10pct": "within ±10%",
          "spearman": "Spearman", "kendall": "Kendall"}
FRACTIONS = ("mape", "rmspe", "within_5pct", "within_10pct")
SECONDS = ("rmse", "mae")


def format_metric(key: str, mean: float, std: float | None = None) -> str:
    """A metric for a table: fractions as percentages, times in ms."""
    if key in FRACTIONS:
        text, spread = f"{mean:.1%}", None if std is None else f"{std:.1%}"
    elif key in SECONDS:
        text, spread = f"{mean * 1e3:.3f}", None if std is None else f"{std * 1e3:.3f}"
    else:
        text, spread = f"{mean:.3f}", None if std is None else f"{std:.3f}"
    return text if spread is None else f"{text} ± {spread}"


def regression_metrics(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """R², RMSE, MAE, MAPE, RMSPE, shares within ±5% and ±10%, Spearman and Kendall of one
    test set."""
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
        "mae": float(np.abs(residual).mean()),
        "mape": float(relative.mean()),
        "rmspe": float(np.sqrt((relative**2).mean())),
        "within_5pct": float((relative <= 0.05).mean()),
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
