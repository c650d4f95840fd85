"""scikit-learn's full estimator contract (``check_estimator``) for every bundled estimator and
the example plugin's, and the contract checks for backends and featurizers.

Checks an estimator cannot meet are declared in its ``expected_failed_checks``; the three
estimators whose checks take minutes (mlp, torch-mlp, ensemble) are marked slow.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from lenna_core.api import PredictorError, Workload, optional
from lenna_core.plugins.testing import (
    check_backend,
    check_featurizer,
    check_sklearn_estimator,
    contract_data,
)
from lenna_ensemble.estimator import EnsembleEstimator
from lenna_kernel_additive.estimator import KernelAdditiveEstimator
from lenna_lightgbm.estimator import AdditiveLightGBMEstimator, LightGBMEstimator
from lenna_sklearn.estimators import ESTIMATORS as SKLEARN_ESTIMATORS
from lenna_sklearn.estimators import MLPEstimator
from lenna_torch_mlp.estimator import TorchMLPEstimator

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lenna-example-plugin"
sys.path.insert(0, str(EXAMPLE))
PowerLawEstimator = importlib.import_module("lenna_example_plugin").PowerLawEstimator

SLOW = [MLPEstimator, TorchMLPEstimator, EnsembleEstimator]
QUICK = [cls for cls in [*SKLEARN_ESTIMATORS, LightGBMEstimator, AdditiveLightGBMEstimator,
                         KernelAdditiveEstimator, PowerLawEstimator] if cls not in SLOW]


def expected_failures(estimator: object) -> dict[str, str]:
    """The checks an estimator declares it cannot pass, each with its reason."""
    return dict(optional(estimator, "expected_failed_checks"))


@parametrize_with_checks([cls() for cls in QUICK], expected_failed_checks=expected_failures)
def test_quick_estimators_pass_scikit_learns_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([cls() for cls in SLOW], expected_failed_checks=expected_failures)
def test_slow_estimators_pass_scikit_learns_checks(estimator, check):
    check(estimator)


def test_every_bundled_estimator_is_checked(registry):
    checked = {cls.name for cls in [*QUICK, *SLOW]}
    assert checked == {*registry.names("estimator"), "power-law"}


def test_check_sklearn_estimator_counts_the_declared_failures():
    results = check_sklearn_estimator(PowerLawEstimator)
    statuses = {r["check_name"]: r["status"] for r in results}
    assert statuses["check_regressors_train"] == "xfail"
    assert "failed" not in statuses.values()


def test_an_unfitted_estimator_raises_scikit_learns_error_and_lennas():
    with pytest.raises(NotFittedError, match="estimator ridge is not fitted") as info:
        SKLEARN_ESTIMATORS[1]().predict(np.ones((2, 3)))
    assert isinstance(info.value, PredictorError)


def test_a_fitted_estimator_knows_its_features():
    import pandas as pd

    X, y = contract_data()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    estimator = LightGBMEstimator(n_estimators=5).fit(frame, np.log(y))
    assert estimator.n_features_in_ == 6
    assert list(estimator.feature_names_in_) == ["f0", "f1", "f2", "f3", "f4", "f5"]
    with (pytest.warns(UserWarning, match="X does not have valid feature names"),
          pytest.raises(ValueError, match="X has 5 features, but LightGBMEstimator is "
                                          "expecting 6 features as input")):
        estimator.predict(X[:, :5])


def test_torch_mlp_survives_joblib(tmp_path):
    X, y = contract_data()
    estimator = TorchMLPEstimator(epochs=50).fit(X, np.log(y))
    joblib.dump(estimator, tmp_path / "mlp.joblib")
    loaded = joblib.load(tmp_path / "mlp.joblib")
    assert np.array_equal(loaded.predict(X), estimator.predict(X))
    assert loaded.get_params() == estimator.get_params()
    assert loaded.n_features_in_ == 6


def test_kernel_additive_fits_inside_a_standard_scaler_pipeline():
    """Latency additive in the features stays additive, with non-negative weights, in the
    standardised features: the pipeline recovers it exactly."""
    X, _ = contract_data()
    latency = X @ np.array([1e-3, 2e-3, 0.0, 5e-4, 1e-4, 3e-3]) + 2e-3
    pipeline = make_pipeline(StandardScaler(), KernelAdditiveEstimator(ridge=0.0))
    pipeline.fit(X, latency)
    assert np.allclose(pipeline.predict(X), latency, rtol=1e-9, atol=0)
    assert pipeline[-1].coef_[:, 0] == pytest.approx(
        np.array([1e-3, 2e-3, 0.0, 5e-4, 1e-4, 3e-3]) * X.std(axis=0), rel=1e-6, abs=1e-12)


#: Backends that run in a check; each in its own process, as measurements run (TensorFlow
#: and torch in one process can crash it).
BACKENDS = ["onnxruntime", "torch-cpu", pytest.param("tensorflow", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name", BACKENDS)
def test_bundled_backends_pass_the_backend_checks(registry, name):
    try:
        registry.get_available("backend", name)
    except Exception as exc:  # noqa: BLE001 - unavailable here: nothing to check
        pytest.skip(str(exc))
    code = ("from lenna_core.api import check_backend, make_registry; "
            f"check_backend(make_registry().get_available('backend', {name!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


#: The source whose architectures each encoding featurizer reads; the others featurize any
#: graph (the default workloads of check_featurizer).
ENCODED_BY = {"nb201-encoding": "nasbench201", "darts-encoding": "darts-cells",
              "darts-flops": "darts-cells", "fbnet-encoding": "fbnet"}
FEATURIZERS = ["darts-encoding", "darts-flops", "fbnet-encoding", "graph-stats", "kernels",
               "layer-stats", "nb201-encoding"]


def test_every_bundled_featurizer_is_checked(registry):
    assert registry.names("featurizer") == FEATURIZERS


@pytest.mark.parametrize("name", FEATURIZERS)
def test_bundled_featurizers_pass_the_featurizer_checks(registry, name):
    workloads = None
    if name in ENCODED_BY:
        source = registry.get_available("source", ENCODED_BY[name])()
        rng = np.random.default_rng(0)
        workloads = [Workload(source.sample(rng)) for _ in range(4)]
    check_featurizer(registry.get_available("featurizer", name), workloads)


def test_a_featurizer_whose_keys_change_fails_the_checks():
    class Shifty:
        name, version = "shifty", "1"

        def featurize(self, workload):
            return {f"batch_{workload.batch_size}": 1.0}

    with pytest.raises(AssertionError, match="shifty: featurize must return the same keys"):
        check_featurizer(Shifty)


def test_a_featurizer_returning_nan_fails_the_checks():
    class Broken:
        name, version = "broken", "1"

        def featurize(self, workload):
            return {"x": float("nan")}

    with pytest.raises(AssertionError, match="broken: every feature must be a finite number"):
        check_featurizer(Broken)


def test_a_backend_with_training_but_no_optimizer_fails_the_checks():
    class Half:
        name, modes = "half", ("inference", "training")

    with pytest.raises(AssertionError, match="half: a backend declares optimizers exactly"):
        check_backend(Half)


def test_a_backend_whose_fingerprint_is_not_json_fails_the_checks():
    class Opaque:
        name = "opaque"

        def fingerprint(self):
            return {"device": object()}

    with pytest.raises(AssertionError, match="opaque: fingerprint must be JSON-able"):
        check_backend(Opaque)
