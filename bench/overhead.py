"""LENNA's measured median against a bare ``perf_counter_ns`` loop over the same model.

Both run in one process on the same prepared runner, interleaved round by round, so host
drift affects them alike. Prints JSON with the ratio of LENNA's median to the bare loop's
(1.0 means no overhead) for the fixed and the adaptive protocol.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lenna_core.measurement.protocol import MeasurementProtocol, run_protocol  # noqa: E402
from lenna_core.measurement.reference import reference_workload  # noqa: E402
from lenna_core.plugins.registry import make_registry  # noqa: E402


def bare_median(runner, runs: int) -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(runs):
        start = clock()
        runner.run()
        samples.append(clock() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    backend = make_registry().get_available("backend", args.backend)(threads=1)
    runner = backend.prepare(reference_workload())
    protocols = {
        "fixed": MeasurementProtocol.parse(f"fixed:{args.runs}", warmup_runs=0,
                                           warmup_seconds=0.0, compensate=False, passes=1),
        "adaptive": MeasurementProtocol(warmup_runs=0, warmup_seconds=0.0, max_runs=args.runs,
                                        ci=1e-9, compensate=False, passes=1),
    }
    bare_median(runner, 50)  # warm up once for everyone
    medians: dict[str, list[float]] = {"bare": [], **{name: [] for name in protocols}}
    for _ in range(args.rounds):
        medians["bare"].append(bare_median(runner, args.runs))
        for name, protocol in protocols.items():
            medians[name].append(statistics.median(run_protocol(runner, protocol).samples_ns))
    bare = statistics.median(medians["bare"])
    print(json.dumps({
        "backend": args.backend,
        "model_median_us": round(bare / 1e3, 2),
        **{f"{name}_over_bare": round(statistics.median(values) / bare, 4)
           for name, values in medians.items() if name != "bare"},
        "rounds": args.rounds,
        "runs": args.runs,
    }))
    runner.close()


if __name__ == "__main__":
    main()
