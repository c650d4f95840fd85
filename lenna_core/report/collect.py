"""What a report holds, gathered from the store: its models, its targets, and per model,
target and mode the label that fills a cell of its tables.

A report's data is one JSON-able dict (format :data:`FORMAT`): ``models`` (name, source,
architecture id, parameters, MACs, input shape, user columns), ``targets`` (key, backend,
library, device, machine and the system facts of the fingerprint) and ``labels`` (one per
model, target and mode that has a stored measurement). Every table and plot is computed from
it, so reports from several stores combine by merging these lists (:func:`combine_reports`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from lenna_core.data.store import Store, measurement_from_row
from lenna_core.errors import LennaError
from lenna_core.measurement.campaign import run_campaign
from lenna_core.measurement.capabilities import check_mode
from lenna_core.measurement.protocol import MeasurementProtocol, median_ci
from lenna_core.measurement.worker import Worker, WorkerSettings
from lenna_core.plugins.calls import plugin_call
from lenna_core.plugins.interfaces import optional
from lenna_core.plugins.registry import Registry
from lenna_core.records import MODES, Architecture, Measurement, Target, Workload

FORMAT = "lenna-report/1"
FRAMEWORKS = ("onnxruntime", "onnx", "torch", "tensorflow", "keras")
"""Fingerprint keys that are framework versions, shown in the system table."""
MIN_CI_SAMPLES = 6
"""Fewer samples than this give no confidence interval of the median."""


@attrs.frozen
class ReportConfig:
    """What ``lenna report`` takes: named architectures, where to measure or look them up,
    and the workload settings shared by every cell."""

    models: tuple[tuple[str, Architecture], ...]
    backends: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    modes: tuple[str, ...] = MODES
    batch_size: int = 32
    measure: bool = True
    threads: int | None = 1
    timeout: float = 600.0
    protocol: MeasurementProtocol = MeasurementProtocol()

    def __attrs_post_init__(self) -> None:
        if not self.models:
            raise LennaError("give the models to report with --models or --arch")
        names = [name for name, _ in self.models]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise LennaError(f"model {twice[0]} is named twice; give each model once")
        unknown = [m for m in self.modes if m not in MODES]
        if unknown or not self.modes:
            raise LennaError(f"--modes must be a comma list of {', '.join(MODES)}, "
                             f"got {','.join(self.modes) or 'nothing'}")
        if not self.backends and not self.targets and self.measure:
            raise LennaError("give --backends to measure on (or --from-db to report what "
                             "the store holds)")


def collect(config: ReportConfig, registry: Registry, store: Store,
            echo: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Measure what the store lacks (unless ``config.measure`` is off), then read every
    label of the report's models from ``store``; returns the report's data."""
    backend_classes = ({name: registry.get_available("backend", name)
                        for name in config.backends} if config.measure else {})
    features = _model_facts(config, registry)
    stored = _stored_targets(config, store)
    measured: list[Target] = []
    if backend_classes:
        store.open()
    for step, (name, cls) in enumerate(backend_classes.items(), 1):
        workloads = _workloads(config, cls)
        if not workloads:
            echo(f"{name}: supports none of the modes {', '.join(config.modes)}; skipped")
            continue
        echo(f"measuring {len(workloads)} workloads on {name} ({step}/{len(backend_classes)})")
        settings = WorkerSettings(name, threads=config.threads, timeout=config.timeout,
                                  profile_runs=0)
        with Worker(settings) as worker:
            measured.append(run_campaign(store, worker, workloads, config.protocol).target)
    targets = measured + [t for t in stored if t not in measured]
    labels = _labels(config, store, targets)
    described = [describe_target(t) for t in targets]
    keys = unique_keys(described)
    return {
        "format": FORMAT,
        "batch_size": config.batch_size,
        "modes": list(config.modes),
        "protocol": config.protocol.key if config.measure else None,
        "models": [{"name": name, "source": arch.source, "arch_id": arch.id,
                    **features[name], "columns": {}} for name, arch in config.models],
        "targets": [{"key": keys[t["id"]], **t} for t in described],
        "labels": [{**label, "target": keys[label.pop("target_id")]} for label in labels],
    }


