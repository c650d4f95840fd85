"""``lenna search``: a latency-aware architecture search swept over λ, each point's derived
architecture trained from scratch, measured through the campaign path and predicted.

Every finished λ point is written to ``search.json`` at once, so an interrupted search keeps
its points and a re-run with the same settings resumes with the next λ.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from lenna_core import limits
from lenna_core.data.store import Store
from lenna_core.errors import LennaError
from lenna_core.measurement.campaign import run_campaign
from lenna_core.measurement.capabilities import workload_for
from lenna_core.measurement.protocol import MeasurementProtocol
from lenna_core.measurement.worker import Worker, WorkerSettings
from lenna_core.paths import writable_directory
from lenna_core.plugins.calls import plugin_call
from lenna_core.plugins.interfaces import optional
from lenna_core.plugins.registry import Registry
from lenna_core.progress import progress_bar
from lenna_core.records import Architecture
from lenna_core.search.data import load_images
from lenna_core.search.latency import search_predictor
from lenna_core.search.pareto import plot_pareto

RESULT = "search.json"
FORMAT = "lenna-search/1"


@attrs.frozen
class SearchConfig:
    """Everything ``lenna search`` takes; each field has the CLI's default."""

    source: str = "darts-cells"
    source_options: Mapping[str, Any] = attrs.field(factory=dict)
    space_options: Mapping[str, Any] = attrs.field(factory=dict)
    data: Path | None = None
    image_size: int | None = None
    limit: int | None = None
    predictor: Path | None = None
    backend: str = "onnxruntime"
    threads: int | None = 1
    lambdas: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0)
    epochs: int = 20
    train_epochs: int = 20
    seed: int = 0
    timeout: float = 600.0
    out: Path = Path("runs/search")
    protocol: MeasurementProtocol = MeasurementProtocol()

    def __attrs_post_init__(self) -> None:
        for bound, value in ((limits.SEED, self.seed), (limits.TIMEOUT, self.timeout),
                             (limits.THREADS, self.threads), (limits.EPOCHS, self.epochs),
                             (limits.TRAIN_EPOCHS, self.train_epochs),
                             (limits.IMAGE_SIZE, self.image_size), (limits.LIMIT, self.limit)):
            bound.check(value)
        if not self.lambdas:
            raise LennaError("give at least one λ with --lambda, e.g. --lambda 0,0.1,0.3,1")
        bad = [lam for lam in self.lambdas if not math.isfinite(lam) or lam < 0]
        if bad:
            raise LennaError(f"λ must be a finite number >= 0, got {bad[0]}")
        if self.predictor is None and any(self.lambdas):
            raise LennaError("λ > 0 needs a latency predictor: give --predictor DIR (a "
                             "torch-mlp bundle from 'lenna run --source darts-cells --features "
                             "darts-encoding --estimator torch-mlp')")


def parse_lambdas(text: str) -> tuple[float, ...]:
    """``0,0.1,0.3,1`` to floats; a LennaError names a value that is not a number."""
    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise LennaError(f"--lambda takes comma-separated numbers, e.g. 0,0.1,0.3,1; got "
                             f"{part.strip()!r}") from None
    return tuple(sorted(set(values)))


