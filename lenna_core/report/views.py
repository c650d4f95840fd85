"""The tables of a report, computed from its data: the system table, the model table and the
speed-ups. Every renderer (Markdown, HTML, CSV) shows these same cells."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from lenna_core.errors import LennaError

CONTENDED_MARK = "†"
"""Marks a figure taken while other processes competed for the CPU."""
TIME_COLUMNS = (("cpu", "inference", "CPU(P) ms"), ("cpu", "training", "CPU(T) ms"),
                ("gpu", "inference", "GPU(P) ms"), ("gpu", "training", "GPU(T) ms"))


@attrs.frozen
class Cell:
    """A table cell: its text, and the value it sorts by (None sorts last)."""

    text: str
    value: float | str | None = None


@attrs.frozen
class Table:
    """A titled table; ``note`` explains its marks."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""


def _text(value: Any) -> Cell:
    if value is None:
        return Cell("")
    if isinstance(value, float):
        return Cell(f"{value:.4g}", value)
    return Cell(str(value), value if isinstance(value, int) else str(value))


def system_table(data: Mapping[str, Any]) -> Table:
    """One row per target: what it ran on, from its fingerprint."""
    rows = []
    for t in data["targets"]:
        s = t["system"]
        frameworks = ", ".join(f"{k} {v}" for k, v in s.get("frameworks", {}).items())
        rows.append(tuple(_text(v) for v in (
            t["key"], t["device"].upper(), s.get("cpu"), s.get("cores"), s.get("memory_gib"),
            s.get("gpu") or "none", s.get("os"), s.get("python"), frameworks or None,
            s.get("threads"))))
    return Table("system", "Systems", ("Target", "Device", "CPU", "Cores", "Memory GiB",
                                       "GPU", "OS", "Python", "Frameworks", "Threads"),
                 tuple(rows))


def latency_cell(label: Mapping[str, Any] | None) -> Cell:
    """A latency in ms with its 95% confidence interval as ±, marked when contended; empty
    when there is no label, ``failed`` when the measurement failed."""
    if label is None:
        return Cell("")
    if label["status"] == "failed" or label["latency_ms"] is None:
        return Cell("failed")
    ms = label["latency_ms"]
    text = _ms(ms)
    if label.get("low_ms") is not None:
        half = (label["high_ms"] - label["low_ms"]) / 2
        text += f" ±{_ms(half)}"
    if label["status"] == "contended":
        text += f" {CONTENDED_MARK}"
    return Cell(text, ms)


def _ms(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _count(value: int | None) -> Cell:
    """A count as 11.7M / 1.8G."""
    if value is None:
        return Cell("")
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return Cell(f"{value / scale:.3g}{suffix}", value)
    return Cell(str(value), value)


def model_table(data: Mapping[str, Any]) -> Table:
    """One row per model, machine and library: parameters, MACs, input, batch, and per
    device the prediction and training-step times with the peak memory; the GPU columns only
    when a GPU target is there, the machine only when there are several; user columns last."""
    targets = data["targets"]
    labels = {(lb["model"], lb["target"], lb["mode"]): lb for lb in data["labels"]}
    gpu = any(t["device"] == "gpu" for t in targets)
    machines = list(dict.fromkeys(t["machine"] for t in targets))
    times = [c for c in TIME_COLUMNS if gpu or c[0] == "cpu"]
    extra = list(dict.fromkeys(k for m in data["models"] for k in m.get("columns", {})))
    columns = ["Model", "Params", "MACs", "Input", "Batch", "Library", "Backends"]
    columns += ["Machine"] if len(machines) > 1 else []
    columns += [name for _, _, name in times]
    columns += ["Host MB (P)", "Host MB (T)"] + (["GPU MB (P)", "GPU MB (T)"] if gpu else [])
    columns += extra
    rows = []
    for model in data["models"]:
        groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for t in targets:
            groups.setdefault((t["machine"], t["library"]), []).append(t)
        for (machine, library), group in groups.items():
            found = {(t["device"], mode): labels.get((model["name"], t["key"], mode))
                     for t in group for mode in data["modes"]}
            if not any(found.values()):
                continue
            row = [Cell(model["name"], model["name"]), _count(model.get("params")),
                   _count(model.get("macs")), _text(model.get("input")),
                   _text(data["batch_size"]), _text(library),
                   _text(", ".join(t["backend"] for t in group))]
            row += [_text(machine)] if len(machines) > 1 else []
            row += [latency_cell(found.get((device, mode))) for device, mode, _ in times]
            row += [_memory(found, "cpu", "inference", "peak_host_mb"),
                    _memory(found, "cpu", "training", "peak_host_mb")]
            if gpu:
                row += [_memory(found, "gpu", "inference", "device_mb"),
                        _memory(found, "gpu", "training", "device_mb")]
            row += [_text(model.get("columns", {}).get(k)) for k in extra]
            rows.append(tuple(row))
    note = (f"Times per batch of {data['batch_size']}: the median and its 95% confidence "
            f"interval; (P) prediction, (T) one training step; {CONTENDED_MARK} taken while "
            "other processes competed for the CPU; empty: not measured. MACs per sample; "
            "MB: the peak memory the measurement added.")
    return Table("models", "Models", tuple(columns), tuple(rows), note)


def _memory(found: Mapping[tuple[str, str], Mapping[str, Any] | None], device: str, mode: str,
            field: str) -> Cell:
    label = found.get((device, mode))
    value = None if label is None else label.get(field)
    return Cell("") if value is None else Cell(f"{value:.0f}", value)


def speedups(data: Mapping[str, Any], baseline: str | None) -> list[dict[str, Any]]:
    """Per model, mode and target: the baseline target's latency over the target's."""
    base = baseline or (data["targets"][0]["key"] if data["targets"] else None)
    known = [t["key"] for t in data["targets"]]
    if base is not None and base not in known:
        raise LennaError(f"--baseline {base!r} is not a target of the report; its targets: "
                         f"{', '.join(known)}")
    latency = {(lb["model"], lb["target"], lb["mode"]): lb["latency_ms"]
               for lb in data["labels"] if lb["status"] != "failed"}
    out = []
    for lb in data["labels"]:
        mine = latency.get((lb["model"], lb["target"], lb["mode"]))
        theirs = latency.get((lb["model"], base, lb["mode"]))
        if mine and theirs:
            out.append({"model": lb["model"], "mode": lb["mode"], "target": lb["target"],
                        "baseline": base, "speedup": theirs / mine})
    return out


def speedup_table(data: Mapping[str, Any], ups: Sequence[Mapping[str, Any]]) -> Table:
    """Models and modes against targets: how many times faster than the baseline."""
    targets = [t["key"] for t in data["targets"]]
    found = {(u["model"], u["mode"], u["target"]): u["speedup"] for u in ups}
    rows = []
    for model in data["models"]:
        for mode in data["modes"]:
            values = [found.get((model["name"], mode, t)) for t in targets]
            if all(v is None for v in values):
                continue
            rows.append((Cell(model["name"], model["name"]), Cell(mode, mode),
                         *(Cell("") if v is None or not math.isfinite(v)
                           else Cell(f"{v:.2f}×", v) for v in values)))
    base = ups[0]["baseline"] if ups else (targets[0] if targets else "")
    return Table("speedups", f"Speed-ups against {base}", ("Model", "Mode", *targets),
                 tuple(rows), f"The latency on {base} divided by the latency on each target.")
