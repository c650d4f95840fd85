"""``lenna evaluate``: several estimators compared on the same splits of stored labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lenna_core import limits
from lenna_core.cli.app import app
from lenna_core.cli.options import (
    DbOption,
    JsonFlag,
    SourceName,
    SourceOptions,
    bounded,
    names,
    parse_options,
    registry,
    store,
)
from lenna_core.cli.tables import print_table
from lenna_core.paths import writable_directory


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
    train_size: Annotated[int | None, bounded(
        limits.TRAIN_SIZE, "Training rows per split (random: the rest is the test set; "
                           "default 80%).")] = None,
    repeats: Annotated[int, bounded(limits.REPEATS, "Splits to average over.")] = 5,
    seed: Annotated[int, bounded(limits.SEED, "Seed of the first split.")] = 0,
    holdout: Annotated[str | None, typer.Option(
        help="Families (or targets) to hold out, in turn; default: each in turn.")] = None,
    family_key: Annotated[str, typer.Option(
        help="Spec field naming a row's family (else the source's name).")] = "model",
    anchors: Annotated[int, bounded(
        limits.ANCHORS, "Architectures whose latencies describe a device (--split device).")
    ] = 10,
    tune: Annotated[bool, typer.Option(
        "--tune", help="Pick each estimator's hyperparameters from its grid by 3-fold MAPE "
                       "on each split's training rows.")] = False,
    tune_budget: Annotated[int | None, bounded(
        limits.TUNE_BUDGET, "With --tune, try at most this many grid points, drawn at random.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the CSV, JSON and plots.")
                   ] = Path("runs/evaluate"),
    as_json: JsonFlag = False,
    db: DbOption = "lenna.db",
) -> None:
    """Fit several estimators on the same splits of stored measurements and compare them."""
    from lenna_core.learning.evaluate import EvaluationRequest, evaluate_request, write_outputs
    from lenna_core.learning.metrics import LABELS, METRICS, format_metric

    request = EvaluationRequest(
        source=source, targets=names(target), features=names(features),
        estimators=names(estimators), source_options=parse_options(source_option or []),
        split=split, train_size=train_size, repeats=repeats, seed=seed,
        holdout=names(holdout), family_key=family_key, anchors=anchors, tune=tune,
        tune_budget=tune_budget)
    writable_directory(out)
    comparison = evaluate_request(request, registry(), store(db, create=False))
    written = write_outputs(comparison, out)
    if as_json:
        typer.echo(json.dumps(comparison.to_dict(), default=str))
    else:
        metric_columns = [LABELS[key] for key in METRICS]
        print_table(["estimator", *metric_columns],
                    [(name, *(format_metric(k, *report.metrics[k]) for k in METRICS))
                     for name, report in comparison.reports.items()],
                    title=f"{source} on {target}: {comparison.split}", right=metric_columns)
    typer.echo(f"{comparison.rows} rows ({comparison.dropped_isomorphic} isomorphic copies "
               f"dropped); wrote {', '.join(str(p) for p in written)}", err=True)
