"""Export stored measurements, one row each, with their features, to Parquet or CSV."""

from __future__ import annotations

import os
from pathlib import Path

from lenna_core.data.store import Store
from lenna_core.errors import LennaError

FORMATS = ("parquet", "csv")


def export_measurements(store: Store, out: Path, fmt: str) -> int:
    """Write the table to ``out`` atomically and return its number of rows."""
    import pandas as pd

    if fmt not in FORMATS:
        raise LennaError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    rows = list(store.measurement_rows())
    by_workload: dict[str, dict[str, float]] = {}
    for entry in store.feature_rows():
        values = by_workload.setdefault(entry["workload_id"], {})
        values.update({f"{entry['featurizer']}.{k}": v for k, v in entry["values"].items()})
    for row in rows:
        row.update(by_workload.get(row["workload_id"], {}))
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["measurement_id", "arch_id", "median_ns", "latency_ns"])
    else:
        baseline = frame.groupby(["target_id", "protocol"])["reference_median_ns"].transform(
            "median")
        latency = frame["expected_ns"].fillna(frame["ratio"] * baseline)
        frame.insert(frame.columns.get_loc("median_ns"), "latency_ns",
                     latency.fillna(frame["median_ns"]))
        frame.insert(frame.columns.get_loc("clean_runs") + 1, "discarded_runs",
                     frame["runs"] - frame["clean_runs"])
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
