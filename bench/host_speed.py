"""How fast this host runs one fixed model right now, and how that drifts over time.

Times ResNet-18 at 64×64 (resnet-family ``basic [2, 2, 2, 2]``, width 64) on ONNX Runtime
with one thread, median of the runs in ``--seconds`` after a warm-up, in a fresh process per
probe (a process keeps its own few-percent offset for life, as a campaign's worker does).
Prints one JSON object; with ``--minutes`` it probes every ``--interval`` seconds and adds
the spread (slowest / fastest probe − 1). Nothing but the host changes between probes, so
the spread is the floor under any comparison of two campaigns taken at different times.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

SPEC = {"block": "basic", "blocks": [2, 2, 2, 2], "width": 64, "input_size": 64,
        "num_classes": 1000}
WARMUP_RUNS = 20

PROBE = """
import json, sys, time, statistics
from lenna_core.records import Workload
from lenna_core.plugins.registry import make_registry
registry = make_registry()
source = registry.create("source", "resnet-family")
backend = registry.get_available("backend", "onnxruntime")(threads=1)
runner = backend.prepare(Workload(source.from_spec(json.loads(sys.argv[1]))))
for _ in range(int(sys.argv[3])):
    runner.run()
times, end = [], time.perf_counter() + float(sys.argv[2])
while time.perf_counter() < end:
    start = time.perf_counter_ns()
    runner.run()
    times.append(time.perf_counter_ns() - start)
runner.close()
print(statistics.median(times) / 1e6, len(times))
"""


def probe(seconds: float = 3.0) -> float:
    """Median latency (ms) of the fixed model in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(SPEC), str(seconds), str(WARMUP_RUNS)],
        capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise SystemExit(f"host speed probe failed: {lines[-1] if lines else 'no output'}")
    return float(result.stdout.split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per probe")
    parser.add_argument("--minutes", type=float, default=0.0,
                        help="keep probing for this long (default: one probe)")
    parser.add_argument("--interval", type=float, default=60.0,
                        help="seconds from one probe's start to the next's")
    args = parser.parse_args()
    if args.seconds <= 0 or args.minutes < 0 or args.interval <= 0:
        parser.error("--seconds and --interval must be positive, --minutes not negative")
    started = time.monotonic()
    probes = []
    while True:
        at = time.monotonic()
        probes.append({"t_seconds": round(at - started, 1), "ms": round(probe(args.seconds), 4)})
        print(f"{time.strftime('%H:%M:%S')} {probes[-1]['ms']:.3f} ms", file=sys.stderr,
              flush=True)
        if at + args.interval - started > args.minutes * 60:
            break
        time.sleep(max(0.0, at + args.interval - time.monotonic()))
    values = [p["ms"] for p in probes]
    print(json.dumps({"model": SPEC, "backend": "onnxruntime", "threads": 1,
                      "median_ms": round(statistics.median(values), 4),
                      "spread": round(max(values) / min(values) - 1, 4), "probes": probes}))


if __name__ == "__main__":
    main()
