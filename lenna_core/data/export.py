"""Export stored measurements, one row each, with their features, to Parquet or CSV."""

from __future__ import annotations

import math
import os
from pathlib import Path

from lenna_core.data.dataset import label_latencies
from lenna_core.data.store import Store, measurement_from_row
from lenna_core.errors import LennaError
from lenna_core.learning.features import named_features

FORMATS = ("parquet", "csv")
COLUMNS = ("measurement_id", "arch_id", "source", "spec", "workload_id", "batch_size", "mode",
           "optimizer", "dtype", "target_id", "backend", "protocol", "status", "error",
           "latency_ns", "median_ns", "p10_ns", "p90_ns", "iqr_ns", "cv", "runs",
           "stop_reason", "reference_median_ns", "ratio", "expected_ns", "peak_memory_bytes",
           "device_memory_bytes", "clean_runs", "discarded_runs", "passes", "contention",
           "others_cpu", "seconds", "op_profile", "timestamp")
"""A measurement's columns, before its features."""


def export_measurements(store: Store, out: Path, fmt: str) -> int:
    """Write the table to ``out`` atomically and return its number of rows."""
    import pandas as pd

    if fmt not in FORMATS:
        raise LennaError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if out.exists() and not out.is_file():  # replacing it would replace a device or a pipe
        raise LennaError(f"cannot write {out}: it exists and is not a regular file")
    by_workload: dict[str, dict[str, float]] = {}
    for entry in store.feature_rows():
        values = by_workload.setdefault(entry["workload_id"], {})
        values.update(named_features(entry["featurizer"], entry["values"]))
    targets = {t.id: t for t in store.targets()}
    latency_of = label_latencies(store)
    records = []
    for row in store.measurement_rows():
        latency = latency_of(targets[row["target_id"]], row["protocol"],
                             measurement_from_row(row))
        row["latency_ns"] = math.nan if latency is None else latency
        clean = row["clean_runs"]
        row["discarded_runs"] = None if clean is None else row["runs"] - clean
        records.append({**{c: row[c] for c in COLUMNS}, **by_workload.get(row["workload_id"], {})})
    frame = pd.DataFrame(records) if records else pd.DataFrame(
        columns=["measurement_id", "arch_id", "median_ns", "latency_ns"])
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LennaError(f"cannot write {out}: {exc.strerror or exc}") from None
    return len(frame)
