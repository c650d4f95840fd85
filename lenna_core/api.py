"""The public API of LENNA for plugin authors: everything a plugin imports from the core.

Plugins import from ``lenna_core.api`` only; the names below stay stable across releases,
while the modules behind them may move. Importing it loads no ML framework (numpy only).

- ``hookimpl`` marks the hook functions that return plugin classes.
- The records (``Architecture``, ``Workload``, ...) and the Graph IR (``Graph``,
  ``GraphBuilder``, ``OPS``, ``init_weights``, ...) are what sources, backends and featurizers
  exchange.
- The Protocols (``Source``, ``Backend``, ``Runner``, ``Featurizer``, ``Estimator``) describe
  each kind; the bases (``SourceBase``, ``BackendBase``, ``RunnerBase``, ``EstimatorBase``,
  ``PluginBase``) carry the defaults of the optional members, which ``optional`` reads;
  ``SearchSpace`` describes a source's optional ``search_space`` for ``lenna search``.
- The errors: raise ``LennaError`` (or a subclass) with one line saying what is wrong;
  ``not_fitted_error()`` is the class an unfitted estimator raises.
- Checks a plugin calls: ``check_spec_fields`` (sources), ``check_workload`` and
  ``has_cuda_device`` (backends); ``check_estimator``, ``check_sklearn_estimator``,
  ``check_backend``, ``check_featurizer`` and ``make_registry`` for a plugin's own tests;
  ``estimator_class`` finds another installed estimator by name.
"""

from __future__ import annotations

from functools import cache

from lenna_core.errors import (
    GraphError,
    LennaError,
    PluginError,
    PredictorError,
    StoreError,
    first_line,
    not_fitted_error,
)
from lenna_core.ir import OPS, Graph, GraphBuilder, Node, Shape, init_weights
from lenna_core.ir.conv_layers import conv_layers, single_conv_graph
from lenna_core.ir.kernels import Kernel, kernel_features, split_kernels
from lenna_core.ir.ops import OpError
from lenna_core.ir.weights import Weights, parameter_specs
from lenna_core.measurement.capabilities import check_workload
from lenna_core.measurement.host import has_cuda_device
from lenna_core.plugins.hookspecs import hookimpl
from lenna_core.plugins.interfaces import (
    TARGET_TRANSFORMS,
    Backend,
    BackendBase,
    Estimator,
    EstimatorBase,
    Featurizer,
    PluginBase,
    Runner,
    RunnerBase,
    SearchSpace,
    Source,
    SourceBase,
    optional,
)
from lenna_core.plugins.registry import Registry, make_registry
from lenna_core.plugins.specs import check_spec_fields
from lenna_core.plugins.testing import (
    check_backend,
    check_estimator,
    check_featurizer,
    check_sklearn_estimator,
)
from lenna_core.records import Architecture, FitReport, Measurement, Target, Workload

__all__ = [
    "OPS",
    "TARGET_TRANSFORMS",
    "Architecture",
    "Backend",
    "BackendBase",
    "Estimator",
    "EstimatorBase",
    "Featurizer",
    "FitReport",
    "Graph",
    "GraphBuilder",
    "GraphError",
    "Kernel",
    "LennaError",
    "Measurement",
    "Node",
    "OpError",
    "PluginBase",
    "PluginError",
    "PredictorError",
    "Runner",
    "RunnerBase",
    "SearchSpace",
    "Shape",
    "Source",
    "SourceBase",
    "StoreError",
    "Target",
    "Weights",
    "Workload",
    "check_backend",
    "check_estimator",
    "check_featurizer",
    "check_sklearn_estimator",
    "check_spec_fields",
    "check_workload",
    "conv_layers",
    "estimator_class",
    "first_line",
    "has_cuda_device",
    "hookimpl",
    "init_weights",
    "kernel_features",
    "make_registry",
    "not_fitted_error",
    "optional",
    "parameter_specs",
    "single_conv_graph",
    "split_kernels",
]


@cache
def _installed() -> Registry:
    """The registry of the installed plugins, loaded once per process."""
    return make_registry()


def estimator_class(name: str) -> type:
    """The installed estimator class ``name`` (plugins are loaded once per process);
    PluginError when it is unknown or unavailable here."""
    return _installed().get_available("estimator", name)
