"""Repeatability of latency labels across independent worker processes.

Measures a handful of workloads in at least five fresh worker processes under three
protocols — adaptive without a reference (``raw``), adaptive with the interleaved reference
(``compensated``: ratio x the campaign's reference baseline) and a fixed 1000-run protocol —
rotating the protocols within each round so that host drift hits all of them alike. Prints
one JSON object: per protocol, ``cv`` (the coefficient of variation of a workload's
reported latency across processes, averaged over workloads) and ``seconds_per_label``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lenna_core.cli.options import parse_cpus  # noqa: E402
from lenna_core.measurement.protocol import MeasurementProtocol  # noqa: E402
from lenna_core.measurement.worker import Worker, WorkerSettings  # noqa: E402
from lenna_core.plugins.registry import make_registry  # noqa: E402
from lenna_core.records import Workload  # noqa: E402

PROTOCOLS = {  # one pass each: what one worker process gives, with the whole budget
    "raw": MeasurementProtocol(compensate=False, passes=1),
    "compensated": MeasurementProtocol(compensate=True, passes=1),
    "fixed_1000": MeasurementProtocol.parse("fixed:1000", compensate=False, passes=1),
}


def workloads(count: int, input_size: int) -> list[Workload]:
    source = make_registry().get_available("source", "resnet-family")(input_size=input_size)
    rng = np.random.default_rng(2024)
    return [Workload(source.sample(rng)) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 workloads, 5 processes")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--input-size", type=int, default=32,
                        help="input size of the resnet-family workloads")
    parser.add_argument("--processes", type=int)
    parser.add_argument("--workloads", type=int)
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads (0: the backend's default)")
    parser.add_argument("--cpus", help="pin the workers to these CPUs, e.g. 1")
    args = parser.parse_args()
    processes = args.processes or (5 if args.quick else 8)
    loads = workloads(args.workloads or (3 if args.quick else 6), args.input_size)
    cpus = parse_cpus(args.cpus)
    results: dict[str, list] = {name: [] for name in PROTOCOLS}
    started = time.perf_counter()
    for round_index in range(processes):
        names = list(PROTOCOLS)
        order = names[round_index % len(names):] + names[:round_index % len(names)]
        for name in order:
            settings = WorkerSettings(args.backend, threads=args.threads or None, cpus=cpus,
                                      profile_runs=0)
            with Worker(settings) as worker:
                for index, workload in enumerate(loads):
                    m = worker.measure(workload, PROTOCOLS[name])
                    if not m.ok:
                        raise SystemExit(f"measurement failed: {m.error}")
                    results[name].append((round_index, index, m))
        print(f"round {round_index + 1}/{processes} done after "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)

    summary: dict[str, object] = {}
    for name, rows in results.items():
        references = [m.reference_median_ns for _, _, m in rows if m.reference_median_ns]
        baseline = statistics.median(references) if references else None
        per_workload = []
        for index in range(len(loads)):
            values = [m.latency_ns(baseline) for _, i, m in rows if i == index]
            per_workload.append(float(np.std(values) / np.mean(values)))
        summary[name] = {
            "cv": round(float(np.mean(per_workload)), 4),
            "cv_per_workload": [round(v, 4) for v in per_workload],
            "seconds_per_label": round(float(np.mean([m.seconds for _, _, m in rows])), 3),
            "runs_per_label": round(float(np.mean([m.runs for _, _, m in rows])), 1),
        }
    summary["processes"] = processes
    summary["workloads"] = len(loads)
    summary["backend"] = args.backend
    summary["threads"] = args.threads or "default"
    summary["cpus"] = args.cpus
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