def _workloads(config: ReportConfig, backend_cls: type) -> list[Workload]:
    """The report's workloads a backend can run: every model in each of its modes."""
    modes = [m for m in config.modes if m in optional(backend_cls, "modes")]
    return [Workload(arch, batch_size=config.batch_size, mode=mode,
                     optimizer=check_mode(backend_cls, mode, None))
            for _, arch in config.models for mode in modes]


def _stored_targets(config: ReportConfig, store: Store) -> list[Target]:
    """The stored targets ``--targets`` names (a name or an id prefix; with ``--from-db`` the
    backends' names too, and every stored target when neither is given)."""
    wanted = list(config.targets) + ([] if config.measure else list(config.backends))
    if not wanted and config.measure:
        return []
    if "://" not in store.db and not Path(store.db).exists():
        raise LennaError(f"database {store.db} does not exist; give the --db that holds the "
                         "targets, or measure with --backends")
    stored = store.targets()
    if not wanted:
        return stored
    chosen: list[Target] = []
    for text in wanted:
        found = [t for t in stored if t.name == text or t.id.startswith(text)]
        if not found:
            names = sorted({t.name for t in stored})
            raise LennaError(f"no target {text!r} in {store.db}; stored targets: "
                             f"{', '.join(names) or 'none'}")
        chosen += [t for t in found if t not in chosen]
    return chosen


def _labels(config: ReportConfig, store: Store, targets: list[Target]) -> list[dict[str, Any]]:
    """Per target, model and mode the latest stored label (usable ones before failed ones)
    at the report's batch size."""
    by_arch = {arch.id: name for name, arch in config.models}
    best: dict[tuple[str, str, str], tuple[tuple[int, int], dict[str, Any]]] = {}
    for row in store.measurement_rows(target_ids=[t.id for t in targets]):
        name = by_arch.get(row["arch_id"])
        if (name is None or row["batch_size"] != config.batch_size
                or row["mode"] not in config.modes):
            continue
        measurement = measurement_from_row(row)
        rank = (measurement.status != "failed", row["measurement_id"])
        key = (row["target_id"], name, row["mode"])
        if key not in best or rank > best[key][0]:
            best[key] = (rank, _label(name, row, measurement, config.protocol.max_wait))
    order = {t.id: i for i, t in enumerate(targets)}
    models = [name for name, _ in config.models]
    return [label for _, (_, label) in sorted(
        best.items(), key=lambda kv: (models.index(kv[0][1]), order[kv[0][0]],
                                      MODES.index(kv[0][2])))]


def _label(name: str, row: Mapping[str, Any], m: Measurement, max_wait: float
           ) -> dict[str, Any]:
    """One cell's figures in milliseconds and megabytes."""
    latency = m.latency_ns()
    samples = m.label_samples_ns(max_wait)
    low = high = None
    if len(samples) >= MIN_CI_SAMPLES:
        low, high = (v / 1e6 for v in median_ci(samples))
    return {
        "model": name, "target_id": row["target_id"], "mode": row["mode"],
        "status": m.status, "latency_ms": None if latency is None else latency / 1e6,
        "low_ms": low, "high_ms": high, "runs": m.runs, "clean_runs": m.clean_runs,
        "peak_host_mb": _mb(m.peak_memory_bytes), "device_mb": _mb(m.device_memory_bytes),
        "error": m.error,
    }


def _mb(value: int | None) -> float | None:
    return None if value is None else value / 2**20


def _model_facts(config: ReportConfig, registry: Registry) -> dict[str, dict[str, Any]]:
    """Parameters and MACs (one sample) from the layer-stats featurizer, and the input."""
    counter = registry.create("featurizer", "layer-stats")
    facts = {}
    for name, arch in config.models:
        with plugin_call(counter, "featurize"):
            values = counter.featurize(Workload(arch))
        shapes = [arch.graph.shapes[n.name] for n in arch.graph.inputs]
        facts[name] = {"params": int(values["params"]), "macs": int(values["macs"]),
                       "input": ", ".join("×".join(map(str, s)) for s in shapes)}
    return facts


