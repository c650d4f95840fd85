"""Few-shot transfer on HW-NAS-Bench-360: each (device, framework, task) as the target, the
others as anchors of 900 architectures each, 10 shots, every method. Prints JSON.

Needs the database that ``bench/hw_nas_bench.py`` imports (all three tasks). ``--strict``
also runs each target with only other devices or runtimes as anchors (no anchor shares the
target's device and framework on another task).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from lenna_core.data.store import Store
from lenna_core.plugins.registry import make_registry
from lenna_core.transfer.few_shot import METHODS, FewShotRequest, few_shot

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="runs/hw-nas-bench/hw.db")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--anchor-samples", type=int, default=900)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()
    db = str(ROOT / args.db)
    store, registry = Store(db, create=False), make_registry()
    targets = sorted(t.name for t in store.targets())
    started = time.perf_counter()
    cache: dict = {}
    results: dict[str, dict] = {}
    for protocol in ("all", "strict") if args.strict else ("all",):
        for target in targets:
            runtime = target.rsplit("/", 1)[0]
            anchors = tuple(t for t in targets if t != target and (
                protocol == "all" or t.rsplit("/", 1)[0] != runtime))
            request = FewShotRequest(source="nasbench201", anchors=anchors, target=target,
                                     anchor_samples=args.anchor_samples, shots=args.shots,
                                     repeats=args.repeats, methods=METHODS)
            report = few_shot(request, registry, store, architectures=cache)
            results.setdefault(protocol, {})[target] = {
                m: {k: round(v, 4) for k, v in r.items() if k != "repeats"}
                for m, r in report["methods"].items()}
            print(f"{protocol} {target}: done after {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)
    means = {p: {m: {k: round(float(np.mean([t[m][k] for t in r.values()])), 4)
                     for k in ("spearman", "kendall", "mape", "within_10pct")}
                 for m in METHODS} for p, r in results.items()}
    print(json.dumps({"shots": args.shots, "anchor_samples": args.anchor_samples,
                      "repeats": args.repeats, "seconds": round(time.perf_counter() - started),
                      "mean": means, "targets": results}))


if __name__ == "__main__":
    main()
