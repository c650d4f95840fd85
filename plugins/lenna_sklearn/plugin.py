"""Registers the scikit-learn estimators with LENNA."""

from lenna_core.api import hookimpl
from lenna_sklearn.estimators import ESTIMATORS


@hookimpl
def lenna_register_estimators() -> list[type]:
    return list(ESTIMATORS)
