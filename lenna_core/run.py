"""The main job: sample → measure → featurize → fit → evaluate → save a predictor."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from lenna_core import limits
from lenna_core.data.store import Store
from lenna_core.errors import LennaError
from lenna_core.learning.features import feature_matrix
from lenna_core.learning.plotting import plot_predicted_vs_measured
from lenna_core.learning.predictor import bundle_info, save_predictor
from lenna_core.learning.tuning import tune
from lenna_core.learning.validation import MIN_ROWS, evaluate, fit_target
from lenna_core.measurement.campaign import run_campaign, sample_architectures
from lenna_core.measurement.capabilities import check_mode, workload_for
from lenna_core.measurement.doctor import quick_warning
from lenna_core.measurement.protocol import MeasurementProtocol
from lenna_core.measurement.worker import Worker, WorkerSettings
from lenna_core.paths import writable_directory
from lenna_core.plugins.interfaces import optional
from lenna_core.plugins.registry import Registry
from lenna_core.records import Architecture, FitReport


@attrs.frozen
class RunConfig:
    """Everything ``lenna run`` takes; each field has the CLI's default."""

    source: str = "resnet-family"
    source_options: Mapping[str, Any] = attrs.field(factory=dict)
    architectures: tuple[Architecture, ...] = ()
    backend: str = "onnxruntime"
    threads: int | None = 1
    features: tuple[str, ...] = ("layer-stats",)
    estimator: str = "additive-lightgbm"
    n: int = 100
    seed: int = 0
    batch_size: int = 1
    mode: str = "inference"
    optimizer: str | None = None
    cpus: tuple[int, ...] | None = None
    timeout: float = 600.0
    profile_runs: int = 5
    repeats: int = 5
    keep_contended: bool = False
    retry_failed: bool = False
    tune: bool = False
    tune_budget: int | None = None
    out: Path = Path("runs/default")
    protocol: MeasurementProtocol = MeasurementProtocol()

    def __attrs_post_init__(self) -> None:
        """The ranges the CLI checks as it parses, for configs made in code too."""
        for bound, value in ((limits.N, self.n), (limits.SEED, self.seed),
                             (limits.BATCH_SIZE, self.batch_size),
                             (limits.TIMEOUT, self.timeout),
                             (limits.PROFILE_RUNS, self.profile_runs),
                             (limits.REPEATS, self.repeats),
                             (limits.TUNE_BUDGET, self.tune_budget),
                             (limits.THREADS, self.threads)):
            bound.check(value)
        for arch in self.architectures:
            if arch.source != self.source:
                raise LennaError(f"--arch {arch.id} comes from source {arch.source!r}, not "
                                 f"{self.source!r}: give architectures of the run's --source")


@attrs.frozen
class RunResult:
    report: FitReport
    measured: int
    reused: int
    failed: int
    contended: int
    contention_line: str | None
    out: Path


def run(config: RunConfig, registry: Registry, store: Store,
        warn: Callable[[str], None] = lambda line: None) -> RunResult:
    """Run the main job with the plugins of ``registry``, keeping every label in ``store``;
    every check that can fail early happens before measuring (those of the options alone when
    the config is made). ``warn`` gets one line when the host is busy, just before
    measuring."""
    source = registry.create("source", config.source, config.source_options)
    backend_cls = registry.get_available("backend", config.backend)
    optimizer = check_mode(backend_cls, config.mode, config.optimizer)
    featurizers = [registry.create("featurizer", name)
                   for name in config.features]
    if not featurizers:
        raise LennaError("give at least one featurizer with --features")
    estimator = registry.create("estimator", config.estimator)
    writable_directory(config.out)
    store.open()

    architectures = _with_given(config, sample_architectures(source, config.n, config.seed))
    workloads = [workload_for(source, a, backend_cls, batch_size=config.batch_size,
                              mode=config.mode, optimizer=optimizer) for a in architectures]
    busy = quick_warning()
    if busy:
        warn(busy)
    settings = WorkerSettings(config.backend, threads=config.threads, cpus=config.cpus,
                              timeout=config.timeout, profile_runs=config.profile_runs)
    with Worker(settings) as worker:
        campaign = run_campaign(store, worker, workloads, config.protocol,
                                optional(source, "children"), retry_failed=config.retry_failed)
    target = campaign.target
    baseline = store.reference_baseline(target, config.protocol.key)
    labels = list(zip(campaign.workloads, campaign.measurements, strict=True))
    ok = [(w, m) for w, m in labels if m.usable(config.keep_contended)]
    failed = sum(m.status == "failed" for _, m in labels)
    contended = sum(m.contended for _, m in labels)
    _check_enough(len(ok), failed, contended, campaign.contention_line())
    names, X = feature_matrix(store, [w for w, _ in ok], featurizers)
    latency = np.array([m.latency_ns(baseline) for _, m in ok]) / 1e9
    ids = [w.architecture.id for w, _ in ok]
    tuner = partial(tune, budget=config.tune_budget, seed=config.seed) if config.tune else None
    report = evaluate(estimator, X, latency, ids, repeats=config.repeats, seed=config.seed,
                      tuner=tuner)
    final = fit_target(tuner(estimator, X, latency) if tuner else estimator, X, latency)
    save_predictor(config.out / "predictor", final, featurizers, names,
                   bundle_info(workloads[0], config.source, config.source_options, target, X,
                               latency, report))
    _write_report(config, store.db, report, target.id, campaign.measured, failed, contended,
                  len(latency))
    plot_predicted_vs_measured(
        report, config.out / "predicted_vs_measured.png",
        f"{config.estimator} on {config.backend} ({config.source}, n={len(latency)})")
    return RunResult(report, campaign.measured, campaign.reused, failed, contended,
                     campaign.contention_line(), config.out)


def _with_given(config: RunConfig, sampled: list[Architecture]) -> list[Architecture]:
    """The architectures given with ``--arch``, then the sampled ones they do not repeat."""
    given = {a.id: a for a in config.architectures}
    return [*given.values(), *(a for a in sampled if a.id not in given)]


def _check_enough(rows: int, failed: int, contended: int, contention: str | None) -> None:
    """Fail with what went wrong when too few labels are left to fit."""
    if rows >= MIN_ROWS:
        return
    why = [f"{n} {what}" for n, what in ((failed, "failed"), (contended, "contended")) if n]
    hint = (f"; {contention}, or pass --keep-contended to fit them anyway"
            if contended else "")
    raise LennaError(f"only {rows} labels are left to fit ({', '.join(why) or 'none measured'}"
                     f"); an estimator needs at least {MIN_ROWS}{hint}")


def _write_report(config: RunConfig, db: str, report: FitReport, target_id: str,
                  measured: int, failed: int, contended: int, rows: int) -> None:
    data = {
        **report.to_dict(),
        "config": {
            "source": config.source, "source_options": dict(config.source_options),
            "backend": config.backend, "threads": config.threads,
            "features": list(config.features), "estimator": config.estimator, "n": config.n,
            "architectures": [a.id for a in config.architectures],
            "seed": config.seed, "batch_size": config.batch_size, "mode": config.mode,
            "optimizer": config.optimizer, "cpus": config.cpus, "repeats": config.repeats,
            "keep_contended": config.keep_contended,
            "tune": config.tune, "tune_budget": config.tune_budget,
            "db": db, "protocol": config.protocol.key,
        },
        "target_id": target_id,
        "measurements": {"rows": rows, "new": measured, "failed": failed,
                         "contended": contended},
    }
    path = config.out / "report.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
