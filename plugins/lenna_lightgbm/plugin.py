"""Registers the ``lightgbm`` and ``additive-lightgbm`` estimators with LENNA."""

from lenna_core.api import hookimpl
from lenna_lightgbm.estimator import AdditiveLightGBMEstimator, LightGBMEstimator


@hookimpl
def lenna_register_estimators() -> list[type]:
    return [LightGBMEstimator, AdditiveLightGBMEstimator]
