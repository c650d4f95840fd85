"""A report's bar plot per model: prediction and training-step time on each target."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

MODE_LABELS = {"inference": "prediction", "training": "training step"}


def model_plot(data: Mapping[str, Any], model: str) -> bytes | None:
    """PNG bytes of one bar per target and mode (ms per batch, with the 95% confidence
    interval of the median as an error bar); None when the model has no usable label."""
    labels = [lb for lb in data["labels"] if lb["model"] == model
              and lb["status"] != "failed" and lb["latency_ms"] is not None]
    if not labels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t["key"] for t in data["targets"]
               if any(lb["target"] == t["key"] for lb in labels)]
    modes = [m for m in data["modes"] if any(lb["mode"] == m for lb in labels)]
    found = {(lb["target"], lb["mode"]): lb for lb in labels}
    width = 0.8 / len(targets)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(modes) * len(targets) ** 0.7, 3.6), dpi=110)
    for i, target in enumerate(targets):
        xs, heights, errors = [], [], [[], []]
        for j, mode in enumerate(modes):
            lb = found.get((target, mode))
            if lb is None:
                continue
            xs.append(j + (i - (len(targets) - 1) / 2) * width)
            heights.append(lb["latency_ms"])
            low, high = lb.get("low_ms"), lb.get("high_ms")
            errors[0].append(0.0 if low is None else max(0.0, lb["latency_ms"] - low))
            errors[1].append(0.0 if high is None else max(0.0, high - lb["latency_ms"]))
        bars = ax.bar(xs, heights, width * 0.95, yerr=errors, capsize=3, label=target)
        ax.bar_label(bars, fmt="%.3g", fontsize=7, padding=2)
    ax.set_xticks(range(len(modes)), [MODE_LABELS.get(m, m) for m in modes])
    ax.set_ylabel(f"ms per batch of {data['batch_size']}")
    ax.set_title(model)
    ax.margins(y=0.15)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
