"""Predictor bundles: a fitted estimator in its native format plus everything needed to use it.

A bundle is a directory with ``predictor.json`` (estimator name and parameters, featurizers
and their versions, feature names, workload settings, target fingerprint, training-data
hash, metrics and the sha256 of every file) and the estimator's own files. Nothing is
pickled; loading checks every checksum before any file is read by a library.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from lenna_core.errors import PredictorError
from lenna_core.learning.features import named_features
from lenna_core.learning.validation import predict_target
from lenna_core.plugins.interfaces import optional
from lenna_core.plugins.registry import Registry
from lenna_core.records import FitReport, Target, Workload

FORMAT = "lenna-predictor/1"
MANIFEST = "predictor.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_checksum(manifest: Mapping[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def training_data_hash(X: np.ndarray, latency: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(latency, dtype=np.float64).tobytes())
    return digest.hexdigest()


@attrs.frozen
class Predictor:
    """A loaded bundle: predicts latency in seconds for workloads."""

    estimator: Any
    featurizers: tuple[Any, ...]
    feature_names: tuple[str, ...]
    manifest: Mapping[str, Any]

    def workload_settings(self) -> dict[str, Any]:
        return dict(self.manifest["workload"])

    def features(self, workload: Workload) -> np.ndarray:
        values: dict[str, float] = {}
        for featurizer in self.featurizers:
            values.update(named_features(featurizer.name, featurizer.featurize(workload)))
        missing = [name for name in self.feature_names if name not in values]
        if missing:
            raise PredictorError(f"the featurizers no longer produce {', '.join(missing[:5])}; "
                                 "refit the predictor")
        return np.array([[values[name] for name in self.feature_names]], dtype=np.float64)

    def predict_seconds(self, workload: Workload) -> float:
        return float(predict_target(self.estimator, self.features(workload))[0])


def bundle_info(workload: Workload, source: str, source_options: Mapping[str, Any],
                target: Target, X: np.ndarray, latency: np.ndarray,
                report: FitReport) -> dict[str, Any]:
    """What a bundle records besides the estimator: workload settings, source, target
    fingerprint, training-data hash and the evaluation's mean metrics."""
    return {
        "workload": workload.settings(),
        "source": {"name": source, "options": dict(source_options)},
        "target": {"backend": target.name, "id": target.id,
                   "fingerprint": dict(target.fingerprint)},
        "training_data": {"rows": len(latency), "sha256": training_data_hash(X, latency)},
        "metrics": {k: mean for k, (mean, _) in report.metrics.items()},
    }


def save_predictor(directory: Path, estimator: Any, featurizers: Sequence[Any],
                   feature_names: Sequence[str], info: Mapping[str, Any]) -> None:
    """Write the bundle; ``info`` adds workload, source, target, training data and metrics.

    The bundle is written beside ``directory`` and moved into place when complete, so a
    failure leaves any earlier bundle there intact and no stale files from it survive.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.with_name(f".{directory.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    estimator.save(staging)
    files = {
        p.relative_to(staging).as_posix(): _sha256(p) for p in sorted(staging.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "format": FORMAT,
        "estimator": {"name": estimator.name, "params": estimator.get_params(deep=False)},
        "featurizers": [{"name": f.name, "version": f.version} for f in featurizers],
        "feature_names": list(feature_names),
        "target_transform": optional(estimator, "target_transform"),
        "unit": "s",
        **info,
        "files": files,
    }
    try:
        manifest["checksum"] = _manifest_checksum(manifest)
    except TypeError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise PredictorError(f"cannot save predictor: a value is not JSON ({exc}); estimator "
                             f"{estimator.name} must keep JSON-able hyperparameters") from None
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    old = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    staging.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def load_predictor(directory: Path, registry: Registry) -> Predictor:
    """Verify and load a bundle (its directory, its manifest, or the ``--out`` directory of
    ``lenna run`` that holds it); PredictorError says what is wrong and how to fix it."""
    if (directory / "predictor" / MANIFEST).is_file():
        directory = directory / "predictor"
    path = directory / MANIFEST if directory.is_dir() else directory
    if not path.is_file():
        raise PredictorError(f"no predictor at {directory}: {MANIFEST} not found "
                             "(give the --out directory of 'lenna run')")
    bundle = path.parent
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise PredictorError(f"{path} is not a valid predictor manifest: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise PredictorError(f"{path} has format {manifest.get('format')!r}; expected {FORMAT}")
    if manifest.get("checksum") != _manifest_checksum(manifest):
        raise PredictorError(f"{path} has been modified since it was saved (checksum mismatch); "
                             "refit the predictor")
    files = manifest.get("files", {})
    for name, digest in files.items():
        file = bundle / name
        if Path(name).is_absolute() or ".." in Path(name).parts or not file.is_file():
            raise PredictorError(f"predictor file {name} is missing from {bundle}")
        if _sha256(file) != digest:
            raise PredictorError(f"predictor file {file} has been modified since it was saved "
                                 "(checksum mismatch); refit the predictor")
    featurizers = []
    for entry in manifest["featurizers"]:
        cls = registry.get_available("featurizer", entry["name"])
        if str(cls.version) != str(entry["version"]):
            raise PredictorError(
                f"predictor was fitted with featurizer {entry['name']} version {entry['version']}"
                f", but version {cls.version} is installed; refit the predictor"
            )
        featurizers.append(cls())
    spec = manifest["estimator"]
    estimator_cls = registry.get_available("estimator", spec["name"])
    try:
        estimator = estimator_cls.load(bundle, spec["params"])
    except PredictorError:
        raise
    except Exception as exc:  # noqa: BLE001 - a library failing to parse its own file
        raise PredictorError(f"cannot load estimator {spec['name']} from {bundle}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from None
    return Predictor(estimator, tuple(featurizers), tuple(manifest["feature_names"]), manifest)
