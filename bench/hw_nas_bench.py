"""Every estimator on every (device, framework, task) of HW-NAS-Bench-360, through the CLI.

Imports ../shared/data/hw-nas-bench-360 (one import per task, with its input shape), then
runs ``lenna evaluate`` with ``nb201-encoding`` on each target: 900 training cells, the
rest of the target's distinct cells as the test set, repeated over seeds. Prints JSON:
``{"targets": {TARGET: {ESTIMATOR: {"within_10pct": ..., "mape": ..., ...}}}}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TASKS = {  # task -> source options giving its input shape and classes
    "cifar100": ["-O", "num_classes=100"],
    "ninapro": ["-O", "input_channels=1", "-O", "input_size=52x16"],
    "darcy": ["-O", "input_channels=1", "-O", "input_size=88"],
}
ESTIMATORS = ("linear,ridge,elasticnet,knn,decision-tree,random-forest,adaboost,lightgbm,"
              "additive-lightgbm,mlp,torch-mlp,ensemble,kernel-additive")
DEVICES = ("pi5/litert", "pi5/onnx", "pi5/torchmobile", "pixel/litert")


def lenna(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "lenna_core", *args], capture_output=True,
                            text=True, cwd=ROOT)
    if result.returncode:
        raise SystemExit(f"lenna {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="runs/hw-nas-bench/hw.db")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--estimators", default=ESTIMATORS)
    parser.add_argument("--train-size", type=int, default=900)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    db = ROOT / args.db
    db.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, dict] = {}
    for task in args.tasks.split(","):
        lenna("import", str(DATA / "hw-nas-bench-360" / "dataset.parquet"), "--source",
              "nasbench201", *TASKS[task], "--where", f"task={task}", "--arch-col", "arch_idx",
              "--arch-map", str(DATA / "nasbench201" / "arch_index_to_str.csv"),
              "--target-cols", "device,framework,task", "--latency-col", "lat_ms_median",
              "--db", str(db))
        for device in DEVICES:
            target = f"{device}/{task}"
            report = json.loads(lenna(
                "evaluate", "--db", str(db), "--source", "nasbench201", *TASKS[task],
                "--target", target, "--features", "nb201-encoding", "--estimators",
                args.estimators, "--train-size", str(args.train_size), "--repeats",
                str(args.repeats), "--out", str(db.parent / target.replace("/", "_")),
                "--json"))
            results[target] = {
                name: {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
                for name, metrics in report["estimators"].items()}
            print(f"{target}: done after {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)
    print(json.dumps({"train_size": args.train_size, "repeats": args.repeats,
                      "seconds": round(time.perf_counter() - started), "targets": results}))


if __name__ == "__main__":
    main()
