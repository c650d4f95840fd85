"""Contract checks for plugins, to call from a plugin's own tests.

>>> from lenna_core.api import check_estimator, check_sklearn_estimator
>>> check_estimator(MyEstimator)          # doctest: +SKIP
>>> check_sklearn_estimator(MyEstimator)  # doctest: +SKIP
>>> check_backend(MyBackend)              # doctest: +SKIP
>>> check_featurizer(MyFeaturizer)        # doctest: +SKIP

Each check raises AssertionError with a message naming the plugin and the broken rule.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lenna_core.errors import LennaError, PredictorError
from lenna_core.ir import Graph, GraphBuilder
from lenna_core.plugins.interfaces import TARGET_TRANSFORMS, optional
from lenna_core.records import MODES, Architecture, Workload

ROWS, COLUMNS = 120, 6


def contract_data(seed: int = 0, outputs: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Positive features and a smooth positive target (seconds) that any regressor can learn:
    latency grows with the features, as it does with MACs and sizes."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(1.0, 10.0, size=(ROWS, COLUMNS))
    weights = rng.uniform(0.5, 2.0, size=(COLUMNS, outputs))
    y = 1e-3 * (X @ weights) * (1 + 0.01 * rng.standard_normal((ROWS, outputs)))
    return X, (y[:, 0] if outputs == 1 else y)


def _fit(estimator: Any, X: np.ndarray, y: np.ndarray) -> Any:
    target = np.log(y) if optional(estimator, "target_transform") == "log" else y
    returned = estimator.fit(X, target)
    assert returned is estimator, f"{estimator.name}: fit must return self"
    return estimator


def _predict(estimator: Any, X: np.ndarray) -> np.ndarray:
    predicted = np.asarray(estimator.predict(X), dtype=np.float64)
    return np.exp(predicted) if optional(estimator, "target_transform") == "log" else predicted


def check_params(cls: type) -> None:
    """Default construction; get_params/set_params follow ``__init__``; params are JSON."""
    name = getattr(cls, "name", None)
    assert isinstance(name, str) and name, f"{cls.__name__}: needs a non-empty name"
    estimator = cls()
    params = estimator.get_params(deep=False)
    assert set(params) == set(estimator.get_params()), f"{name}: deep and shallow params differ"
    json.dumps(params)  # the predictor manifest stores them
    again = cls(**params)
    assert again.get_params() == params, f"{name}: cls(**get_params()) changes the params"
    assert estimator.set_params(**params) is estimator, f"{name}: set_params must return self"
    try:
        estimator.set_params(no_such_parameter=1)
    except ValueError:
        pass
    else:
        raise AssertionError(f"{name}: set_params must reject unknown parameters")
    assert optional(estimator, "target_transform") in TARGET_TRANSFORMS, \
        f"{name}: target_transform must be one of {TARGET_TRANSFORMS}"
    for key, values in optional(estimator, "param_grid").items():
        assert key in params, f"{name}: param_grid names unknown parameter {key!r}"
        assert values, f"{name}: param_grid[{key!r}] is empty"
        for value in values:
            cls(**{**params, key: value})


def check_sklearn_clone(cls: type) -> None:
    """scikit-learn's clone gives an unfitted copy with equal params (skipped without it)."""
    if importlib.util.find_spec("sklearn") is None:
        return
    from sklearn.base import clone, is_regressor

    estimator = cls()
    _fit(estimator, *contract_data())
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params(), f"{cls.name}: clone changes params"
    assert is_regressor(copy), f"{cls.name}: scikit-learn must see a regressor"
    try:
        copy.predict(contract_data()[0])
    except PredictorError:
        pass
    else:
        raise AssertionError(f"{cls.name}: a clone must be unfitted")


def check_fit_predict(cls: type) -> None:
    """Predicting before fit is a PredictorError; after fit, one finite, learned value per row,
    the same on a refit."""
    X, y = contract_data()
    estimator = cls()
    try:
        estimator.predict(X)
    except PredictorError:
        pass
    else:
        raise AssertionError(f"{cls.name}: predict before fit must raise PredictorError")
    train, test = slice(0, 90), slice(90, None)
    first = _predict(_fit(cls(), X[train], y[train]), X[test])
    assert first.shape == (30,), f"{cls.name}: predict must return one value per row"
    assert np.isfinite(first).all(), f"{cls.name}: predictions must be finite"
    error = np.median(np.abs(first / y[test] - 1))
    assert error < 0.25, f"{cls.name}: median error {error:.0%} on a smooth, learnable target"
    second = _predict(_fit(cls(), X[train], y[train]), X[test])
    assert np.allclose(first, second, rtol=1e-6), f"{cls.name}: refitting must be deterministic"
    assert np.isfinite(cls().fit(X, np.log(y)).score(X, np.log(y))), \
        f"{cls.name}: score must be a number"


def check_save_load(cls: type) -> None:
    """Saved and loaded back, the estimator predicts what it predicted; a directory without
    its files is a PredictorError."""
    X, y = contract_data()
    estimator = _fit(cls(), X, y)
    with tempfile.TemporaryDirectory() as tmp:
        estimator.save(Path(tmp))
        loaded = cls.load(Path(tmp), estimator.get_params(deep=False))
        assert np.allclose(_predict(loaded, X), _predict(estimator, X), rtol=1e-6), \
            f"{cls.name}: a loaded estimator must predict what the saved one did"
    with tempfile.TemporaryDirectory() as empty:
        try:
            cls.load(Path(empty), estimator.get_params(deep=False))
        except PredictorError:
            pass
        else:
            raise AssertionError(f"{cls.name}: loading from an empty directory must raise "
                                 "PredictorError")


