"""``lenna report``: the model-comparison tables across backends and devices."""

from __future__ import annotations

import time
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
    parse_options,
    parse_threads,
    read_json,
    registry,
    resolve_arch,
    store,
)
from lenna_core.errors import LennaError


@app.command()
def report(
    models: Annotated[str | None, typer.Option(
        help="Comma-separated models: NAME (of --source, the spec {\"model\": NAME}) or "
             "SOURCE:NAME, e.g. resnet18,training-workloads:lenet5.")] = None,
    source: SourceName = "torchvision",
    source_option: SourceOptions = None,
    arch: Annotated[list[str] | None, typer.Option(
        "--arch", help="Also report this architecture of --source: a JSON spec, a JSON file "
                       "or an id stored in --db (repeatable).")] = None,
    onnx: Annotated[list[Path] | None, typer.Option(
        "--onnx", help="Also report this ONNX model file (repeatable).")] = None,
    backends: Annotated[str, typer.Option(
        help="Comma-separated backends to measure on, here (with --from-db: stored targets "
             "of these names).")] = "",
    targets: Annotated[str, typer.Option(
        help="Comma-separated stored targets to add: a name (e.g. an imported device) or an "
             "id prefix (an unknown one is answered with the stored names).")] = "",
    modes: Annotated[str, typer.Option(
        help="Comma-separated modes: inference (prediction time) and training (one "
             "training step).")] = "inference,training",
    batch_size: Annotated[int, bounded(limits.BATCH_SIZE, "Batch size of every workload.")
                          ] = 32,
    baseline: Annotated[str | None, typer.Option(
        help="Target the speed-ups are against (default: the first).")] = None,
    columns: Annotated[Path | None, typer.Option(
        help="CSV of user columns (e.g. loss, accuracy) joined to the models by name.")
    ] = None,
    model_column: Annotated[str, typer.Option(
        help="The --columns CSV's column that holds the model names.")] = "model",
    from_db: Annotated[bool, typer.Option(
        "--from-db", help="Render from stored measurements alone, measuring nothing.")
    ] = False,
    combine: Annotated[list[Path] | None, typer.Option(
        "--combine", help="Render one report of these reports' report.json files (or their "
                          "directories), e.g. made on two machines (repeatable).")] = None,
    title: Annotated[str, typer.Option(help="The report's title.")] = "LENNA benchmark report",
    threads: ThreadsOption = "1",
    protocol: ProtocolOption = "adaptive",
    budget: BudgetOption = 2.0,
    passes: PassesOption = 3,
    timeout: TimeoutOption = 600.0,
    out: Annotated[Path, typer.Option(help="Directory for the report's files.")
                   ] = Path("report"),
    db: DbOption = "lenna.db",
    as_json: JsonFlag = False,
) -> None:
    """Measure models on backends (what the store lacks) and write the comparison report:
    system table, model table, speed-ups and plots as Markdown, HTML, CSV and JSON."""
    from lenna_core.measurement.protocol import MeasurementProtocol
    from lenna_core.paths import writable_directory
    from lenna_core.report.collect import ReportConfig, collect, combine_reports, join_columns
    from lenna_core.report.render import write_report

    started = time.monotonic()
    writable_directory(out)
    if columns is not None and not columns.is_file():
        raise LennaError(f"--columns {columns} is not a file")
    if combine:
        if models or arch or onnx or from_db or backends or targets:
            raise LennaError("--combine renders saved reports; give no models, targets or "
                             "--from-db with it")
        data = combine_reports([_saved_report(path) for path in combine])
        seconds = None
    else:
        plugins = registry()
        config = ReportConfig(
            models=tuple(_models(plugins, source, parse_options(source_option or []),
                                 names(models), arch or [], onnx or [], db)),
            backends=names(backends), targets=names(targets), modes=names(modes),
            batch_size=batch_size, measure=not from_db, threads=parse_threads(threads),
            timeout=timeout, protocol=MeasurementProtocol.parse(
                protocol, budget_seconds=budget, passes=passes))
        if baseline is not None and not from_db and baseline not in (
                config.backends + config.targets):
            raise LennaError(f"--baseline {baseline!r} is none of --backends and --targets")
        data = collect(config, plugins, store(db, create=not from_db),
                       echo=lambda line: typer.echo(line, err=True))
        seconds = time.monotonic() - started
    if columns is not None:
        join_columns(data, columns, model_column)
    written = write_report(data, out, baseline, title, seconds)
    if as_json:
        typer.echo((out / "report.json").read_text())
    else:
        files = ", ".join(str(p) for p in written if p.parent == out)
        typer.echo(f"{_plural(len(data['labels']), 'figure')} of "
                   f"{_plural(len(data['models']), 'model')} on "
                   f"{_plural(len(data['targets']), 'target')}; wrote {files} and "
                   f"{_plural(len(written) - 4, 'plot')}")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _models(plugins, source: str, options: dict, models: tuple[str, ...], archs: list[str],
            onnx: list[Path], db: str) -> list:
    """(name, architecture) of every model given, in order."""
    from lenna_core.plugins.calls import plugin_call

    made: dict[str, object] = {}

    def plugin(name: str):
        if name not in made:
            made[name] = plugins.create("source", name, options if name == source else {})
        return made[name]

    found = []
    for item in models:
        source_name, _, model = item.rpartition(":")
        chosen = plugin(source_name or source)
        with plugin_call(chosen, "from_spec"):
            found.append((model, chosen.from_spec({"model": model})))
    for text in archs:
        architecture = resolve_arch(plugin(source), text, db)
        spec_name = architecture.spec.get("model") if architecture.spec else None
        path = Path(text)
        found.append((spec_name or (path.stem if path.is_file() else architecture.id[:10]),
                      architecture))
    for path in onnx:
        chosen = plugin("onnx-file")
        with plugin_call(chosen, "from_spec"):
            found.append((path.stem, chosen.from_spec({"path": str(path)})))
    return found


def _saved_report(path: Path) -> dict:
    """A report.json written by ``lenna report`` (or the directory holding one)."""
    from lenna_core.report.collect import FORMAT

    file = path / "report.json" if path.is_dir() else path
    if not file.is_file():
        raise LennaError(f"--combine {path}: no report.json there")
    data = read_json(file)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LennaError(f"--combine {path} is not a report of lenna report ({FORMAT})")
    return data

