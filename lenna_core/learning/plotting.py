"""Plots of predictions: predicted against measured latency (log-log), error CDFs, metrics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lenna_core.records import FitReport


def plot_predicted_vs_measured(report: FitReport, path: Path, title: str) -> None:
    """Scatter every test prediction of every split, with the ±10% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    measured, predicted = _pairs(report)
    low = min(measured.min(), predicted.min()) * 0.8
    high = max(measured.max(), predicted.max()) * 1.25
    line = np.geomspace(low, high, 50)
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=120)
    ax.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.15,
                    label="±10%")
    ax.plot(line, line, color="tab:green", linewidth=1)
    ax.scatter(measured, predicted, s=12, alpha=0.7, color="tab:blue",
               label=f"test predictions ({len(measured)})")
    ax.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high),
           xlabel="measured latency (ms)", ylabel="predicted latency (ms)", title=title)
    within = report.metrics["within_10pct"][0]
    ax.legend(loc="upper left", title=f"within ±10%: {within:.0%}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_comparison(reports: Mapping[str, FitReport], out: Path) -> list[Path]:
    """Predicted vs measured per estimator (log-log), the CDF of relative errors, and bars
    of the main metrics; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(reports)
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4 * rows), dpi=100,
                             squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        measured, predicted = _pairs(reports[name])
        low, high = min(measured.min(), predicted.min()) * 0.8, max(
            measured.max(), predicted.max()) * 1.25
        line = np.geomspace(low, high, 50)
        ax.fill_between(line, line * 0.9, line * 1.1, color="tab:green", alpha=0.15)
        ax.plot(line, line, color="tab:green", linewidth=1)
        ax.scatter(measured, predicted, s=4, alpha=0.4)
        ax.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high),
               title=f"{name}: {reports[name].metrics['within_10pct'][0]:.0%} within ±10%",
               xlabel="measured (ms)", ylabel="predicted (ms)")
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    scatter = out / "predicted_vs_measured.png"
    fig.savefig(scatter)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for name in names:
        measured, predicted = _pairs(reports[name])
        errors = np.sort(np.abs(predicted / measured - 1)) * 100
        ax.plot(errors, np.arange(1, len(errors) + 1) / len(errors), label=name)
    ax.axvline(10, color="grey", linestyle="--", linewidth=1)
    ax.set(xscale="symlog", xlabel="absolute error (%)", ylabel="share of test predictions",
           title="error CDF", ylim=(0, 1))
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    cdf = out / "error_cdf.png"
    fig.savefig(cdf)
    plt.close(fig)

    shown = ("r2", "mape", "within_10pct", "spearman", "kendall")
    fig, axes = plt.subplots(1, len(shown), figsize=(3 * len(shown), 3.5), dpi=100)
    for ax, key in zip(axes, shown, strict=True):
        means = [reports[n].metrics[key][0] for n in names]
        stds = [reports[n].metrics[key][1] for n in names]
        ax.barh(names, means, xerr=stds, color="tab:blue", alpha=0.8)
        ax.set_title(key)
        ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    bars = out / "metrics.png"
    fig.savefig(bars)
    plt.close(fig)
    return [scatter, cdf, bars]


def _pairs(report: FitReport) -> tuple[np.ndarray, np.ndarray]:
    """Measured and predicted latencies (ms) of every test prediction."""
    measured = np.array([m for _, m, _, _ in report.predictions]) * 1e3
    predicted = np.array([p for _, _, p, _ in report.predictions]) * 1e3
    return measured, predicted
