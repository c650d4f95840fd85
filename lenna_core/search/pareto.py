"""The Pareto plot of a search: test accuracy against measured latency, one point per λ."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def plot_pareto(points: Sequence[Mapping[str, Any]], path: Path, title: str) -> None:
    """Accuracy against measured latency of each λ's derived architecture (filled), with its
    predicted latency (hollow, joined to the measured one) and the Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [p for p in points if p["measured_ms"] is not None]
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for point in measured:
        x, y = point["measured_ms"], 100 * point["accuracy"]
        ax.scatter([x], [y], color="tab:blue", zorder=3)
        ax.annotate(f"λ={point['lambda']:g}", (x, y), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
        if point["predicted_ms"] is not None:
            ax.plot([x, point["predicted_ms"]], [y, y], color="tab:gray", linewidth=0.8)
            ax.scatter([point["predicted_ms"]], [y], facecolors="none",
                       edgecolors="tab:orange", zorder=3)
    front = _front(measured)
    if len(front) > 1:
        ax.step([p["measured_ms"] for p in front], [100 * p["accuracy"] for p in front],
                where="post", color="tab:blue", alpha=0.4, label="Pareto front")
    ax.scatter([], [], color="tab:blue", label="measured")
    ax.scatter([], [], facecolors="none", edgecolors="tab:orange", label="predicted")
    ax.set(xlabel="latency of the searched cells (ms)", ylabel="test accuracy (%)",
           title=title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _front(points: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The points no other point beats in both latency and accuracy, fastest first."""
    front: list[Mapping[str, Any]] = []
    for point in sorted(points, key=lambda p: (p["measured_ms"], -p["accuracy"])):
        if not front or point["accuracy"] > front[-1]["accuracy"]:
            front.append(point)
    return front
