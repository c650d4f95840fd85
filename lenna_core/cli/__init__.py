"""The ``lenna`` command line. Heavy modules are imported inside commands, so ``--help`` is fast."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from lenna_core import __version__
from lenna_core.errors import LennaError

app = typer.Typer(
    name="lenna",
    help="LENNA: measure neural-network latency on real backends, learn estimators, predict.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)

INTERRUPTED = 130
DbOption = Annotated[str, typer.Option("--db", help="SQLite file or SQLAlchemy URL.")]
SourceName = Annotated[str, typer.Option("--source", help="Architecture source plugin.")]
SourceOptions = Annotated[list[str] | None, typer.Option(
    "--source-option", "-O", help="Source option key=value (repeatable), e.g. input_size=64.")]
ArchOption = Annotated[str | None, typer.Option(
    "--arch", help="A JSON spec, a JSON file, or an architecture id stored in --db.")]
SeedOption = Annotated[int | None, typer.Option(
    "--seed", help="Sample the architecture with this seed.")]
ModelOption = Annotated[str | None, typer.Option(
    "--model", help="Shorthand for the spec {\"model\": NAME}.")]


def _names(text: str | None) -> tuple[str, ...]:
    """The items of a comma list, stripped, empty ones dropped."""
    return tuple(c.strip() for c in (text or "").split(",") if c.strip())


def _registry():
    from lenna_core.plugins.registry import make_registry

    return make_registry()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lenna {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """LENNA: Latency Estimation for Neural Network Architectures."""


@app.command()
def run(
    source: Annotated[str, typer.Option(help="Architecture source plugin.")] = "resnet-family",
    source_option: Annotated[list[str] | None, typer.Option(
        "--source-option", "-O", help="Source option key=value (repeatable), e.g. input_size=64."
    )] = None,
    backend: Annotated[str, typer.Option(help="Hardware backend plugin.")] = "onnxruntime",
    threads: Annotated[str, typer.Option(
        help="Intra-op threads: a count, or auto for the backend's default (all cores). One "
             "thread gives labels that hold on a machine whose cores are shared.")] = "1",
    features: Annotated[str, typer.Option(help="Comma-separated featurizer plugins.")
                        ] = "layer-stats",
    estimator: Annotated[str, typer.Option(help="Latency estimator plugin.")] = "additive-lightgbm",
    n: Annotated[int, typer.Option("--n", help="Number of architectures to sample.")] = 100,
    seed: Annotated[int, typer.Option(help="Sampling and split seed.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Batch size of every workload.")] = 1,
    mode: Annotated[str, typer.Option(help="inference or training (one optimizer step).")
                    ] = "inference",
    optimizer: Annotated[str | None, typer.Option(
        help="Optimizer of a training step (sgd, adam, ...; default: the backend's first).")
    ] = None,
    protocol: Annotated[str, typer.Option(
        help="Stopping rule: adaptive[:CI] (CI half-width, default 0.01), fixed:N or lenna.")
    ] = "adaptive",
    budget: Annotated[float, typer.Option(
        help="Time budget per label, seconds, shared by its passes (a pass whose runs are "
             "spoiled by other processes may take twice its share).")] = 2.0,
    passes: Annotated[int, typer.Option(
        help="Passes per label, spread over the campaign (another pass, up to 5, when they "
             "disagree or one is spoiled).")] = 3,
    keep_contended: Annotated[bool, typer.Option(
        "--keep-contended", help="Fit labels that could not gather enough clean runs too.")
    ] = False,
    reference: Annotated[bool, typer.Option(
        "--reference/--no-reference",
        help="Interleave a reference workload to compensate host drift (costs about twice "
             "the time; see docs/measurement.md).")] = False,
    cpus: Annotated[str | None, typer.Option(
        help="Pin the backend worker to these CPUs, e.g. 0 or 0,1.")] = None,
    timeout: Annotated[float, typer.Option(
        help="Seconds one measurement may take before it is recorded as failed.")] = 600.0,
    profile_runs: Annotated[int, typer.Option(
        help="Profiled steps for the per-op profile (0: no profile).")] = 5,
    repeats: Annotated[int, typer.Option(help="Random 80/20 splits to average over.")] = 5,
    tune: Annotated[bool, typer.Option(
        "--tune", help="Pick the estimator's hyperparameters from its grid by 3-fold MAPE "
                       "(on each split's training rows, and on all rows for the predictor).")
    ] = False,
    tune_budget: Annotated[int | None, typer.Option(
        help="With --tune, try at most this many grid points, drawn at random.")] = None,
    out: Annotated[Path, typer.Option(help="Directory for report, plot and predictor.")
                   ] = Path("runs/default"),
    db: DbOption = "lenna.db",
) -> None:
    """Sample architectures, measure them, featurize, fit an estimator and evaluate it."""
    from lenna_core.measurement.protocol import MeasurementProtocol
    from lenna_core.run import RunConfig, parse_cpus, parse_options, parse_threads
    from lenna_core.run import run as run_pipeline

    config = RunConfig(
        source=source, source_options=parse_options(source_option or []), backend=backend,
        threads=parse_threads(threads), features=_names(features),
        estimator=estimator, n=n, seed=seed, batch_size=batch_size, mode=mode,
        optimizer=optimizer, cpus=parse_cpus(cpus), timeout=timeout, profile_runs=profile_runs,
        repeats=repeats, keep_contended=keep_contended, tune=tune, tune_budget=tune_budget,
        out=out, db=db,
        protocol=MeasurementProtocol.parse(
            protocol, budget_seconds=budget, passes=passes,
            compensate=reference),
    )
    result = run_pipeline(config, _registry(), warn=lambda line: typer.echo(line, err=True))
    _print_metrics(result.report)
    err = typer.echo
    if result.contention_line:
        kept = "fitted anyway" if keep_contended else "left out of the fit"
        err(f"{result.contention_line} ({kept})", err=True)
    err(f"measurements: {result.measured} new, {result.reused} reused, {result.failed} failed, "
        f"{result.contended} contended; wrote {out}/report.json, "
        f"{out}/predicted_vs_measured.png and {out}/predictor", err=True)


def _print_metrics(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from lenna_core.learning.metrics import LABELS, format_metric

    table = Table(title=f"{report.estimator} — {report.split}")
    table.add_column("metric")
    table.add_column("mean ± std", justify="right")
    for key, (mean, std) in report.metrics.items():
        table.add_row(LABELS.get(key, key), format_metric(key, mean, std))
    Console().print(table)


@app.command()
def predict(
    predictor: Annotated[Path, typer.Option(help="A predictor bundle: the --out of lenna run.")],
    arch: Annotated[Path | None, typer.Option(help="Architecture or Graph IR JSON file.")] = None,
    onnx: Annotated[Path | None, typer.Option(help="ONNX model file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Predict the latency of one architecture with a saved predictor."""
    from lenna_core.learning.predictor import load_predictor
    from lenna_core.records import Architecture, Workload

    if (arch is None) == (onnx is None):
        raise LennaError("give exactly one of --arch FILE.json or --onnx FILE.onnx")
    registry = _registry()
    bundle = predictor / "predictor" if (predictor / "predictor").is_dir() else predictor
    loaded = load_predictor(bundle, registry)
    if arch is not None:
        try:
            data = json.loads(arch.read_text())
        except OSError as exc:
            raise LennaError(f"cannot read {arch}: {exc.strerror or exc}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LennaError(f"{arch} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise LennaError(f"{arch} must hold a JSON object (an architecture or a graph)")
        architecture = Architecture.from_dict(data)
    else:
        source = registry.create("source", "onnx-file")
        architecture = source.from_spec({"path": str(onnx)})
    workload = Workload(architecture, **loaded.workload_settings())
    seconds = loaded.predict_seconds(workload)
    if as_json:
        typer.echo(json.dumps({"arch_id": architecture.id, "latency_ms": seconds * 1e3,
                               "estimator": loaded.manifest["estimator"]["name"]}))
    else:
        typer.echo(f"{architecture.id}  predicted latency {seconds * 1e3:.3f} ms")


@app.command()
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the plugins found, with their distribution and availability."""
    rows = _registry().rows()
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for column in ("kind", "name", "distribution", "version", "availability"):
        table.add_column(column)
    for r in rows:
        state = "available" if r.available else f"unavailable: {r.reason}"
        table.add_row(r.kind, r.name, r.distribution, r.version, state)
    Console(width=max(120, os.get_terminal_size(0).columns if sys.stdout.isatty() else 160)
            ).print(table)


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Output file.")],
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    db: DbOption = "lenna.db",
) -> None:
    """Write one row per stored measurement, with its features, to Parquet or CSV."""
    from lenna_core.data.export import export_measurements
    from lenna_core.data.store import Store

    rows = export_measurements(Store(db, create=False), out, fmt)
    typer.echo(f"wrote {rows} rows to {out}", err=True)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file of measured latencies.")],
    source: SourceName,
    arch_col: Annotated[str, typer.Option(
        help="Column of architecture specs: JSON objects, plain strings (the source's main "
             "spec field, e.g. a nasbench201 arch string) or indices for --arch-map.")],
    source_option: SourceOptions = None,
    arch_map: Annotated[Path | None, typer.Option(
        help="CSV whose first two columns are an index and a spec.")] = None,
    target_cols: Annotated[str | None, typer.Option(
        help="Comma-separated columns whose values, joined with '/', name the target.")
    ] = None,
    latency_col: Annotated[str | None, typer.Option(help="Column of latencies.")] = None,
    unit: Annotated[str, typer.Option(help="Unit of the latencies: ms, us or s.")] = "ms",
    wide: Annotated[bool, typer.Option(
        "--wide", help="Every numeric column but --arch-col is a target named by its header.")
    ] = False,
    ignore_cols: Annotated[str | None, typer.Option(
        help="Comma-separated numeric columns that are no target (with --wide).")] = None,
    where: Annotated[list[str] | None, typer.Option(
        help="Keep only rows with COL=VALUE (repeatable; the values given for one column "
             "are alternatives).")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size of the workloads.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")
                       ] = False,
    db: DbOption = "lenna.db",
) -> None:
    """Import latencies measured elsewhere, in one transaction, without duplicates, isomorphic
    copies or degenerate rows (see docs/import.md)."""
    from lenna_core.data.importing import ImportOptions, import_file, summary_text
    from lenna_core.run import parse_options

    options = ImportOptions(arch_col=arch_col, target_cols=_names(target_cols),
                            latency_col=latency_col, wide=wide, ignore_cols=_names(ignore_cols),
                            arch_map=arch_map, unit=unit, where=tuple(where or ()),
                            batch_size=batch_size)
    src = _registry().create("source", source, parse_options(source_option or []))
    summary = import_file(file, src, options, db)
    for warning in summary["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(json.dumps(summary, indent=2) if as_json else summary_text(summary))


@app.command()
def evaluate(
    source: SourceName,
    target: Annotated[str, typer.Option(
        help="Target name (a backend, or an imported target such as pi5/onnx/cifar100); a "
             "comma list with --split device.")],
    source_option: SourceOptions = None,
    features: Annotated[str, typer.Option(help="Comma-separated featurizer plugins.")
                        ] = "layer-stats",
    estimators: Annotated[str, typer.Option(help="Comma-separated estimator plugins.")
                          ] = "linear,ridge,knn,random-forest,lightgbm,mlp",
    split: Annotated[str, typer.Option(
        help="random (repeated over seeds), family (hold out a model family) or device "
             "(hold out a target).")] = "random",
    train_size: Annotated[int | None, typer.Option(
        help="Training rows per split (random: the rest is the test set; default 80%).")
    ] = None,
    repeats: Annotated[int, typer.Option(help="Splits to average over.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the first split.")] = 0,
    holdout: Annotated[str | None, typer.Option(
        help="Families (or targets) to hold out, in turn; default: each in turn.")] = None,
    family_key: Annotated[str, typer.Option(
        help="Spec field naming a row's family (else the source's name).")] = "model",
    anchors: Annotated[int, typer.Option(
        help="Architectures whose latencies describe a device (--split device).")] = 10,
    tune: Annotated[bool, typer.Option(
        "--tune", help="Pick each estimator's hyperparameters from its grid by 3-fold MAPE "
                       "on each split's training rows.")] = False,
    tune_budget: Annotated[int | None, typer.Option(
        help="With --tune, try at most this many grid points, drawn at random.")] = None,
    out: Annotated[Path, typer.Option(help="Directory for the CSV, JSON and plots.")
                   ] = Path("runs/evaluate"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = "lenna.db",
) -> None:
    """Fit several estimators on the same splits of stored measurements and compare them."""
    from rich.console import Console
    from rich.table import Table

    from lenna_core.learning.evaluate import EvaluationRequest, evaluate_request, write_outputs
    from lenna_core.learning.metrics import LABELS, METRICS, format_metric
    from lenna_core.run import parse_options

    request = EvaluationRequest(
        source=source, targets=_names(target), features=_names(features),
        estimators=_names(estimators), source_options=parse_options(source_option or []),
        split=split, train_size=train_size, repeats=repeats, seed=seed,
        holdout=_names(holdout), family_key=family_key, anchors=anchors, tune=tune,
        tune_budget=tune_budget)
    comparison = evaluate_request(request, db)
    written = write_outputs(comparison, out)
    if as_json:
        typer.echo(json.dumps(comparison.to_dict(), default=str))
    else:
        table = Table(title=f"{source} on {target}: {comparison.split}")
        table.add_column("estimator")
        for key in METRICS:
            table.add_column(LABELS[key], justify="right")
        for name, report in comparison.reports.items():
            table.add_row(name, *(format_metric(k, *report.metrics[k]) for k in METRICS))
        # a pipe or file gets the whole table, not one squeezed into 80 columns
        Console(width=None if sys.stdout.isatty() else 220).print(table)
    typer.echo(f"{comparison.rows} rows ({comparison.dropped_isomorphic} isomorphic copies "
               f"dropped); wrote {', '.join(str(p) for p in written)}", err=True)


@app.command()
def transfer(
    target: Annotated[str, typer.Option(help="The device to predict (a stored target name).")],
    source: SourceName = "nasbench201",
    source_option: SourceOptions = None,
    anchors: Annotated[str | None, typer.Option(
        help="Few-shot: comma list of anchor targets measured on many architectures.")
    ] = None,
    anchor: Annotated[str | None, typer.Option(
        help="Profile transfer: the one target whose per-op profiles are the inputs.")
    ] = None,
    anchor_samples: Annotated[int, typer.Option(
        help="Few-shot: architectures each anchor contributes, at most.")] = 900,
    shots: Annotated[int, typer.Option(
        help="Few-shot: architectures measured on the target.")] = 10,
    method: Annotated[str, typer.Option(
        help="Few-shot: shots, ratio, mapping, blend, or all to compare them.")
    ] = "blend",
    features: Annotated[str | None, typer.Option(
        help="Comma-separated featurizers (default: the source's natural encoding).")
    ] = None,
    estimator: Annotated[str | None, typer.Option(
        help="Estimator of each anchor (few-shot, default lightgbm) or of the profile "
             "mapping (default random-forest).")] = None,
    top_n: Annotated[int | None, typer.Option(
        help="Profile transfer: keep the N op columns with the most time (default all).")
    ] = None,
    validation: Annotated[str, typer.Option(
        help="Profile transfer: model (leave one model out) or random (held-out workloads).")
    ] = "model",
    level: Annotated[str, typer.Option(
        help="Profile transfer: op columns by LENNA op (lenna) or framework op (framework).")
    ] = "lenna",
    repeats: Annotated[int, typer.Option(help="Repeats (splits or shot draws).")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the first repeat.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = "lenna.db",
) -> None:
    """Predict a target device's latencies from anchor devices: from a few shots measured on
    it (--anchors), or from another machine's per-op profiles (--anchor)."""
    from lenna_core.run import parse_options

    if (anchors is None) == (anchor is None):
        raise LennaError("give --anchors A,B,... (few-shot) or --anchor A (profile transfer)")
    options = parse_options(source_option or [])
    if anchor is not None:
        if options:
            raise LennaError("profile transfer takes no --source-option: it reads stored "
                             "workloads as they are")
        _profile_transfer(source, anchor, target, _names(features), estimator, top_n,
                          validation, level, repeats, seed, as_json, db)
        return
    from lenna_core.transfer.few_shot import METHODS, FewShotRequest, few_shot

    request = FewShotRequest(
        source=source, anchors=_names(anchors), target=target, features=_names(features),
        source_options=options, anchor_samples=anchor_samples, shots=shots, repeats=repeats,
        seed=seed, methods=METHODS if method == "all" else (method,),
        estimator=estimator or "lightgbm")
    report = few_shot(request, db)
    if as_json:
        single = report["methods"][method] if method != "all" else report
        typer.echo(json.dumps(single))
        return
    typer.echo(f"{target}: {shots} shots, {len(request.anchors)} anchors of at most "
               f"{anchor_samples} architectures, {report['architectures']} architectures, "
               f"{repeats} repeats")
    typer.echo(f"{'method':10s} {'Spearman':>9s} {'Kendall':>8s} {'MAPE':>8s} {'±10%':>7s}")
    for name, m in report["methods"].items():
        typer.echo(f"{name:10s} {m['spearman']:9.3f} {m['kendall']:8.3f} {m['mape']:8.1%} "
                   f"{m['within_10pct']:7.1%}")


def _profile_transfer(source: str, anchor: str, target: str, features: tuple[str, ...],
                      estimator: str | None, top_n: int | None, validation: str,
                      level: str, repeats: int, seed: int, as_json: bool, db: str) -> None:
    """``lenna transfer --anchor A --target B``: per-op profiles of A to B's."""
    from lenna_core.data.dataset import resolve_target
    from lenna_core.data.store import Store
    from lenna_core.learning.metrics import LABELS, format_metric
    from lenna_core.transfer.profiles import transfer_profiles

    store = Store(db, create=False)
    src = _registry().get_available("source", source)
    report = transfer_profiles(
        store, source, resolve_target(store, anchor), resolve_target(store, target),
        features=features or (getattr(src, "default_features", "layer-stats"),),
        estimator=estimator or "random-forest", top_n=top_n, level=level,
        validation=validation, repeats=repeats, seed=seed)
    if as_json:
        typer.echo(json.dumps(report, default=str))
        return
    typer.echo(f"{report['anchor']} -> {report['target']}: {report['rows']} workloads aligned "
               f"by id ({report['anchor_only']} only on the anchor, {report['target_only']} "
               f"only on the target); {len(report['input_columns'])} anchor op columns in, "
               f"{len(report['output_columns'])} target op columns out; "
               f"{report['validation']} validation, {len(report['splits'])} splits")
    typer.echo("end-to-end latency:")
    for key, mean in report["metrics"].items():
        typer.echo(f"  {LABELS.get(key, key):12s} "
                   f"{format_metric(key, mean, report['metrics_std'][key])}")
    typer.echo(f"{'op':24s} {'MAPE':>8s} {'R²':>8s} {'rows':>5s}")
    for op, m in report["op_metrics"].items():
        typer.echo(f"{op:24s} {m['mape']:8.1%} {m['r2']:8.3f} {m['rows']:5d}")


@app.command()
def sample(
    source: Annotated[str, typer.Option(help="Architecture source plugin.")] = "resnet-family",
    source_option: Annotated[list[str] | None, typer.Option(
        "--source-option", "-O", help="Source option key=value (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of stdout.")
                   ] = None,
) -> None:
    """Print one sampled architecture (spec and Graph IR) as JSON, usable with predict --arch."""
    import numpy as np

    from lenna_core.run import parse_options

    arch = _registry().create("source", source, parse_options(source_option or [])).sample(
        np.random.default_rng(seed))
    text = json.dumps(arch.to_dict(), indent=2)
    if out is None:
        typer.echo(text)
    else:
        try:
            out.write_text(text)
        except OSError as exc:
            raise LennaError(f"cannot write {out}: {exc.strerror or exc}") from None


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _architecture(source_name: str, options: list[str] | None, arch: str | None,
                  seed: int | None, model: str | None, db: str):
    """Resolve --arch (JSON spec, JSON file or stored id), --seed or --model to one arch."""
    import numpy as np

    from lenna_core.records import Architecture
    from lenna_core.run import parse_options

    if sum(x is not None for x in (arch, seed, model)) != 1:
        raise LennaError("give exactly one of --arch ID_OR_SPEC, --seed K or --model NAME")
    registry = _registry()
    source = registry.create("source", source_name, parse_options(options or []))
    if seed is not None:
        return source, source.sample(np.random.default_rng(seed))
    if model is not None:
        return source, source.from_spec({"model": model})
    text = arch.strip()
    if text.startswith("{"):
        try:
            return source, source.from_spec(json.loads(text))
        except json.JSONDecodeError as exc:
            raise LennaError(f"--arch is not valid JSON: {exc}") from None
    path = Path(text)
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LennaError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(data, dict) and "graph" in data:
            return source, Architecture.from_dict(data)
        return source, source.from_spec(data)
    from lenna_core.data.store import Store

    stored = Store(db, create=False).architecture(text)
    if stored is None:
        raise LennaError(f"--arch {text!r} is neither a JSON spec, a file nor an architecture "
                         f"id stored in {db}")
    return source, stored


@app.command()
def features(
    source: SourceName = "resnet-family",
    source_option: SourceOptions = None,
    arch: ArchOption = None,
    seed: SeedOption = None,
    model: ModelOption = None,
    features: Annotated[str, typer.Option(help="Comma-separated featurizer plugins.")
                        ] = "layer-stats",
    batch_size: Annotated[int, typer.Option(help="Batch size of the workload.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    db: DbOption = "lenna.db",
) -> None:
    """Print one architecture's features (names unprefixed for a single featurizer)."""
    from lenna_core.records import Workload

    src, architecture = _architecture(source, source_option, arch, seed, model, db)
    registry = _registry()
    names = [f.strip() for f in features.split(",") if f.strip()]
    settings_of = getattr(src, "workload_settings", None)
    settings = settings_of(architecture) if callable(settings_of) else {}
    workload = Workload(architecture, **{"batch_size": batch_size, **settings})
    values: dict[str, float] = {}
    for name in names:
        featurizer = registry.create("featurizer", name)
        for key, value in featurizer.featurize(workload).items():
            values[key if len(names) == 1 else f"{name}.{key}"] = float(value)
    if as_json:
        typer.echo(json.dumps(values))
    else:
        for key, value in values.items():
            typer.echo(f"{key:40s} {value:g}")


@app.command()
def layers(
    source: SourceName = "resnet-family",
    source_option: SourceOptions = None,
    arch: ArchOption = None,
    seed: SeedOption = None,
    model: ModelOption = None,
    measure: Annotated[bool, typer.Option(
        "--measure", help="Measure every layer on its own and the whole model (stored in "
                          "--db).")] = False,
    predictor: Annotated[Path | None, typer.Option(
        help="Predict every layer with this bundle (fitted on conv-layers) and report the "
             "errors; implies --measure.")] = None,
    backend: Annotated[str, typer.Option(help="Backend to measure on.")] = "onnxruntime",
    protocol: Annotated[str, typer.Option(help="Stopping rule, as for lenna run.")
                        ] = "adaptive",
    threads: Annotated[int | None, typer.Option(help="Intra-op threads.")] = None,
    batch_size: Annotated[int, typer.Option(
        help="Batch size (a predictor's own batch size wins).")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = "lenna.db",
) -> None:
    """List an architecture's conv layers: name, kernel, filters, input channels, H, W, stride;
    with --measure or --predictor, each layer's latency, prediction and error."""
    from lenna_core.ir.conv_layers import conv_layers

    _, architecture = _architecture(source, source_option, arch, seed, model, db)
    if measure or predictor is not None:
        from lenna_core.data.store import Store
        from lenna_core.measurement.parts import layer_report
        from lenna_core.measurement.protocol import MeasurementProtocol

        registry = _registry()
        registry.get_available("backend", backend)
        report = layer_report(architecture, registry, backend=backend, store=Store(db),
                              protocol=MeasurementProtocol.parse(protocol), threads=threads,
                              batch_size=batch_size, predictor=predictor)
    else:
        report = {"layers": conv_layers(architecture.graph)}
    if as_json:
        typer.echo(json.dumps(report if measure or predictor else report["layers"]))
        return
    timed = "measured_ms" in report["layers"][0] if report["layers"] else False
    predicted = "layers_predicted_ms" in report
    width = max([4, *(len(r["name"]) for r in report["layers"])])
    typer.echo(f"{'name':{width}s} {'kernel':>6s} {'filters':>7s} {'in_ch':>6s} {'H':>5s} "
               f"{'W':>5s} {'stride':>6s}" + (f" {'ms':>9s}" if timed else "")
               + (f" {'predicted':>9s} {'error':>7s}" if predicted else ""))
    for r in report["layers"]:
        line = (f"{r['name']:{width}s} {r['kernel']!s:>6s} {r['filters']:>7d} "
                f"{r['in_channels']:>6d} {r['H']:>5d} {r['W']:>5d} {r['stride']!s:>6s}")
        if timed:
            line += f" {r['measured_ms']:9.4f}"
        if predicted:
            line += f" {r['predicted_ms']:9.4f} {r['error']:+7.1%}"
        typer.echo(line)
    if timed:
        contended = (f" ({report['contended']} labels taken under contention: re-run on a "
                     "quiet machine)" if report["contended"] else "")
        typer.echo(f"{len(report['layers'])} conv layers: {report['layers_measured_ms']:.3f} ms "
                   f"measured one by one; whole model {report['end_to_end_ms']:.3f} ms"
                   f"{contended}")
    if predicted:
        typer.echo(f"predicted {report['layers_predicted_ms']:.3f} ms: per-layer MAPE "
                   f"{report['layer_mape']:.1%}, within ±10% {report['layer_within_10pct']:.0%}, "
                   f"error of the sum {report['sum_error']:+.1%}, against the whole model "
                   f"{report['sum_vs_end_to_end']:+.1%}")


@app.command()
def kernels(
    source: SourceName = "resnet-family",
    source_option: SourceOptions = None,
    arch: ArchOption = None,
    seed: SeedOption = None,
    model: ModelOption = None,
    backend: Annotated[str, typer.Option(help="Backend whose fusion rules (and, with "
                                              "--measure, whose timings) to use.")
                       ] = "onnxruntime",
    measure: Annotated[bool, typer.Option(
        "--measure", help="Measure every kernel on its own and the whole model.")] = False,
    protocol: Annotated[str, typer.Option(help="Stopping rule, as for lenna run.")
                        ] = "adaptive",
    threads: Annotated[int | None, typer.Option(help="Intra-op threads.")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = "lenna.db",
) -> None:
    """Split an architecture into the kernels a backend runs; with --measure, compare the sum
    of the kernels' latencies with the whole model's."""
    from lenna_core.measurement.parts import kernel_report

    _, architecture = _architecture(source, source_option, arch, seed, model, db)
    _registry().get_available("backend", backend)
    report = kernel_report(architecture, backend, measure=measure, protocol=protocol,
                           threads=threads, batch_size=batch_size)
    if as_json:
        typer.echo(json.dumps(report))
        return
    for row in report["kernels"]:
        latency = f"{row['latency_ms']:9.4f} ms" if "latency_ms" in row else ""
        typer.echo(f"{row['kind']:32s} {row['first_node']:28s} {latency}")
    if measure:
        typer.echo(f"sum of kernels {report['sum_ms']:.4f} ms, whole model "
                   f"{report['end_to_end_ms']:.4f} ms, ratio {report['sum_over_end_to_end']:.3f}")


@app.command()
def doctor(
    seconds: Annotated[float, typer.Option(
        help="Sampling window of the load, steal, throttling and pressure checks, seconds.")
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Exit with code 3 when the verdict is warn or bad.")] = False,
) -> None:
    """Say whether this host is fit to measure latency right now, and why not: load, CPU
    frequency, SMT, cgroup quota, steal, memory and CPU pressure (see docs/measurement.md)."""
    from lenna_core.measurement.doctor import diagnose, validate_seconds

    diagnosis = diagnose(validate_seconds(seconds))
    if as_json:
        typer.echo(json.dumps(diagnosis.to_dict(), indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        colours = {"ok": "green", "warn": "yellow", "bad": "red", "unknown": "dim"}
        table = Table(title=f"lenna doctor: {diagnosis.verdict} (window {diagnosis.seconds:g} s)")
        for column in ("check", "status", "value", "detail", "advice"):
            table.add_column(column, overflow="fold")
        for c in diagnosis.checks:
            table.add_row(c.name, f"[{colours[c.status]}]{c.status}[/]", c.shown_value,
                          c.detail, c.advice)
        Console(width=None if sys.stdout.isatty() else 220).print(table)
    if strict and diagnosis.verdict != "ok":
        raise typer.Exit(3)


def main() -> None:
    """Entry point: errors become one line on stderr and a non-zero exit, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Without standalone mode, typer returns exit codes (130 for an interrupt) and
        # raises everything else to here.
        code = app(prog_name="lenna", standalone_mode=False)
    except typer.TyperException as exc:
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context else ""
        print(f"error: {exc.format_message()}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        code = INTERRUPTED
    except LennaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if os.environ.get("LENNA_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc} (set LENNA_DEBUG=1 for a traceback)",
              file=sys.stderr)
        sys.exit(1)
    if code == INTERRUPTED:
        print("interrupted: everything committed so far is kept (labels and their passes one "
              "by one, an import all or nothing); run the same command again to resume",
              file=sys.stderr)
    if isinstance(code, int):
        sys.exit(code)
