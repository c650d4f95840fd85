"""Plots of predictions: predicted against measured latency, log-log."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lenna_core.records import FitReport


def plot_predicted_vs_measured(report: FitReport, path: Path, title: str) -> None:
    """Scatter every test prediction of every split, with the ±10% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    measured = np.array([m for _, m, _, _ in report.predictions]) * 1e3
    predicted = np.array([p for _, _, p, _ in report.predictions]) * 1e3
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
