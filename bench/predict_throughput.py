"""Predictions per second of fitted estimators on 100,000 feature rows, and featurizations
per second of each source's architectures. Prints JSON.

Estimators are fitted on 900 rows of synthetic latency data with 30 features (the size of
``nb201-encoding``) and predict 100,000 rows in one call; each source's architectures are
sampled once and featurized with ``layer-stats`` and, where it applies, the source's own
encoding.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from lenna_core.plugins.registry import make_registry
from lenna_core.plugins.testing import contract_data
from lenna_core.records import Workload

ESTIMATORS = ("decision-tree", "random-forest", "lightgbm", "additive-lightgbm", "mlp",
              "torch-mlp", "linear")
FEATURIZATIONS = {  # source (options) -> featurizers
    ("resnet-family", ()): ("layer-stats", "graph-stats", "kernels"),
    ("conv-layers", ()): ("layer-stats",),
    ("nasbench201", ()): ("nb201-encoding", "layer-stats"),
    ("darts-cells", (("max_channels", 64),)): ("darts-encoding", "darts-flops"),
    ("training-workloads", ()): ("layer-stats",),
    ("torchvision", (("input_sizes", "64"),)): ("layer-stats",),
}


def predictions_per_second(name: str, rows: int) -> float:
    registry = make_registry()
    X, y = contract_data(seed=1)
    X = np.tile(X, (8, 5))[:900, :30] * np.random.default_rng(0).uniform(0.9, 1.1, (900, 30))
    estimator = registry.create("estimator", name)
    estimator.fit(X, np.log(np.resize(y, 900)))
    big = np.random.default_rng(1).uniform(1, 10, size=(rows, X.shape[1]))
    estimator.predict(big[:100])
    start = time.perf_counter()
    estimator.predict(big)
    return rows / (time.perf_counter() - start)


def featurizations_per_second(source_name: str, options: dict, featurizers: tuple[str, ...],
                              count: int) -> dict[str, float]:
    registry = make_registry()
    source = registry.create("source", source_name, options)
    rng = np.random.default_rng(0)
    workloads = [Workload(source.sample(rng)) for _ in range(count)]
    rates = {}
    for name in featurizers:
        featurizer = registry.create("featurizer", name)
        start = time.perf_counter()
        for workload in workloads:
            featurizer.featurize(workload)
        rates[name] = round(count / (time.perf_counter() - start), 1)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--architectures", type=int, default=20)
    args = parser.parse_args()
    registry = make_registry()
    available = set(registry.names("estimator"))
    predictions = {name: round(predictions_per_second(name, args.rows))
                   for name in ESTIMATORS if name in available}
    featurizations = {}
    for (source, options), featurizers in FEATURIZATIONS.items():
        if source in registry.names("source"):
            featurizations[source] = featurizations_per_second(source, dict(options),
                                                               featurizers, args.architectures)
    print(json.dumps({"rows": args.rows, "predictions_per_second": predictions,
                      "featurizations_per_second": featurizations}))


if __name__ == "__main__":
    main()
