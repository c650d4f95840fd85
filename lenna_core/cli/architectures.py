"""``lenna sample``, ``features``, ``layers`` and ``kernels``: one architecture, looked at
closely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lenna_core import limits
from lenna_core.cli.app import app
from lenna_core.cli.options import (
    ArchOption,
    DbOption,
    JsonFlag,
    ModelOption,
    SeedOption,
    SourceName,
    SourceOptions,
    bounded,
    names,
    parse_options,
    parse_threads,
    registry,
    resolve_arch,
    store,
)
from lenna_core.errors import LennaError


@app.command()
def sample(
    source: SourceName = "resnet-family",
    source_option: SourceOptions = None,
    seed: Annotated[int, bounded(limits.SEED, "Sampling seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of stdout.")
                   ] = None,
) -> None:
    """Print one sampled architecture (spec and Graph IR) as JSON, usable with predict --arch."""
    import numpy as np

    from lenna_core.plugins.calls import plugin_call

    plugin = registry().create("source", source, parse_options(source_option or []))
    with plugin_call(plugin, "sample"):
        arch = plugin.sample(np.random.default_rng(seed))
    text = json.dumps(arch.to_dict(), indent=2)
    if out is None:
        typer.echo(text)
    else:
        try:
            out.write_text(text)
        except OSError as exc:
            raise LennaError(f"cannot write {out}: {exc.strerror or exc}") from None


def _architecture(plugins, source_name: str, options: list[str] | None, arch: str | None,
                  seed: int | None, model: str | None, db: str):
    """Resolve --arch (JSON spec, JSON file or stored id), --seed or --model to one arch."""
    import numpy as np

    from lenna_core.plugins.calls import plugin_call

    if sum(x is not None for x in (arch, seed, model)) != 1:
        raise LennaError("give exactly one of --arch ID_OR_SPEC, --seed K or --model NAME")
    source = plugins.create("source", source_name, parse_options(options or []))
    if seed is not None:
        with plugin_call(source, "sample"):
            return source, source.sample(np.random.default_rng(seed))
    if model is not None:
        with plugin_call(source, "from_spec"):
            return source, source.from_spec({"model": model})
    return source, resolve_arch(source, arch, db)


@app.command()
def features(
    source: SourceName = "resnet-family",
    source_option: SourceOptions = None,
    arch: ArchOption = None,
    seed: SeedOption = None,
    model: ModelOption = None,
    features: Annotated[str, typer.Option(help="Comma-separated featurizer plugins.")
                        ] = "layer-stats",
    batch_size: Annotated[int, bounded(limits.BATCH_SIZE, "Batch size of the workload.")
                          ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    db: DbOption = "lenna.db",
) -> None:
    """Print one architecture's features (names unprefixed for a single featurizer)."""
    from lenna_core.learning.features import named_features
    from lenna_core.plugins.calls import plugin_call
    from lenna_core.plugins.interfaces import source_workload

    featurizers = names(features)
    if not featurizers:
        raise LennaError("give at least one featurizer with --features")
    plugins = registry()
    src, architecture = _architecture(plugins, source, source_option, arch, seed, model, db)
    workload = source_workload(src, architecture, batch_size=batch_size)

    values: dict[str, float] = {}
    for name in featurizers:
        featurizer = plugins.create("featurizer", name)
        with plugin_call(featurizer, "featurize"):
            computed = featurizer.featurize(workload)
            values.update(named_features(name, computed) if len(featurizers) > 1
                          else {key: float(value) for key, value in computed.items()})
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
    threads: Annotated[str, typer.Option(
        help="Intra-op threads: a count, or auto for the backend's default.")] = "auto",
    batch_size: Annotated[int, bounded(
        limits.BATCH_SIZE, "Batch size (a predictor's own batch size wins).")] = 1,
    as_json: JsonFlag = False,
    db: DbOption = "lenna.db",
) -> None:
    """List an architecture's conv layers: name, kernel, filters, input channels, H, W, stride;
    with --measure or --predictor, each layer's latency, prediction and error."""
    from lenna_core.ir.conv_layers import conv_layers
    from lenna_core.measurement.protocol import MeasurementProtocol

    rule, thread_count = MeasurementProtocol.parse(protocol), parse_threads(threads)
    plugins = registry()
    _, architecture = _architecture(plugins, source, source_option, arch, seed, model, db)
    if measure or predictor is not None:
        from lenna_core.measurement.parts import layer_report

        plugins.get_available("backend", backend)
        report = layer_report(architecture, plugins, backend=backend, store=store(db),
                              protocol=rule, threads=thread_count, batch_size=batch_size,
                              predictor=predictor)
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
    threads: Annotated[str, typer.Option(
        help="Intra-op threads: a count, or auto for the backend's default.")] = "auto",
    batch_size: Annotated[int, bounded(limits.BATCH_SIZE, "Batch size.")] = 1,
    as_json: JsonFlag = False,
    db: DbOption = "lenna.db",
) -> None:
    """Split an architecture into the kernels a backend runs; with --measure, compare the sum
    of the kernels' latencies with the whole model's."""
    from lenna_core.measurement.parts import kernel_report
    from lenna_core.measurement.protocol import MeasurementProtocol

    MeasurementProtocol.parse(protocol)
    thread_count = parse_threads(threads)
    plugins = registry()
    _, architecture = _architecture(plugins, source, source_option, arch, seed, model, db)
    plugins.get_available("backend", backend)
    report = kernel_report(architecture, backend, measure=measure, protocol=protocol,
                           threads=thread_count, batch_size=batch_size)
    if as_json:
        typer.echo(json.dumps(report))
        return
    for row in report["kernels"]:
        latency = f"{row['latency_ms']:9.4f} ms" if "latency_ms" in row else ""
        typer.echo(f"{row['kind']:32s} {row['first_node']:28s} {latency}")
    if measure:
        typer.echo(f"sum of kernels {report['sum_ms']:.4f} ms, whole model "
                   f"{report['end_to_end_ms']:.4f} ms, ratio {report['sum_over_end_to_end']:.3f}")