def run_search(config: SearchConfig, registry: Registry, store: Store,
               echo: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Run the λ sweep, resuming from ``search.json`` in ``config.out``; return its content.
    ``echo`` gets one line per finished λ point."""
    source = registry.create("source", config.source, config.source_options)
    space_cls = optional(source, "search_space")
    if space_cls is None:
        raise LennaError(f"source {config.source} has no search space; lenna search searches "
                         "darts-cells")
    backend_cls = registry.get_available("backend", config.backend)
    predictor = latency = None
    if config.predictor is not None:
        predictor, latency = search_predictor(config.predictor, registry, config.source,
                                              space_cls.features, config.backend, config.threads)
    data = load_images(config.data, config.image_size, config.seed, config.limit)
    with plugin_call(source, "search_space"):
        space = space_cls(source, data.shape, data.classes, config.seed,
                          **config.space_options)
    writable_directory(config.out)
    settings = _settings(config, data.to_dict(),
                         None if predictor is None else predictor.manifest)
    result = _resume(config.out / RESULT, settings)
    store.open()
    workload_settings = (predictor.workload_settings() if predictor is not None
                         else {"batch_size": 1, "mode": "inference"})
    todo = [lam for lam in config.lambdas if _key(lam) not in result["points"]]
    worker_settings = WorkerSettings(config.backend, threads=config.threads,
                                     timeout=config.timeout, profile_runs=0)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        worker = stack.enter_context(Worker(worker_settings)) if todo else None
        for done, lam in enumerate(todo):
            steps = config.epochs + config.train_epochs
            with progress_bar(steps, f"λ={lam:g} ({done + 1}/{len(todo)})") as advance:
                with plugin_call(space, "search"):
                    parameters = space.search(data, lam, latency, config.epochs, advance)
                with plugin_call(space, "derive"):
                    cells = space.derive(parameters)
                with plugin_call(space, "train"):
                    accuracy = space.train(cells, data, config.train_epochs, advance)
            architectures = []
            for spec in cells:
                with plugin_call(source, "from_spec"):
                    architectures.append(source.from_spec(spec))
            workloads = [workload_for(source, a, backend_cls, **workload_settings)
                         for a in architectures]
            campaign = run_campaign(store, worker, workloads, config.protocol)
            baseline = store.reference_baseline(campaign.target, config.protocol.key)
            point = _point(lam, accuracy, parameters, architectures, campaign.measurements,
                           baseline, [predictor.predict_seconds(w) for w in workloads]
                           if predictor is not None else None)
            point["cells"] = _write_cells(config.out, lam, architectures)
            result["points"][_key(lam)] = point
            result["target_id"] = campaign.target.id
            _save(config.out / RESULT, result)
            left = len(todo) - done - 1
            eta = (time.monotonic() - started) / (done + 1) * left
            echo(_line(point) + (f"; {left} λ left, about {eta / 60:.0f} min" if left else ""))
    plot_pareto(_ordered(result), config.out / "pareto.png",
                f"{config.source} search on {data.name}, measured on {config.backend}")
    return result


def _settings(config: SearchConfig, data: Mapping[str, Any],
              manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a point's result depends on besides λ: a re-run resumes only when they match."""
    predictor = None if manifest is None else hashlib.sha256(
        json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    return {
        "source": config.source, "source_options": dict(config.source_options),
        "space_options": dict(config.space_options), "data": dict(data),
        "predictor": predictor, "backend": config.backend, "threads": config.threads,
        "epochs": config.epochs, "train_epochs": config.train_epochs, "seed": config.seed,
        "protocol": config.protocol.key,
    }


def _resume(path: Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The earlier result in ``path`` when its settings match, or a new one."""
    fresh = {"format": FORMAT, "settings": json.loads(json.dumps(settings)), "points": {}}
    if not path.exists():
        return fresh
    try:
        earlier = json.loads(path.read_text())
        if earlier.get("format") != FORMAT or not isinstance(earlier.get("points"), dict):
            raise ValueError("not a search result")
    except (OSError, ValueError, AttributeError) as exc:
        raise LennaError(f"{path} is not a search result this version can resume ({exc}); "
                         "give another --out or remove it") from None
    if earlier.get("settings") != fresh["settings"]:
        changed = sorted(k for k in fresh["settings"]
                         if earlier.get("settings", {}).get(k) != fresh["settings"][k])
        raise LennaError(f"{path.parent} holds a search with other settings ({', '.join(changed)}"
                         "); give another --out or remove it")
    return earlier


def _key(lam: float) -> str:
    return f"{lam:g}"


def _point(lam: float, accuracy: float, parameters: Mapping[str, Any],
           architectures: Sequence[Architecture], measurements: Sequence[Any],
           baseline: float | None, predicted: Sequence[float] | None) -> dict[str, Any]:
    """One λ point: accuracy, the latencies summed over cells (ms) and each cell's."""
    cells_ms = [None if m.status == "failed" or (ns := m.latency_ns(baseline)) is None
                else ns / 1e6 for m in measurements]
    failed = [m.error for m in measurements if m.status == "failed"]
    return {
        "lambda": lam,
        "accuracy": accuracy,
        "measured_ms": None if None in cells_ms else sum(cells_ms),
        "predicted_ms": None if predicted is None else 1e3 * sum(predicted),
        "cell_measured_ms": cells_ms,
        "cell_predicted_ms": None if predicted is None else [1e3 * p for p in predicted],
        "contended": sum(m.contended for m in measurements),
        "errors": failed,
        "alpha": dict(parameters),
        "arch_ids": [a.id for a in architectures],
    }


def _write_cells(out: Path, lam: float, architectures: Sequence[Architecture]) -> list[str]:
    """Each derived cell as an architecture JSON file (``lenna predict --arch``)."""
    directory = out / f"lambda-{_key(lam)}"
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for index, arch in enumerate(architectures):
        path = directory / f"cell{index}-{arch.spec['parent']['block']}.json"
        path.write_text(json.dumps(arch.to_dict(), indent=2))
        names.append(str(path.relative_to(out)))
    return names


def _ordered(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    return sorted(result["points"].values(), key=lambda p: p["lambda"])


def _line(point: Mapping[str, Any]) -> str:
    measured = point["measured_ms"]
    predicted = point["predicted_ms"]
    return (f"λ={point['lambda']:g}: test accuracy {point['accuracy']:.1%}, measured "
            + ("failed" if measured is None else f"{measured:.3f} ms")
            + ("" if predicted is None else f", predicted {predicted:.3f} ms"))


def _save(path: Path, result: Mapping[str, Any]) -> None:
    data = {**result, "points": {_key(p["lambda"]): p for p in _ordered(result)}}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
