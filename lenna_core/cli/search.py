"""``lenna search``: latency-aware architecture search over a λ sweep."""

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
    parse_options,
    parse_threads,
    registry,
    store,
)
from lenna_core.cli.tables import print_table


@app.command()
def search(
    predictor: Annotated[Path | None, typer.Option(
        help="Latency predictor for the latency term: the --out of 'lenna run --source "
             "darts-cells --features darts-encoding --estimator torch-mlp' on --backend.")
    ] = None,
    lambdas: Annotated[str, typer.Option(
        "--lambda", help="Comma-separated λ values, one search each; λ = 1 weighs the latency "
                         "term at the start as much as the loss of a guessing network.")
    ] = "0,0.1,0.3,1",
    data: Annotated[Path | None, typer.Option(
        help="Images: an .npz (arrays x, y), a directory of .npz files or of one folder of "
             "images per class (default: scikit-learn's digits).")] = None,
    image_size: Annotated[int | None, bounded(
        limits.IMAGE_SIZE, "Resize images to this square size (digits: 16).")] = None,
    limit: Annotated[int | None, bounded(
        limits.LIMIT, "Use at most this many images (a stratified subset).")] = None,
    epochs: Annotated[int, bounded(limits.EPOCHS, "Search epochs per λ.")] = 20,
    train_epochs: Annotated[int, bounded(
        limits.TRAIN_EPOCHS, "Epochs that train each derived network from scratch.")] = 20,
    source: SourceName = "darts-cells",
    source_option: SourceOptions = None,
    space_option: Annotated[list[str] | None, typer.Option(
        "--space-option", "-S",
        help="Search option key=value (repeatable), e.g. channels=16 or "
             "cells=normal,reduction,normal.")] = None,
    backend: Annotated[str, typer.Option(
        help="Backend that measures each derived architecture.")] = "onnxruntime",
    threads: ThreadsOption = "1",
    seed: Annotated[int, bounded(limits.SEED, "Seed of the splits, weights and batches.")] = 0,
    protocol: ProtocolOption = "adaptive",
    budget: BudgetOption = 2.0,
    passes: PassesOption = 3,
    timeout: TimeoutOption = 600.0,
    out: Annotated[Path, typer.Option(
        help="Directory for search.json, the derived cells and pareto.png; a re-run resumes "
             "there.")] = Path("runs/search"),
    db: DbOption = "lenna.db",
    as_json: JsonFlag = False,
) -> None:
    """Search cells with loss + λ·latency for each λ, train and measure each derived one."""
    from lenna_core.measurement.protocol import MeasurementProtocol
    from lenna_core.search.job import SearchConfig, parse_lambdas, run_search

    config = SearchConfig(
        source=source, source_options=parse_options(source_option or []),
        space_options=parse_options(space_option or []), data=data, image_size=image_size,
        limit=limit, predictor=predictor, backend=backend, threads=parse_threads(threads),
        lambdas=parse_lambdas(lambdas), epochs=epochs, train_epochs=train_epochs, seed=seed,
        timeout=timeout, out=out,
        protocol=MeasurementProtocol.parse(protocol, budget_seconds=budget, passes=passes))
    result = run_search(config, registry(), store(db),
                        echo=lambda line: typer.echo(line, err=True))
    points = [result["points"][key] for key in sorted(result["points"], key=float)]
    if as_json:
        typer.echo(json.dumps({"points": [
            {k: p[k] for k in ("lambda", "accuracy", "measured_ms", "predicted_ms", "cells")}
            for p in points]}))
        return
    print_table(["λ", "test accuracy", "measured (ms)", "predicted (ms)"],
                [(f"{p['lambda']:g}", f"{p['accuracy']:.1%}", _ms(p["measured_ms"]),
                  _ms(p["predicted_ms"])) for p in points],
                title=f"search on {backend}", right=["test accuracy", "measured (ms)",
                                                       "predicted (ms)"])
    typer.echo(f"wrote {out}/search.json, {out}/pareto.png and the derived cells in "
               f"{out}/lambda-*/", err=True)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"
