"""Registers the ``lightgbm`` estimator with LENNA."""

from lenna_core import hookimpl
from lenna_lightgbm.estimator import LightGBMEstimator


@hookimpl
def lenna_register_estimators() -> list[type]:
    return [LightGBMEstimator]
