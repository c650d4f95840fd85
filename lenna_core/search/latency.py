"""The latency term of a search: a saved predictor as a differentiable function of features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from lenna_core.errors import LennaError
from lenna_core.learning.predictor import Predictor, load_predictor
from lenna_core.plugins.interfaces import optional
from lenna_core.plugins.registry import Registry


@attrs.frozen
class DifferentiableLatency:
    """A predictor's torch module and its feature order: features (rows × ``feature_names``)
    in, latency in seconds out, differentiable in the features."""

    feature_names: tuple[str, ...]
    module: Any
    log_target: bool

    def __call__(self, features: Any) -> Any:
        import torch

        target = self.module(features)[:, 0]
        return torch.exp(target) if self.log_target else target


def search_predictor(path: Path, registry: Registry, source: str, features: str,
                     backend: str, threads: int | None) -> tuple[Predictor, DifferentiableLatency]:
    """Load the predictor at ``path`` for a search over ``source`` measured on ``backend``
    with ``threads``; a one-line LennaError says why it cannot serve (not differentiable,
    fitted on other features, another source, or another backend or thread setting)."""
    predictor = load_predictor(path, registry)
    manifest = predictor.manifest
    name = manifest["estimator"]["name"]
    fitted = (manifest.get("source") or {}).get("name")
    hint = (f"fit one with 'lenna run --source {source} --features {features} "
            f"--estimator torch-mlp --backend {backend}'")
    if fitted != source:
        raise LennaError(f"predictor {path} was fitted on source {fitted}, not {source}; {hint}")
    used = [entry["name"] for entry in manifest["featurizers"]]
    if used != [features]:
        raise LennaError(f"predictor {path} was fitted on features {','.join(used)}; the search "
                         f"builds {features} alone; {hint}")
    module = optional(predictor.estimator, "module")
    if module is None:
        raise LennaError(f"predictor {path} holds estimator {name}, which is not "
                         f"differentiable (it has no torch module); {hint}")
    target = manifest["target"]
    fitted_threads = target["fingerprint"].get("threads_setting")
    if target["backend"] != backend or fitted_threads != threads:
        raise LennaError(
            f"predictor {path} was fitted on {target['backend']} with threads "
            f"{_threads(fitted_threads)}, but the search measures on {backend} with threads "
            f"{_threads(threads)}; pass --backend {target['backend']} --threads "
            f"{_threads(fitted_threads)} or refit on {backend}")
    network = module()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return predictor, DifferentiableLatency(predictor.feature_names, network,
                                            manifest.get("target_transform") == "log")


def _threads(threads: int | None) -> str:
    return "auto" if threads is None else str(threads)
