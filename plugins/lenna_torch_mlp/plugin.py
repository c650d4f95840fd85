"""Registers the ``torch-mlp`` estimator."""

from lenna_core.api import hookimpl
from lenna_torch_mlp.estimator import TorchMLPEstimator


@hookimpl
def lenna_register_estimators() -> list[type]:
    return [TorchMLPEstimator]
