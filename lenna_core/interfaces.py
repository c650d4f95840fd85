"""The four plugin kinds as Protocols: what a class returned by a hook must provide.

Every plugin class has a lowercase-kebab ``name`` and may declare ``requires`` (import
names that must be installed) and ``extra`` (the ``lenna[...]`` extra that installs them);
an optional classmethod ``unavailable_reason()`` reports other missing prerequisites
(for example, no CUDA device). Frameworks are imported inside methods, never at module level.
"""

from __future__ import annotations

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
    back without executing code from them. Subclass :class:`lenna_core.estimator.EstimatorBase`.
    """

    name: ClassVar[str]

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...

    def set_params(self, **params: Any) -> Self: ...

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self: ...

