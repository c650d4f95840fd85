"""Registers the ``training-workloads`` source."""

from lenna_core.api import hookimpl
from lenna_training.source import TrainingWorkloadsSource


@hookimpl
def lenna_register_sources() -> list[type]:
    return [TrainingWorkloadsSource]