def check_multi_output(cls: type) -> None:
    """With ``multi_output``, a 2-D target gives 2-D predictions (and survives save/load)."""
    if not optional(cls, "multi_output"):
        return
    X, y = contract_data(outputs=3)
    estimator = _fit(cls(), X, y)
    predicted = _predict(estimator, X)
    assert predicted.shape == y.shape, f"{cls.name}: a 3-column target needs 3-column output"
    with tempfile.TemporaryDirectory() as tmp:
        estimator.save(Path(tmp))
        loaded = cls.load(Path(tmp), estimator.get_params(deep=False))
        assert np.allclose(_predict(loaded, X), predicted, rtol=1e-6), \
            f"{cls.name}: a loaded multi-output estimator must predict the same"


CHECKS = (check_params, check_sklearn_clone, check_fit_predict, check_save_load,
          check_multi_output)


def check_estimator(cls: type) -> None:
    """Run every contract check on an estimator class."""
    for check in CHECKS:
        check(cls)


def check_sklearn_estimator(cls: type) -> list[dict[str, Any]]:
    """scikit-learn's own ``check_estimator`` on a default instance, with the checks the class
    declares in ``expected_failed_checks`` expected to fail; raises the first failure and
    returns scikit-learn's list of results (one dict per check, with its ``status``)."""
    from sklearn.utils.estimator_checks import check_estimator as sklearn_check_estimator

    return sklearn_check_estimator(
        cls(), expected_failed_checks=dict(optional(cls, "expected_failed_checks")),
        on_skip=None)


_KEBAB = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def _check_name(cls: type) -> str:
    name = getattr(cls, "name", None)
    assert isinstance(name, str) and _KEBAB.fullmatch(name), \
        f"{cls.__name__}: name must be lowercase-kebab, got {name!r}"
    return name


def tiny_graph(width: int = 4, size: int = 8) -> Graph:
    """A small real network: convolution, batch norm, ReLU, global pooling and a classifier."""
    b = GraphBuilder()
    x = b.add_node("conv2d", b.input((3, size, size)), out_channels=width, kernel_size=3,
                   padding=1)
    x = b.add_node("relu", b.add_node("batchnorm", x))
    x = b.add_node("flatten", b.add_node("global_avgpool", x))
    return b.build(b.add_node("linear", x, out_features=5))


def tiny_workloads() -> list[Workload]:
    """Three workloads of :func:`tiny_graph` that differ in width, input size and batch."""
    return [Workload(Architecture("contract", {"width": w, "size": s}, tiny_graph(w, s)),
                     batch_size=batch) for w, s, batch in ((4, 8, 1), (8, 12, 2), (6, 10, 1))]


def check_backend(cls: type) -> None:
    """The backend protocol: a kebab name; ``modes`` and ``optimizers`` declared consistently;
    a JSON-able ``fingerprint``; ``prepare`` then ``run`` (twice) and ``close`` on a tiny real
    graph in every declared mode; a mode it does not declare is refused with a LennaError."""
    name = _check_name(cls)
    modes, optimizers = optional(cls, "modes"), tuple(optional(cls, "optimizers"))
    assert "inference" in modes and set(modes) <= set(MODES), \
        f"{name}: modes must include inference and be among {MODES}, got {modes}"
    assert bool(optimizers) == ("training" in modes), \
        f"{name}: a backend declares optimizers exactly when it declares the training mode"
    assert all(isinstance(o, str) and o for o in optimizers), \
        f"{name}: optimizers must be non-empty strings"
    backend = cls()
    fingerprint = backend.fingerprint()
    assert isinstance(fingerprint, dict), f"{name}: fingerprint must be a dict"
    try:
        json.dumps(fingerprint)  # stored with every measurement
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{name}: fingerprint must be JSON-able: {exc}") from None
    workload = tiny_workloads()[1]
    settings = [{"mode": "inference"}]
    if "training" in modes:
        settings += [{"mode": "training", "optimizer": o} for o in optimizers]
    for setting in settings:
        runner = backend.prepare(Workload(workload.architecture, batch_size=2, **setting))
        try:
            runner.run()
            runner.run()
        finally:
            runner.close()
    if "training" not in modes:
        try:
            backend.prepare(Workload(workload.architecture, mode="training"))
        except LennaError:
            pass
        else:
            raise AssertionError(f"{name}: prepare must refuse the undeclared training mode "
                                 "with a LennaError (check_workload does this)")


def check_featurizer(cls: type, workloads: Sequence[Workload] | None = None) -> None:
    """The featurizer protocol: a kebab name and a ``version`` string; ``featurize`` returns a
    dict of finite floats with the same keys for every workload (by default those of
    :func:`tiny_workloads`; pass workloads of a source whose encoding it is), and the same
    values when called again."""
    name = _check_name(cls)
    version = getattr(cls, "version", None)
    assert isinstance(version, str) and version, f"{name}: needs a non-empty version string"
    workloads = list(workloads or tiny_workloads())
    assert len(workloads) >= 2, f"{name}: check the featurizer on at least two workloads"
    featurizer = cls()
    keys = None
    for workload in workloads:
        features = featurizer.featurize(workload)
        assert isinstance(features, dict) and features, \
            f"{name}: featurize must return a non-empty dict"
        assert all(isinstance(k, str) for k in features), f"{name}: feature names are strings"
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(v) for v in features.values()), \
            f"{name}: every feature must be a finite number"
        keys = keys or list(features)
        assert sorted(features) == sorted(keys), \
            f"{name}: featurize must return the same keys for every workload"
        assert cls().featurize(workload) == features, f"{name}: featurize must be deterministic"
