"""Measure each kernel of a model on its own and compare their sum with the whole model."""

from __future__ import annotations

from typing import Any

from lenna_core.errors import LennaError
from lenna_core.ir.kernels import FUSING_BACKENDS, kernel_graph, split_kernels
from lenna_core.measure import MeasurementProtocol
from lenna_core.progress import progress_bar
from lenna_core.records import Architecture, Workload
from lenna_core.worker import Worker, WorkerSettings


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
