"""``lenna import`` and ``lenna export``: latencies in and out of the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lenna_core import limits
from lenna_core.cli.app import app
from lenna_core.cli.options import (
    DbOption,
    SourceName,
    SourceOptions,
    bounded,
    names,
    parse_options,
    registry,
    store,
)


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
    batch_size: Annotated[int, bounded(limits.BATCH_SIZE, "Batch size of the workloads.")
                          ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")
                       ] = False,
    db: DbOption = "lenna.db",
) -> None:
    """Import latencies measured elsewhere, in transactions of 500 rows, without duplicates,
    isomorphic copies or degenerate rows (see docs/import.md)."""
    from lenna_core.data.importing import ImportOptions, import_file, summary_text

    options = ImportOptions(arch_col=arch_col, target_cols=names(target_cols),
                            latency_col=latency_col, wide=wide, ignore_cols=names(ignore_cols),
                            arch_map=arch_map, unit=unit, where=tuple(where or ()),
                            batch_size=batch_size)
    src = registry().create("source", source, parse_options(source_option or []))
    summary = import_file(file, src, options, store(db))
    for warning in summary["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(json.dumps(summary, indent=2) if as_json else summary_text(summary))


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Output file.")],
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    db: DbOption = "lenna.db",
) -> None:
    """Write one row per stored measurement, with its features, to Parquet or CSV."""
    from lenna_core.data.export import export_measurements

    rows = export_measurements(store(db, create=False), out, fmt)
    typer.echo(f"wrote {rows} rows to {out}", err=True)
