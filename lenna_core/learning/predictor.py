"""Predictor bundles: a fitted estimator in its native format plus everything needed to use it.

A bundle is a directory with ``predictor.json`` (estimator name and parameters, featurizers
and their versions, feature names, workload settings, target fingerprint, training-data
hash, metrics, the size and sha256 of every file, and an optional signature; see
:mod:`lenna_core.learning.bundle`) and the estimator's own files, nothing else. Nothing is
pickled; loading checks the manifest, the signature and every file before any file is read
by a library.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from lenna_core.errors import PredictorError, first_line
from lenna_core.learning.bundle import (
    FORMAT,
    MANIFEST,
    check_contents,
    check_origin,
    copy_verified,
    describe,
    listed_files,
    read_manifest,
    seal,
    signing_key,
)
from lenna_core.learning.features import named_features
from lenna_core.learning.validation import predict_target
from lenna_core.plugins.calls import plugin_call
from lenna_core.plugins.interfaces import optional
from lenna_core.plugins.registry import Registry
from lenna_core.records import FitReport, Target, Workload


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
            with plugin_call(featurizer, "featurize"):
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
    With ``LENNA_PREDICTOR_KEY`` set, the manifest is signed with it.

    The bundle is written beside ``directory``, flushed to disk and moved into place when
    complete: any failure (a full disk included) removes what was written and leaves an
    earlier bundle there intact.
    """
    key = signing_key()
    staging = directory.with_name(f".{directory.name}.new")
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        with plugin_call(estimator, "save"):
            estimator.save(staging)
        with plugin_call(estimator, "get_params"):
            params = estimator.get_params(deep=False)
        manifest = {
            "format": FORMAT,
            "estimator": {"name": estimator.name, "params": params},
            "featurizers": [{"name": f.name, "version": f.version} for f in featurizers],
            "feature_names": list(feature_names),
            "target_transform": optional(estimator, "target_transform"),
            "unit": "s",
            **info,
            "files": describe(staging),
        }
        try:
            seal(manifest, key)
        except (TypeError, ValueError) as exc:
            raise PredictorError(f"cannot save predictor: a value is not JSON ({exc}); "
                                 f"estimator {estimator.name} must keep JSON-able "
                                 "hyperparameters") from None
        _write_synced(staging / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        _replace(staging, directory)
    except OSError as exc:
        raise PredictorError(f"cannot save the predictor to {directory}: "
                             f"{exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_synced(path: Path, text: str) -> None:
    with path.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _replace(staging: Path, directory: Path) -> None:
    """Move ``staging`` to ``directory``; the bundle there before is kept until the new one
    is in place, and put back if the move fails."""
    old = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists() or directory.is_symlink():
        directory.rename(old)
    try:
        staging.rename(directory)
    except OSError:
        if old.exists():
            old.rename(directory)
        raise
    shutil.rmtree(old, ignore_errors=True)
    descriptor = os.open(directory.parent, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_predictor(directory: Path, registry: Registry) -> Predictor:
    """Verify and load a bundle (its directory, its manifest, or the ``--out`` directory of
    ``lenna run`` that holds it); PredictorError says what is wrong and how to fix it.

    The manifest's shape, checksum and signature are checked, then that the bundle holds
    exactly the files it lists; the estimator loads a private copy of their verified bytes.
    """
    if (directory / "predictor" / MANIFEST).is_file():
        directory = directory / "predictor"
    path = directory / MANIFEST if directory.is_dir() else directory
    if not path.is_file():
        raise PredictorError(f"no predictor at {directory}: {MANIFEST} not found "
                             "(give the --out directory of 'lenna run')")
    bundle = path.parent
    manifest = read_manifest(path)
    check_origin(manifest, path)
    files = listed_files(manifest)
    check_contents(bundle, files)
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
    with tempfile.TemporaryDirectory(prefix="lenna-predictor-") as private:
        copy_verified(bundle, files, Path(private))
        try:
            estimator = estimator_cls.load(Path(private), spec["params"])
        except PredictorError as exc:
            raise PredictorError(str(exc).replace(private, str(bundle))) from None
        except Exception as exc:  # noqa: BLE001 - a library failing to parse its own file
            raise PredictorError(f"cannot load estimator {spec['name']} from {bundle}: "
                                 f"{first_line(exc).replace(private, str(bundle))}") from None
    return Predictor(estimator, tuple(featurizers), tuple(manifest["feature_names"]), manifest)
