"""``lenna run``, the main job, and ``lenna predict`` with the predictor it saves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lenna_core import limits
from lenna_core.cli.app import app
from lenna_core.cli.options import (
    BudgetOption,
    DbOption,
    JsonFlag,
    PassesOption,
    ProtocolOption,
    SourceName,
    SourceOptions,
    ThreadsOption,
    TimeoutOption,
    bounded,
    names,
    parse_cpus,
    parse_options,
    parse_threads,
    read_json,
    registry,
    resolve_arch,
    store,
)
from lenna_core.cli.tables import print_table
from lenna_core.errors import LennaError


@app.command()
def run(
    source: SourceName = "resnet-family",
    source_option: SourceOptions = None,
    backend: Annotated[str, typer.Option(help="Hardware backend plugin.")] = "onnxruntime",
    threads: ThreadsOption = "1",
    features: Annotated[str, typer.Option(help="Comma-separated featurizer plugins.")
                        ] = "layer-stats",
    estimator: Annotated[str, typer.Option(help="Latency estimator plugin.")] = "additive-lightgbm",
    n: Annotated[int, bounded(limits.N, "Number of architectures to sample.", "--n")] = 100,
    arch: Annotated[list[str] | None, typer.Option(
        "--arch", help="Measure and fit this architecture too, beside the --n sampled ones: a "
                       "JSON spec, a JSON file (e.g. a cell lenna search derived) or an id "
                       "stored in --db (repeatable).")] = None,
    seed: Annotated[int, bounded(limits.SEED, "Sampling and split seed.")] = 0,
    batch_size: Annotated[int, bounded(limits.BATCH_SIZE, "Batch size of every workload.")
                          ] = 1,
    mode: Annotated[str, typer.Option(help="inference or training (one optimizer step).")
                    ] = "inference",
    optimizer: Annotated[str | None, typer.Option(
        help="Optimizer of a training step (sgd, adam, ...; default: the backend's first).")
    ] = None,
    protocol: ProtocolOption = "adaptive",
    budget: BudgetOption = 2.0,
    passes: PassesOption = 3,
    keep_contended: Annotated[bool, typer.Option(
        "--keep-contended", help="Fit labels that could not gather enough clean runs too.")
    ] = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Measure again the labels stored as failed (a worker killed "
                               "from outside, a crash, a time-out).")] = False,
    reference: Annotated[bool, typer.Option(
        "--reference/--no-reference",
        help="Interleave a reference workload to compensate host drift (costs about twice "
             "the time; see docs/measurement.md).")] = False,
    cpus: Annotated[str | None, typer.Option(
        help="Pin the backend worker to these CPUs, e.g. 0 or 0,1.")] = None,
    timeout: TimeoutOption = 600.0,
    profile_runs: Annotated[int, bounded(
        limits.PROFILE_RUNS, "Profiled steps for the per-op profile (0: no profile).")] = 5,
    repeats: Annotated[int, bounded(limits.REPEATS, "Random 80/20 splits to average over.")
                       ] = 5,
    tune: Annotated[bool, typer.Option(
        "--tune", help="Pick the estimator's hyperparameters from its grid by 3-fold MAPE "
                       "(on each split's training rows, and on all rows for the predictor).")
    ] = False,
    tune_budget: Annotated[int | None, bounded(
        limits.TUNE_BUDGET, "With --tune, try at most this many grid points, drawn at random.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for report, plot and predictor.")
                   ] = Path("runs/default"),
    db: DbOption = "lenna.db",
) -> None:
    """Sample architectures, measure them, featurize, fit an estimator and evaluate it."""
    from lenna_core.measurement.protocol import MeasurementProtocol
    from lenna_core.run import RunConfig
    from lenna_core.run import run as run_pipeline

    plugins = registry()
    options = parse_options(source_option or [])
    given = ()
    if arch:
        plugin = plugins.create("source", source, options)
        given = tuple(resolve_arch(plugin, text, db) for text in arch)
    config = RunConfig(
        source=source, source_options=options, architectures=given, backend=backend,
        threads=parse_threads(threads), features=names(features),
        estimator=estimator, n=n, seed=seed, batch_size=batch_size, mode=mode,
        optimizer=optimizer, cpus=parse_cpus(cpus), timeout=timeout, profile_runs=profile_runs,
        repeats=repeats, keep_contended=keep_contended, retry_failed=retry_failed, tune=tune,
        tune_budget=tune_budget, out=out,
        protocol=MeasurementProtocol.parse(
            protocol, budget_seconds=budget, passes=passes,
            compensate=reference),
    )
    result = run_pipeline(config, plugins, store(db),
                          warn=lambda line: typer.echo(line, err=True))
    _print_metrics(result.report)
    err = typer.echo
    if result.contention_line:
        kept = "fitted anyway" if keep_contended else "left out of the fit"
        err(f"{result.contention_line} ({kept})", err=True)
    err(f"measurements: {result.measured} new, {result.reused} reused, {result.failed} failed, "
        f"{result.contended} contended; wrote {out}/report.json, "
        f"{out}/predicted_vs_measured.png and {out}/predictor", err=True)


def _print_metrics(report) -> None:
    from lenna_core.learning.metrics import LABELS, format_metric

    print_table(["metric", "mean ± std"],
                [(LABELS.get(key, key), format_metric(key, mean, std))
                 for key, (mean, std) in report.metrics.items()],
                title=f"{report.estimator} — {report.split}", right=["mean ± std"])


@app.command()
def predict(
    predictor: Annotated[Path, typer.Option(help="A predictor bundle: the --out of lenna run.")],
    arch: Annotated[Path | None, typer.Option(help="Architecture or Graph IR JSON file.")] = None,
    onnx: Annotated[Path | None, typer.Option(help="ONNX model file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Predict the latency of one architecture with a saved predictor."""
    from lenna_core.learning.predictor import load_predictor
    from lenna_core.plugins.calls import plugin_call
    from lenna_core.records import Architecture, Workload

    if (arch is None) == (onnx is None):
        raise LennaError("give exactly one of --arch FILE.json or --onnx FILE.onnx")
    plugins = registry()
    loaded = load_predictor(predictor, plugins)
    if arch is not None:
        data = read_json(arch)
        if not isinstance(data, dict):
            raise LennaError(f"{arch} must hold a JSON object (an architecture or a graph)")
        architecture = Architecture.from_dict(data)
    else:
        source = plugins.create("source", "onnx-file")
        with plugin_call(source, "from_spec"):
            architecture = source.from_spec({"path": str(onnx)})
    workload = Workload(architecture, **loaded.workload_settings())
    seconds = loaded.predict_seconds(workload)
    if as_json:
        typer.echo(json.dumps({"arch_id": architecture.id, "latency_ms": seconds * 1e3,
                               "estimator": loaded.manifest["estimator"]["name"]}))
    else:
        typer.echo(f"{architecture.id}  predicted latency {seconds * 1e3:.3f} ms")
