"""The four plugin kinds as Protocols, and EstimatorBase.

Every plugin class has a lowercase-kebab ``name`` and may declare ``requires`` (import
names that must be installed) and ``extra`` (the ``lenna[...]`` extra that installs them);
an optional classmethod ``unavailable_reason()`` reports other missing prerequisites
(for example, no CUDA device). Frameworks are imported inside methods, never at module level.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from lenna_core.records import Architecture, Workload


@runtime_checkable
class Source(Protocol):
    """Emits architectures as Graph IR. ``__init__`` takes the source's options as keywords.

    Optional methods the core uses when present:

    - ``children(arch, rng) -> Architecture``: for a supernet whose spec carries architecture
      parameters (DARTS-style α), draw one child by binary gates; the architecture's label is
      then the expected latency over children.
    - ``workload_settings(arch) -> dict``: the ``batch_size``, ``mode`` and ``optimizer`` that
      the architecture's spec fixes (for sources whose items are whole training workloads).
    - ``canonical_spec(spec) -> dict``: the spec of the representative of the spec's
      isomorphism class (architectures that compute the same function, such as NAS-Bench-201
      cells that differ only in edges that cannot reach the output); ``lenna import`` keeps
      one row per class and target. Raise LennaError naming a bad field.

    Optional class attributes: ``spec_field``, the spec field that a plain string stands for
    (``"arch"`` for nasbench201), so ``lenna import`` can read an arch string as a spec and
    ``lenna transfer`` can match an architecture across devices whatever their input shape;
    ``default_features``, the source's natural encoding (``"nb201-encoding"``), which
    ``lenna transfer`` uses when no ``--features`` are given.
    """

    name: ClassVar[str]

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw one architecture of the space."""

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """Build the architecture a spec describes; raise LennaError naming a bad field."""


class Runner(Protocol):
    """A prepared workload: ``run`` performs one complete, synchronised step.

    Optional methods the core uses when present:

    - ``timed_run() -> int``: one step timed by the device itself, in ns (CUDA events);
      without it the core times ``run`` with ``time.perf_counter_ns``.
    - ``profile(runs: int) -> dict[str, float]``: run ``runs`` profiled steps and return the
      median time per step in ns of each top-level framework op (``aten::conv2d``, ``Conv``).
    - ``peak_device_memory() -> int | None``: device bytes allocated at peak since prepare.
    """

    def run(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """Compiles Graph IR for one framework and device. ``__init__(threads=None)``.

    Class attributes: ``modes`` (default ``("inference",)``), ``optimizers`` (the optimizer
    names a training step accepts; the first is the default) and ``op_vocabulary`` (framework
    op name -> LENNA op, for per-op profiles; unmapped names count as ``other``).
    """

    name: ClassVar[str]

    def fingerprint(self) -> dict[str, Any]:
        """Framework versions, device and the effective thread settings."""

    def prepare(self, workload: Workload) -> Runner:
        """Build the model with :func:`lenna_core.ir.init_weights` weights and an input."""


@runtime_checkable
class Featurizer(Protocol):
    """Turns a workload into named numbers. Bump ``version`` whenever the output changes."""

    name: ClassVar[str]
    version: ClassVar[str]

    def featurize(self, workload: Workload) -> dict[str, float]: ...


@runtime_checkable
class Estimator(Protocol):
    """A regressor with scikit-learn's contract that saves itself without pickle.

    ``__init__`` stores hyperparameters only; ``fit`` returns self; learned attributes end
    in ``_``. ``save`` writes native-format files into a directory and ``load`` reads them
    back without executing code from them. Subclass :class:`EstimatorBase`.
    """

    name: ClassVar[str]

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...

    def set_params(self, **params: Any) -> Self: ...

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self: ...


TARGET_TRANSFORMS = ("log", "identity")


class EstimatorBase:
    """Gives ``get_params``/``set_params`` from the ``__init__`` signature, ``score`` (R²) and
    scikit-learn's tags, so that ``sklearn.base.clone``, ``cross_val_score`` and grid search
    work on LENNA estimators.

    Class attributes a subclass may set: ``target_transform`` (``"log"``, the default: fit on
    log latency; ``"identity"`` for models that must add latencies up), ``multi_output``
    (``fit`` accepts a 2-D target, one column per output) and ``param_grid`` (the
    hyperparameter values ``--tune`` searches).
    """

    name: ClassVar[str]
    target_transform: ClassVar[str] = "log"
    multi_output: ClassVar[bool] = False
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    _estimator_type: ClassVar[str] = "regressor"

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            p.name for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for estimator {self.name}; valid: {valid}"
                )
            setattr(self, key, value)
        return self

    def score(self, X: np.ndarray, y: np.ndarray) -> float:
        """R² of the predictions for ``X`` against ``y`` (averaged over outputs)."""
        y = np.asarray(y, dtype=np.float64)
        residual = ((y - np.asarray(self.predict(X))) ** 2).sum(axis=0)
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        return float(np.mean(1 - residual / np.where(total > 0, total, 1.0)))

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", regressor_tags=RegressorTags(),
                    target_tags=TargetTags(required=True, multi_output=self.multi_output))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
