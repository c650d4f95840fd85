"""Registers the ``kernel-additive`` estimator."""

from lenna_core.api import hookimpl
from lenna_kernel_additive.estimator import KernelAdditiveEstimator


@hookimpl
def lenna_register_estimators() -> list[type]:
    return [KernelAdditiveEstimator]