def describe_target(target: Target) -> dict[str, Any]:
    """A target's backend, library, device, machine and system facts from its fingerprint."""
    fp = target.fingerprint
    gpus = fp.get("gpus") or []
    device_name = str(fp.get("device", "")) + str(fp.get("execution_provider", ""))
    on_gpu = any(s in (target.name + device_name).lower() for s in ("cuda", "gpu"))
    library = target.name.removesuffix("-cpu").removesuffix("-cuda")
    machine = (f"{fp['cpu']} ×{fp.get('cores', '?')}" if fp.get("cpu") else target.name)
    return {
        "id": target.id, "backend": target.name, "library": library,
        "device": "gpu" if on_gpu else "cpu", "machine": machine,
        "system": {
            "cpu": fp.get("cpu"), "cores": fp.get("cores"), "memory_gib": fp.get("memory_gib"),
            "gpu": ", ".join(_gpu_text(g) for g in gpus) or None, "os": fp.get("os"),
            "python": fp.get("python"),
            "frameworks": {k: fp[k] for k in FRAMEWORKS if k in fp},
            "threads": fp.get("threads_setting", fp.get("intra_op_threads")),
        },
    }


def _gpu_text(gpu: Any) -> str:
    if isinstance(gpu, Mapping):
        memory = gpu.get("memory_gib") or gpu.get("memory_mib")
        unit = "GiB" if gpu.get("memory_gib") else "MiB"
        return f"{gpu.get('name', 'GPU')}" + (f" ({memory} {unit})" if memory else "")
    return str(gpu)


def unique_keys(targets: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A short unique name per described target (by id): its backend, with its machine when
    two machines share the backend, and an id prefix when even that repeats."""
    keys = {}
    for t in targets:
        same = [u for u in targets if u["backend"] == t["backend"]]
        key = t["backend"]
        if len(same) > 1:
            key = f"{t['backend']} @ {t['machine']}"
            if sum(u["machine"] == t["machine"] for u in same) > 1:
                key = f"{key} [{t['id'][:6]}]"
        keys[t["id"]] = key
    return keys


def join_columns(data: dict[str, Any], path: Path, column: str) -> None:
    """Add the CSV's other columns to the models whose name is in its ``column``."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise LennaError(f"cannot read --columns {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LennaError(f"--columns {path} is not a UTF-8 CSV file: {exc}") from None
    header = list(rows[0]) if rows else []
    if column not in header:
        raise LennaError(f"--columns {path} has no column {column!r} (its columns: "
                         f"{', '.join(header) or 'none'}); name it with --model-column")
    by_name = {row[column]: row for row in rows}
    for model in data["models"]:
        row = by_name.get(model["name"], {})
        model["columns"] = {k: _number_or_text(v) for k, v in row.items()
                            if k != column and k is not None}


def _number_or_text(text: str | None) -> float | str | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def combine_reports(reports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One report of several: models merged by name, targets by id, labels kept; the
    batch size and modes must agree."""
    first = reports[0]
    for other in reports[1:]:
        if other["batch_size"] != first["batch_size"]:
            raise LennaError(f"reports at batch sizes {first['batch_size']} and "
                             f"{other['batch_size']} cannot share a table")
    models: dict[str, dict[str, Any]] = {}
    targets: dict[str, dict[str, Any]] = {}
    labels = []
    for report in reports:
        old_keys = {t["key"]: t["id"] for t in report["targets"]}
        for model in report["models"]:
            kept = models.setdefault(model["name"], dict(model))
            kept["columns"] = {**model.get("columns", {}), **kept.get("columns", {})}
        for target in report["targets"]:
            targets.setdefault(target["id"], target)
        labels += [{**label, "target": old_keys[label["target"]]}
                   for label in report["labels"]]
    keys = unique_keys(list(targets.values()))
    return {
        "format": FORMAT, "batch_size": first["batch_size"],
        "modes": [m for m in MODES if any(m in r["modes"] for r in reports)],
        "protocol": first.get("protocol"),
        "models": list(models.values()),
        "targets": [{**t, "key": keys[t["id"]]} for t in targets.values()],
        "labels": [{**label, "target": keys[label["target"]]} for label in labels],
    }
