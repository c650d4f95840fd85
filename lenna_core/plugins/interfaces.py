"""The four plugin kinds as Protocols, the bases that carry the defaults of their optional
members, and :func:`optional`, the one way the core reads an optional member.

Every plugin class has a lowercase-kebab ``name``. Frameworks are imported inside methods,
never at module level. A plugin need not subclass a base: the core reads every optional
member through :func:`optional`, which falls back to the default its base declares.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from lenna_core.errors import not_fitted_error
from lenna_core.plugins.calls import plugin_call
from lenna_core.records import Architecture, Workload


@runtime_checkable
class Source(Protocol):
    """Emits architectures as Graph IR. ``__init__`` takes the source's options as keywords.

    Optional members, with their defaults, are those of :class:`SourceBase`.
    """

    name: ClassVar[str]

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Draw one architecture of the space."""

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """Build the architecture a spec describes; raise LennaError naming a bad field."""


class Runner(Protocol):
    """A prepared workload: ``run`` performs one complete, synchronised step.

    Optional members, with their defaults, are those of :class:`RunnerBase`.
    """

    def run(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """Compiles Graph IR for one framework and device. ``__init__(threads=None)``.

    Optional members, with their defaults, are those of :class:`BackendBase`.
    """

    name: ClassVar[str]

    def fingerprint(self) -> dict[str, Any]:
        """Framework versions, device and the effective thread settings."""

    def prepare(self, workload: Workload) -> Runner:
        """Build the model with :func:`lenna_core.api.init_weights` weights and an input."""


@runtime_checkable
class Featurizer(Protocol):
    """Turns a workload into named numbers. Bump ``version`` whenever the output changes.

    Optional members, with their defaults, are those of :class:`PluginBase`.
    """

    name: ClassVar[str]
    version: ClassVar[str]

    def featurize(self, workload: Workload) -> dict[str, float]: ...


@runtime_checkable
class Estimator(Protocol):
    """A regressor with scikit-learn's contract that saves itself without pickle.

    ``__init__`` stores hyperparameters only; ``fit`` returns self; learned attributes end
    in ``_``. ``save`` writes native-format files into a directory and ``load`` reads them
    back without executing code from them. ``fit`` gets the target on the scale that
    ``target_transform`` names and ``predict`` returns that scale.

    The core also reads the optional class attributes ``target_transform``, ``multi_output``
    and ``param_grid``; their defaults are those of :class:`EstimatorBase`, which also derives
    ``get_params``/``set_params`` from ``__init__`` and gives ``score`` and scikit-learn's tags.
    """

    name: ClassVar[str]

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...

    def set_params(self, **params: Any) -> Self: ...

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self: ...


class SearchSpace(Protocol):
    """A gradient-based architecture search over a source's space, run by ``lenna search``.

    ``__init__(source, input_shape, classes, seed, **options)`` builds the search network for
    images of ``input_shape`` (C, H, W) in ``classes`` classes from the source's settings;
    ``options`` are the ``--space-option`` values. ``features`` names the featurizer whose
    encoding the space builds, differentiably, from its architecture parameters, so that a
    predictor fitted on that featurizer gives the latency term. ``latency`` is a
    :class:`lenna_core.search.latency.DifferentiableLatency`: ``feature_names`` and a call
    from a features × ``feature_names`` tensor to seconds. ``advance(status)`` moves the
    progress one epoch.
    """

    features: ClassVar[str]

    def search(self, data: Any, lam: float, latency: Any, epochs: int,
               advance: Callable[[str], None]) -> dict[str, Any]:
        """Train weights on the training split and architecture parameters on the validation
        split under loss + λ × the scaled latency term; return the parameters as JSON."""

    def derive(self, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The discrete architecture: the source's spec of each searched cell, in order."""

    def train(self, cells: list[dict[str, Any]], data: Any, epochs: int,
              advance: Callable[[str], None]) -> float:
        """Train the network of ``cells`` from scratch; return its test accuracy."""

    def expected_latency(self, parameters: Mapping[str, Any], latency: Any) -> Any:
        """The latency term in seconds: a torch scalar differentiable in ``parameters``."""


class PluginBase:
    """The optional members of every plugin kind, with their defaults.

    - ``requires = ()``: import names that must be installed; ``lenna plugins`` shows the
      plugin unavailable when one is missing, without importing anything.
    - ``extra = None``: the ``lenna[...]`` extra that installs them, suggested to the user.
    - ``unavailable_reason() -> None``: a classmethod reporting another missing prerequisite
      in a few words (``"no CUDA device"``), or None when there is none.
    """

    name: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why the plugin cannot be used on this host, or None."""
        return None


class SourceBase(PluginBase):
    """The optional members of a source, with their defaults.

    - ``workload_settings(arch) -> {}``: the ``batch_size``, ``mode`` and ``optimizer`` that
      the architecture's spec fixes (for sources whose items are whole training workloads);
      by default it fixes none.
    - ``children = None``: for a supernet whose spec carries architecture parameters
      (DARTS-style α), a method ``children(arch, rng) -> Architecture`` that draws one child by
      binary gates; the label of an architecture with ``params`` (a supernet) is then the
      expected latency over children, and one without (a child) is measured as it is.
    - ``canonical_spec = None``: a method ``canonical_spec(spec) -> dict`` giving the spec of
      the representative of the spec's isomorphism class (architectures that compute the same
      function, such as NAS-Bench-201 cells that differ only in edges that cannot reach the
      output); ``lenna import`` then keeps one row per class and target. It raises LennaError
      naming a bad field. Without it, every architecture is its own class.
    - ``spec_field = None``: the spec field that a plain string stands for (``"arch"`` for
      nasbench201), so ``lenna import`` can read an arch string as a spec and ``lenna
      transfer`` can match an architecture across devices whatever their input shape.
    - ``default_features = "layer-stats"``: the source's natural encoding, which ``lenna
      transfer`` uses when no ``--features`` are given.
    - ``search_space = None``: a :class:`SearchSpace` class, for a source whose space
      ``lenna search`` can search by gradient descent on its architecture parameters.
    """

    children: ClassVar[Callable[[Architecture, np.random.Generator], Architecture] | None] = None
    canonical_spec: ClassVar[Callable[[Mapping[str, Any]], dict[str, Any]] | None] = None
    spec_field: ClassVar[str | None] = None
    default_features: ClassVar[str] = "layer-stats"
    search_space: ClassVar[type | None] = None

    def workload_settings(self, arch: Architecture) -> dict[str, Any]:
        """The workload settings the architecture's spec fixes: none."""
        return {}


class BackendBase(PluginBase):
    """The optional class attributes of a backend, with their defaults.

    - ``modes = ("inference",)``: the modes it can run (``"training"`` too for a training step).
    - ``optimizers = ()``: the optimizer names a training step accepts; the first is the default.
    - ``op_vocabulary = {}``: framework op name -> LENNA op, for per-op profiles; unmapped
      names count as ``other``.
    """

    modes: ClassVar[tuple[str, ...]] = ("inference",)
    optimizers: ClassVar[tuple[str, ...]] = ()
    op_vocabulary: ClassVar[Mapping[str, str]] = {}


class RunnerBase:
    """The optional methods of a runner, each absent (None) by default.

    - ``timed_run() -> int``: one step timed by the device itself, in ns (CUDA events);
      without it the core times ``run`` with ``time.perf_counter_ns``.
    - ``profile(runs) -> dict[str, float]``: run ``runs`` profiled steps and return the median
      time per step in ns of each top-level framework op (``aten::conv2d``, ``Conv``).
    - ``peak_device_memory() -> int | None``: device bytes allocated at peak since prepare.
    """

    timed_run: ClassVar[Callable[[], int] | None] = None
    profile: ClassVar[Callable[[int], dict[str, float]] | None] = None
    peak_device_memory: ClassVar[Callable[[], int | None] | None] = None


TARGET_TRANSFORMS = ("log", "identity")


class EstimatorBase(PluginBase):
    """Gives ``get_params``/``set_params`` from the ``__init__`` signature, ``score`` (R²),
    scikit-learn's tags and its input validation, so that LENNA estimators pass
    ``sklearn.utils.estimator_checks.check_estimator`` and work in ``clone``, pipelines,
    ``cross_val_score`` and grid search.

    ``fit`` starts with ``X, y = self._validate_fit(X, y)`` and ``predict`` with
    ``X = self._validate_predict(X)``: they convert to finite float arrays, set and check
    ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame), and ``_validate_predict``
    raises :func:`lenna_core.errors.not_fitted_error` on an unfitted estimator.

    The optional class attributes of an estimator, with their defaults:

    - ``target_transform = "log"``: fit on log latency; ``"identity"`` for models that must
      add latencies up, which fit latency in seconds.
    - ``multi_output = False``: ``fit`` accepts a 2-D target, one column per output.
    - ``param_grid = {}``: the hyperparameter values ``--tune`` searches.
    - ``module = None``: a method returning the fitted model as a torch ``nn.Module`` from raw
      features to the fitted target, differentiable in its input (what ``lenna search`` needs
      of a latency predictor).
    - ``expected_failed_checks = {}``: scikit-learn check name -> the one-line reason it
      cannot apply, passed to ``check_estimator`` by
      :func:`lenna_core.plugins.testing.check_sklearn_estimator`.
    """

    target_transform: ClassVar[str] = "log"
    multi_output: ClassVar[bool] = False
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    module: ClassVar[Callable[[], Any] | None] = None
    expected_failed_checks: ClassVar[Mapping[str, str]] = {}
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

    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` or ``load`` has set a learned attribute (a name ending in ``_``)."""
        return any(k.endswith("_") and not k.startswith("__") for k in vars(self))

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise not_fitted_error()(f"estimator {self.name} is not fitted; call fit first")

    def _validate(self, X: Any, y: Any = None, *, reset: bool, min_samples: int = 1) -> Any:
        """scikit-learn's ``validate_data`` when it is installed, else float arrays of the
        fitted width: ``(X, y)`` when ``reset`` (fitting), ``X`` alone otherwise."""
        if importlib.util.find_spec("sklearn") is not None:
            from sklearn.utils.validation import validate_data

            if reset:  # fitting: y is validated too
                return validate_data(self, X, y, dtype=np.float64, y_numeric=True,
                                     multi_output=optional(self, "multi_output"),
                                     ensure_min_samples=min_samples)
            return validate_data(self, X, reset=False, dtype=np.float64)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or not np.isfinite(X).all() or len(X) < min_samples:
            raise ValueError(f"estimator {self.name} needs a 2-D array of finite numbers "
                             f"with at least {min_samples} sample(s)")
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != getattr(self, "n_features_in_", X.shape[1]):
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} "
                             f"is expecting {self.n_features_in_} features as input")
        return (X, np.asarray(y, dtype=np.float64)) if reset else X

    def _validate_fit(self, X: Any, y: Any, min_samples: int = 1
                      ) -> tuple[np.ndarray, np.ndarray]:
        """``X`` (2-D, at least ``min_samples`` rows) and ``y`` as finite float arrays; sets
        ``n_features_in_`` (and ``feature_names_in_`` when ``X`` is a DataFrame)."""
        return self._validate(X, y, reset=True, min_samples=min_samples)

    def _validate_predict(self, X: Any) -> np.ndarray:
        """``X`` as a finite float array of the fitted width; NotFittedError before fit."""
        self._check_fitted()
        return self._validate(X, reset=False)

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


_DECLARED_BY: dict[str, type] = {
    **dict.fromkeys(("requires", "extra", "unavailable_reason"), PluginBase),
    **dict.fromkeys(("workload_settings", "children", "canonical_spec", "spec_field",
                     "default_features", "search_space"), SourceBase),
    **dict.fromkeys(("modes", "optimizers", "op_vocabulary"), BackendBase),
    **dict.fromkeys(("timed_run", "profile", "peak_device_memory"), RunnerBase),
    **dict.fromkeys(("target_transform", "multi_output", "param_grid", "module",
                     "expected_failed_checks"), EstimatorBase),
}
"""Each optional member -> the base that declares its default."""


def optional(plugin: Any, member: str) -> Any:
    """``plugin``'s optional ``member``, or the default its base declares.

    ``plugin`` is a plugin, a plugin class or a runner; a method comes bound, as from
    ``getattr``. A default of None means the member is absent (a source without
    ``canonical_spec``, a runner without ``timed_run``).
    """
    try:
        base = _DECLARED_BY[member]
    except KeyError:
        raise KeyError(f"{member!r} is not an optional plugin member") from None
    if hasattr(plugin, member):
        return getattr(plugin, member)
    default = vars(base)[member]
    if not hasattr(default, "__get__"):
        return default
    if isinstance(plugin, type):
        return default.__get__(None, plugin)
    return default.__get__(plugin, type(plugin))


def source_workload(source: Any, arch: Architecture, **settings: Any) -> Workload:
    """The workload of ``arch``: ``settings``, with those that the source's spec fixes
    (``workload_settings``) in their place."""
    with plugin_call(source, "workload_settings"):  # a setting it fixes may be malformed
        return Workload(arch, **{**settings, **optional(source, "workload_settings")(arch)})
