"""A model's parts against the whole: each kernel, or each conv layer, measured on its own.

``kernel_report`` compares the sum of a model's kernels (as a backend fuses them) with the
whole model. ``layer_report`` is the GSoC study's "testing database from the real model": an
estimator fitted on single conv layers (``conv-layers``) is judged on the layers of real
networks, per layer and summed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lenna_core.data.store import Store
from lenna_core.errors import LennaError
from lenna_core.ir.conv_layers import conv_layers, layer_graph
from lenna_core.ir.kernels import FUSING_BACKENDS, kernel_graph, split_kernels
from lenna_core.learning.predictor import load_predictor
from lenna_core.measurement.campaign import run_campaign
from lenna_core.measurement.protocol import MeasurementProtocol
from lenna_core.measurement.worker import Worker, WorkerSettings
from lenna_core.plugins.registry import Registry
from lenna_core.progress import progress_bar
from lenna_core.records import Architecture, Workload


def kernel_report(arch: Architecture, backend: str, *, measure: bool, protocol: str,
                  threads: int | None, batch_size: int) -> dict[str, Any]:
    """The kernels of ``arch`` as ``backend`` runs them; with ``measure``, their latencies
    (identical kernels are measured once), their sum and the whole model's latency."""
    graph = arch.graph
    kernels = split_kernels(graph, fuse=FUSING_BACKENDS.get(backend, True))
    rows: list[dict[str, Any]] = [{"kind": k.kind, "first_node": k.nodes[0],
                                   "nodes": list(k.nodes)} for k in kernels]
    if not measure:
        return {"arch_id": arch.id, "backend": backend, "kernels": rows}
    chosen = MeasurementProtocol.parse(protocol)
    graphs = [kernel_graph(graph, k) for k in kernels]
    latency: dict[str, float] = {}
    with Worker(WorkerSettings(backend, threads=threads, profile_runs=0)) as worker, \
            progress_bar(len({g.id for g in graphs}) + 1, f"kernels on {backend}") as advance:
        for sub in graphs:
            if sub.id not in latency:
                latency[sub.id] = _median(worker, Architecture("kernel", {}, sub), chosen,
                                          batch_size)
                advance(f"{sub.nodes[-1].op} {latency[sub.id] / 1e6:.3f} ms")
        whole = _median(worker, arch, chosen, batch_size)
        advance(f"whole model {whole / 1e6:.3f} ms")
    for row, sub in zip(rows, graphs, strict=True):
        row["latency_ms"] = latency[sub.id] / 1e6
    total = sum(row["latency_ms"] for row in rows)
    return {"arch_id": arch.id, "backend": backend, "kernels": rows, "sum_ms": total,
            "end_to_end_ms": whole / 1e6, "sum_over_end_to_end": total / (whole / 1e6)}


def _median(worker: Worker, arch: Architecture, protocol: MeasurementProtocol,
            batch_size: int) -> float:
    measured = worker.measure(Workload(arch, batch_size=batch_size), protocol.single_pass())
    if measured.status == "failed":
        raise LennaError(f"measuring {arch.source} {arch.id} failed: {measured.error}")
    return measured.median_ns


def layer_workloads(arch: Architecture, batch_size: int) -> list[Workload]:
    """One workload per conv layer of ``arch``: the layer alone, as it sees its input."""
    return [Workload(Architecture("layer", {"of": arch.id, "node": row["name"]},
                                  layer_graph(arch.graph, row["name"])), batch_size=batch_size)
            for row in conv_layers(arch.graph)]


def layer_report(arch: Architecture, registry: Registry, *, backend: str, store: Store,
                 protocol: MeasurementProtocol, threads: int | None, batch_size: int,
                 predictor: Path | None = None) -> dict[str, Any]:
    """Measure each conv layer of ``arch`` and the whole model on ``backend`` (stored in
    ``store``, so a re-run measures only what is missing); with ``predictor``, predict each
    layer and report per-layer and summed errors."""
    rows = conv_layers(arch.graph)
    if not rows:
        raise LennaError(f"architecture {arch.id[:12]} has no conv layers")
    loaded = load_predictor(predictor, registry) if predictor is not None else None
    if loaded is not None:
        fitted_on = loaded.manifest.get("target", {}).get("backend")
        if fitted_on != backend:
            raise LennaError(f"the predictor was fitted on {fitted_on} measurements; "
                             f"measure on the same backend with --backend {fitted_on}")
        batch_size = int(loaded.workload_settings().get("batch_size", batch_size))
    layers = layer_workloads(arch, batch_size)
    whole = Workload(arch, batch_size=batch_size)
    with Worker(WorkerSettings(backend, threads=threads, profile_runs=0)) as worker:
        campaign = run_campaign(store, worker, [*layers, whole], protocol)
    failed = [(w, m) for w, m in zip(campaign.workloads, campaign.measurements, strict=True)
              if m.status == "failed"]
    if failed:
        workload, measured = failed[0]
        raise LennaError(f"measuring {workload.architecture.spec.get('node', 'the model')} "
                         f"failed: {measured.error} ({len(failed)} failed in all)")
    *layer_ns, whole_ns = (m.median_ns for m in campaign.measurements)
    for row, ns in zip(rows, layer_ns, strict=True):
        row["measured_ms"] = ns / 1e6
    report: dict[str, Any] = {
        "arch_id": arch.id, "backend": backend, "target_id": campaign.target.id,
        "batch_size": batch_size, "layers": rows,
        "layers_measured_ms": sum(layer_ns) / 1e6, "end_to_end_ms": whole_ns / 1e6,
        "contended": sum(m.contended for m in campaign.measurements),
    }
    if loaded is None:
        return report
    for row, workload in zip(rows, layers, strict=True):
        row["predicted_ms"] = loaded.predict_seconds(workload) * 1e3
        row["error"] = row["predicted_ms"] / row["measured_ms"] - 1
    errors = np.array([row["error"] for row in rows])
    predicted = sum(row["predicted_ms"] for row in rows)
    report.update({
        "layers_predicted_ms": predicted,
        "layer_mape": float(np.mean(np.abs(errors))),
        "layer_within_10pct": float(np.mean(np.abs(errors) <= 0.10)),
        "sum_error": predicted / report["layers_measured_ms"] - 1,
        "sum_vs_end_to_end": predicted / report["end_to_end_ms"] - 1,
    })
    return report
