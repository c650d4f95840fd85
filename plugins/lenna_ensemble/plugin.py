"""Registers the ``ensemble`` estimator."""

from lenna_core.api import hookimpl
from lenna_ensemble.estimator import EnsembleEstimator


@hookimpl
def lenna_register_estimators() -> list[type]:
    return [EnsembleEstimator]
