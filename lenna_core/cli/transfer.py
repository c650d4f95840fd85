"""``lenna transfer``: a device predicted from anchor devices, by few shots or by per-op
profiles."""

from __future__ import annotations

import json
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
from lenna_core.errors import LennaError


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
    anchor_samples: Annotated[int, bounded(
        limits.ANCHOR_SAMPLES, "Few-shot: architectures each anchor contributes, at most.")
    ] = 900,
    shots: Annotated[int, bounded(
        limits.SHOTS, "Few-shot: architectures measured on the target.")] = 10,
    method: Annotated[str, typer.Option(
        help="Few-shot: shots, ratio, mapping, blend, or all to compare them.")
    ] = "blend",
    features: Annotated[str | None, typer.Option(
        help="Comma-separated featurizers (default: the source's natural encoding).")
    ] = None,
    estimator: Annotated[str | None, typer.Option(
        help="Estimator of each anchor (few-shot, default lightgbm) or of the profile "
             "mapping (default random-forest).")] = None,
    top_n: Annotated[int | None, bounded(
        limits.TOP_N, "Profile transfer: keep the N op columns with the most time (default "
                      "all).")] = None,
    validation: Annotated[str, typer.Option(
        help="Profile transfer: model (leave one model out) or random (held-out workloads).")
    ] = "model",
    level: Annotated[str, typer.Option(
        help="Profile transfer: op columns by LENNA op (lenna) or framework op (framework).")
    ] = "lenna",
    repeats: Annotated[int, bounded(limits.REPEATS, "Repeats (splits or shot draws).")] = 20,
    seed: Annotated[int, bounded(limits.SEED, "Seed of the first repeat.")] = 0,
    as_json: JsonFlag = False,
    db: DbOption = "lenna.db",
) -> None:
    """Predict a target device's latencies from anchor devices: from a few shots measured on
    it (--anchors), or from another machine's per-op profiles (--anchor)."""
    if (anchors is None) == (anchor is None):
        raise LennaError("give --anchors A,B,... (few-shot) or --anchor A (profile transfer)")
    options = parse_options(source_option or [])
    if anchor is not None:
        if options:
            raise LennaError("profile transfer takes no --source-option: it reads stored "
                             "workloads as they are")
        _profile_transfer(source, anchor, target, names(features), estimator, top_n,
                          validation, level, repeats, seed, as_json, db)
        return
    from lenna_core.transfer.few_shot import METHODS, FewShotRequest, few_shot

    request = FewShotRequest(
        source=source, anchors=names(anchors), target=target, features=names(features),
        source_options=options, anchor_samples=anchor_samples, shots=shots, repeats=repeats,
        seed=seed, methods=METHODS if method == "all" else (method,),
        estimator=estimator or "lightgbm")
    report = few_shot(request, registry(), store(db, create=False))
    if as_json:
        single = report["methods"][method] if method != "all" else report
        typer.echo(json.dumps(single))
        return
    typer.echo(f"{target}: {shots} shots, {len(request.anchors)} anchors of at most "
               f"{anchor_samples} architectures, {report['architectures']} architectures, "
               f"{repeats} repeats")
    print_table(["method", "Spearman", "Kendall", "MAPE", "±10%"],
                [(name, f"{m['spearman']:.3f}", f"{m['kendall']:.3f}", f"{m['mape']:.1%}",
                  f"{m['within_10pct']:.1%}") for name, m in report["methods"].items()],
                right=["Spearman", "Kendall", "MAPE", "±10%"])


def _profile_transfer(source: str, anchor: str, target: str, features: tuple[str, ...],
                      estimator: str | None, top_n: int | None, validation: str,
                      level: str, repeats: int, seed: int, as_json: bool, db: str) -> None:
    """``lenna transfer --anchor A --target B``: per-op profiles of A to B's."""
    from lenna_core.data.dataset import resolve_target
    from lenna_core.learning.metrics import LABELS, format_metric
    from lenna_core.plugins.interfaces import optional
    from lenna_core.transfer.profiles import transfer_profiles

    stored, plugins = store(db, create=False), registry()
    src = plugins.get_available("source", source)
    report = transfer_profiles(
        plugins, stored, source, resolve_target(stored, anchor), resolve_target(stored, target),
        features=features or (optional(src, "default_features"),),
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
    print_table(["op", "MAPE", "R²", "rows"],
                [(op, f"{m['mape']:.1%}", f"{m['r2']:.3f}", str(m["rows"]))
                 for op, m in report["op_metrics"].items()], right=["MAPE", "R²", "rows"])
