"""Plugin failures while in use: a plugin method that raises (anything but a LennaError)
ends the command with one line naming the plugin, its distribution and version, the method and
the reason, exit 2 (after the progress lines of ``lenna run`` and ``lenna evaluate``); the
labels a campaign stored before are kept.

Every case is a method of one real distribution, ``faulty-plugins`` 1.0, on PYTHONPATH, called
by ``lenna`` in a subprocess through the command that uses it; ``lenna run`` measures with the
chaos backend (a sleep per run), ``lenna evaluate`` and ``lenna predict`` read a store filled
by ``lenna import``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import NamedTuple

import numpy as np
import pytest
from conftest import CHAOS, assert_one_line_error, make_distribution, run_lenna

from lenna_core.api import EstimatorBase
from lenna_core.errors import LennaError
from lenna_core.learning.tuning import tune
from lenna_core.plugins.calls import PluginFailed, describe, plugin_call

FAULTY = '''
import json
import sys

import numpy as np

from lenna_core.api import (Architecture, EstimatorBase, GraphBuilder, LennaError, PluginBase,
                            SourceBase, hookimpl)


def tiny(source, width):
    """A one-convolution architecture that the chaos backend runs as a 0.1 ms sleep."""
    b = GraphBuilder()
    y = b.add_node("conv2d", b.input((3, 8, 8)), out_channels=width, kernel_size=3)
    return Architecture(source, {"width": width, "sleep": 1e-4}, b.build(y))


class Tiny(SourceBase):
    name = "tiny"

    def sample(self, rng):
        return tiny(self.name, int(rng.integers(1, 200)))

    def from_spec(self, spec):
        if not isinstance(spec.get("width"), int):
            raise LennaError("tiny spec needs an integer width")
        return tiny(self.name, spec["width"])


class SampleRaises(Tiny):
    name = "sample-raises"

    def sample(self, rng):
        raise RuntimeError("the search space ran dry\\nsecond line")


class FromSpecRaises(Tiny):
    name = "from-spec-raises"

    def from_spec(self, spec):
        return tiny(self.name, spec["depth"])


class SettingsRaise(Tiny):
    name = "settings-raise"

    def workload_settings(self, arch):
        return {"batch_size": "eight"}


class ChildrenRaise(Tiny):
    name = "children-raise"

    def sample(self, rng):  # a supernet: an architecture with parameters
        arch = super().sample(rng)
        return Architecture(arch.source, arch.spec, arch.graph, {"gates": [0.5, 0.5]})

    def children(self, arch, rng):
        raise ValueError("gates not normalised")


class CanonicalRaises(Tiny):
    name = "canonical-raises"

    def canonical_spec(self, spec):
        raise ZeroDivisionError("division by zero")


class Width(PluginBase):
    name = "width"
    version = "1"

    def featurize(self, workload):
        width = workload.architecture.spec["width"]
        if width > 1000:
            raise OverflowError("width beyond the table")
        return {"width": float(width)}


class FeaturizeRaises(Width):
    name = "featurize-raises"

    def featurize(self, workload):
        raise RuntimeError("no kernel table for conv2d\\ntraceback details")


class FeaturizeExits(Width):
    name = "featurize-exits"

    def featurize(self, workload):
        sys.exit(3)


class FeaturizeReturnsNone(Width):
    name = "featurize-returns-none"

    def featurize(self, workload):
        return None


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("cannot print")


class FeaturizeUnprintable(Width):
    name = "featurize-unprintable"

    def featurize(self, workload):
        raise Unprintable()


class Mean(EstimatorBase):
    """Predicts the mean target; saves it as JSON."""

    name = "mean"

    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)

    def save(self, directory):
        (directory / "mean.json").write_text(json.dumps(self.mean_))

    @classmethod
    def load(cls, directory, params):
        estimator = cls(**params)
        estimator.mean_ = json.loads((directory / "mean.json").read_text())
        return estimator


class FitRaises(Mean):
    name = "fit-raises"

    def fit(self, X, y):
        raise np.linalg.LinAlgError("singular matrix")


class PredictRaises(Mean):
    name = "predict-raises"

    def predict(self, X):
        raise KeyError("mean_")


class SaveRaises(Mean):
    name = "save-raises"

    def save(self, directory):
        raise TypeError("Object of type float32 is not JSON serializable")


class LoadRaises(Mean):
    name = "load-raises"

    @classmethod
    def load(cls, directory, params):
        raise RuntimeError("model file from a newer version")


class LoadedPredictRaises(Mean):
    """Works until loaded from a bundle; the loaded one cannot predict."""

    name = "loaded-predict-raises"

    @classmethod
    def load(cls, directory, params):
        estimator = super().load(directory, params)
        estimator.loaded_ = True
        return estimator

    def predict(self, X):
        if getattr(self, "loaded_", False):
            raise AttributeError("'Booster' object has no attribute 'best_iteration'")
        return super().predict(X)


@hookimpl
def lenna_register_sources():
    return [Tiny, SampleRaises, FromSpecRaises, SettingsRaise, ChildrenRaise, CanonicalRaises]


@hookimpl
def lenna_register_featurizers():
    return [Width, FeaturizeRaises, FeaturizeExits, FeaturizeReturnsNone, FeaturizeUnprintable]


@hookimpl
def lenna_register_estimators():
    return [Mean, FitRaises, PredictRaises, SaveRaises, LoadRaises, LoadedPredictRaises]
'''

FROM = "from faulty-plugins 1.0"
RUN = ("run", "--backend", "chaos", "--n", "6", "--protocol", "fixed:5", "--passes", "1",
       "--profile-runs", "0", "--repeats", "1", "--keep-contended")
EVALUATE = ("evaluate", "--source", "tiny", "--target", "bench", "--repeats", "1")


class Case(NamedTuple):
    """A command that calls a faulty method, the one error line it ends with, and for ``lenna
    run`` the labels it leaves in the store."""

    id: str
    args: tuple[str, ...]
    error: str
    stored: int | None = None


CASES = [
    Case("features-featurize", ("features", "--source", "tiny", "--seed", "0", "--features",
                                "featurize-raises"),
         f"featurizer 'featurize-raises' {FROM} failed in featurize: RuntimeError: "
         "no kernel table for conv2d"),
    Case("features-featurize-exits", ("features", "--source", "tiny", "--seed", "0",
                                      "--features", "width,featurize-exits"),
         f"featurizer 'featurize-exits' {FROM} failed in featurize: SystemExit: 3"),
    Case("features-featurize-returns-none", ("features", "--source", "tiny", "--seed", "0",
                                             "--features", "featurize-returns-none"),
         f"featurizer 'featurize-returns-none' {FROM} failed in featurize: AttributeError: "
         "'NoneType' object has no attribute 'items'"),
    Case("features-featurize-unprintable", ("features", "--source", "tiny", "--seed", "0",
                                            "--features", "featurize-unprintable"),
         f"featurizer 'featurize-unprintable' {FROM} failed in featurize: Unprintable"),
    Case("sample-sample", ("sample", "--source", "sample-raises"),
         f"source 'sample-raises' {FROM} failed in sample: RuntimeError: "
         "the search space ran dry"),
    Case("features-sample", ("features", "--source", "sample-raises", "--seed", "1"),
         f"source 'sample-raises' {FROM} failed in sample: RuntimeError: "
         "the search space ran dry"),
    Case("features-from-spec", ("features", "--source", "from-spec-raises", "--arch",
                                '{"width": 4}'),
         f"source 'from-spec-raises' {FROM} failed in from_spec: KeyError: 'depth'"),
    Case("features-from-spec-model", ("features", "--source", "from-spec-raises", "--model",
                                      "resnet18"),
         f"source 'from-spec-raises' {FROM} failed in from_spec: KeyError: 'depth'"),
    Case("features-workload-settings", ("features", "--source", "settings-raise", "--seed",
                                        "0", "--features", "width"),
         f"source 'settings-raise' {FROM} failed in workload_settings: TypeError: "
         "'<' not supported between instances of 'str' and 'int'"),
    Case("run-sample", (*RUN, "--source", "sample-raises", "--features", "width",
                        "--estimator", "mean"),
         f"source 'sample-raises' {FROM} failed in sample: RuntimeError: "
         "the search space ran dry", 0),
    Case("run-children", (*RUN, "--source", "children-raise", "--features", "width",
                          "--estimator", "mean"),
         f"source 'children-raise' {FROM} failed in children: ValueError: "
         "gates not normalised", 0),
    Case("run-featurize", (*RUN, "--source", "tiny", "--features", "featurize-raises",
                           "--estimator", "mean"),
         f"featurizer 'featurize-raises' {FROM} failed in featurize: RuntimeError: "
         "no kernel table for conv2d", 6),
    Case("run-fit", (*RUN, "--source", "tiny", "--features", "width", "--estimator",
                     "fit-raises"),
         f"estimator 'fit-raises' {FROM} failed in fit: LinAlgError: singular matrix", 6),
    Case("run-predict", (*RUN, "--source", "tiny", "--features", "width", "--estimator",
                         "predict-raises"),
         f"estimator 'predict-raises' {FROM} failed in predict: KeyError: 'mean_'", 6),
    Case("import-from-spec", ("import", "<csv>", "--source", "from-spec-raises",
                              "--arch-col", "arch", "--target-cols", "device",
                              "--latency-col", "ms"),
         f"source 'from-spec-raises' {FROM} failed in from_spec: KeyError: 'depth'"),
    Case("import-canonical-spec", ("import", "<csv>", "--source", "canonical-raises",
                                   "--arch-col", "arch", "--target-cols", "device",
                                   "--latency-col", "ms"),
         f"source 'canonical-raises' {FROM} failed in canonical_spec: ZeroDivisionError: "
         "division by zero"),
    Case("evaluate-featurize", (*EVALUATE, "--features", "featurize-raises", "--estimators",
                                "mean"),
         f"featurizer 'featurize-raises' {FROM} failed in featurize: RuntimeError: "
         "no kernel table for conv2d"),
    Case("evaluate-fit", (*EVALUATE, "--features", "width", "--estimators", "mean,fit-raises"),
         f"estimator 'fit-raises' {FROM} failed in fit: LinAlgError: singular matrix"),
    Case("evaluate-predict", (*EVALUATE, "--features", "width", "--estimators",
                              "predict-raises"),
         f"estimator 'predict-raises' {FROM} failed in predict: KeyError: 'mean_'"),
    Case("predict-predict", ("predict", "--predictor", "<bundle>", "--arch", "<arch>"),
         f"estimator 'loaded-predict-raises' {FROM} failed in predict: AttributeError: "
         "'Booster' object has no attribute 'best_iteration'"),
    Case("run-save", (*RUN, "--source", "tiny", "--features", "width", "--estimator",
                      "save-raises"),
         f"estimator 'save-raises' {FROM} failed in save: TypeError: "
         "Object of type float32 is not JSON serializable", 6),
    Case("predict-featurize", ("predict", "--predictor", "<bundle>", "--arch", "<wide>"),
         f"featurizer 'width' {FROM} failed in featurize: OverflowError: "
         "width beyond the table"),
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``faulty-plugins`` and the chaos backend, each a distribution for PYTHONPATH."""
    root = tmp_path_factory.mktemp("faulty")
    return [make_distribution(root / "faulty", "faulty-plugins", "1.0",
                              {"faulty": "faulty_plugins"}, {"faulty_plugins": FAULTY}),
            make_distribution(root / "chaos", "chaos-dist", "0.1",
                              {"chaos": "chaos_backend"}, {"chaos_backend": CHAOS})]


@pytest.fixture(scope="module")
def csv(tmp_path_factory):
    """Latencies of 30 tiny architectures on device ``bench``, their specs in column arch."""
    path = tmp_path_factory.mktemp("csv") / "latency.csv"
    path.write_text("arch,device,ms\n" + "".join(
        f'"{{""width"": {w}}}",bench,{0.1 + 0.01 * w}\n' for w in range(1, 31)))
    return path


@pytest.fixture(scope="module")
def imported(tmp_path_factory, installed, csv):
    """A store holding the CSV's 30 latencies."""
    db = tmp_path_factory.mktemp("imported") / "imported.db"
    result = run_lenna("import", str(csv), "--source", "tiny", "--arch-col", "arch",
                       "--target-cols", "device", "--latency-col", "ms", "--db", str(db),
                       pythonpath=installed)
    assert result.returncode == 0, result.stderr
    return db


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, installed, imported):
    """A predictor bundle of ``loaded-predict-raises`` fitted on the imported latencies."""
    out = tmp_path_factory.mktemp("evaluated")
    result = run_lenna(*EVALUATE, "--features", "width", "--estimators",
                       "loaded-predict-raises", "--db", str(imported), "--out", str(out),
                       pythonpath=installed)
    assert result.returncode == 0, result.stderr
    return out


def _architecture_file(directory, installed, width: int):
    """A JSON file holding the tiny architecture of ``width``."""
    from lenna_core.plugins.registry import make_registry

    with pytest.MonkeyPatch.context() as patch:
        for path in installed:
            patch.syspath_prepend(str(path))
        source = make_registry().create("source", "tiny")
    path = directory / f"width-{width}.json"
    path.write_text(json.dumps(source.from_spec({"width": width}).to_dict()))
    return path


@pytest.fixture(scope="module")
def arch(tmp_path_factory, installed):
    return _architecture_file(tmp_path_factory.mktemp("arch"), installed, 7)


@pytest.fixture(scope="module")
def wide(tmp_path_factory, installed):
    """An architecture too wide for the ``width`` featurizer."""
    return _architecture_file(tmp_path_factory.mktemp("wide"), installed, 5000)


def _stored(db) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]


def _check(case: Case, installed, request, tmp_path) -> None:
    """Run the case's command, each ``<fixture>`` argument replaced by that fixture's path,
    and check the error line and what is stored."""
    args = [str(request.getfixturevalue(arg[1:-1])) if arg.startswith("<") else arg
            for arg in case.args]
    db = request.getfixturevalue("imported") if args[0] == "evaluate" else tmp_path / "l.db"
    if args[0] not in ("sample", "predict"):
        args += ["--db", str(db)]
    if args[0] in ("run", "evaluate"):
        args += ["--out", str(tmp_path / "out")]
    result = run_lenna(*args, pythonpath=installed)
    if args[0] in ("run", "evaluate"):  # progress and host warnings come first
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2, result.stderr
        assert [line for line in lines if "error" in line.lower()] == [lines[-1]], lines
        assert lines[-1] == f"error: {case.error}"
    else:
        assert_one_line_error(result, case.error)
    if case.stored is not None:
        assert _stored(db) == case.stored


def test_the_table_covers_every_kind_of_call():
    methods = {case.error.split(" failed in ")[1].split(":")[0] for case in CASES}
    commands = {case.args[0] for case in CASES}
    assert len(CASES) >= 12 and len({case.id for case in CASES}) == len(CASES)
    assert methods == {"featurize", "sample", "from_spec", "workload_settings", "children",
                       "canonical_spec", "fit", "predict", "save"}
    assert commands == {"features", "sample", "run", "import", "evaluate", "predict"}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_failing_plugin_method_is_one_error_line(case, installed, request, tmp_path):
    _check(case, installed, request, tmp_path)




class Thing:
    name = "thing"

    def method(self):
        return None


@pytest.mark.parametrize(("raised", "passes"), [
    (LennaError("bad spec field 'depth'"), True),
    (KeyboardInterrupt(), True),
    (MemoryError(), True),
    (OSError(28, "No space left on device"), True),
    (OSError(24, "Too many open files"), True),
    (OSError(2, "No such file or directory"), False),
    (SystemExit(1), False),
    (RecursionError("maximum recursion depth exceeded"), False),
], ids=["lenna-error", "interrupt", "memory", "disk-full", "open-files", "missing-file",
        "exit", "recursion"])
def test_what_passes_a_plugin_call_unchanged(raised, passes):
    with pytest.raises(BaseException) as caught, plugin_call(Thing(), "method"):
        raise raised
    if passes:
        assert caught.value is raised
    else:
        assert isinstance(caught.value, PluginFailed) and caught.value.error is raised
        assert caught.value.__cause__ is raised
        assert str(caught.value).startswith("plugin 'thing' failed in method: ")


def test_a_registered_plugin_is_described_by_its_distribution(registry):
    featurizer = registry.create("featurizer", "layer-stats")
    described = "featurizer 'layer-stats' from lenna"
    assert describe(featurizer).startswith(described)
    assert describe(type(featurizer)) == describe(featurizer.featurize) == describe(featurizer)
    assert describe(Thing().method) == "plugin 'thing'"
    with pytest.raises(PluginFailed, match=f"^{described} .* failed in featurize: "
                                           "ValueError: x$"):
        with plugin_call(featurizer, "featurize"):
            raise ValueError("x\ny")


class Picky(EstimatorBase):
    """Fits a mean, except with ``k=2``, where ``fit`` raises ``error``."""

    name = "picky"
    param_grid = {"k": [1, 2]}

    def __init__(self, k: int = 1, error: str = "ValueError") -> None:
        self.k = k
        self.error = error

    def fit(self, X, y):
        if self.k == 2:
            raise {"ValueError": ValueError, "RuntimeError": RuntimeError}[self.error]("k > 1")
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


def test_tuning_skips_a_grid_point_that_cannot_fit_and_stops_at_a_failing_one():
    X = np.arange(24, dtype=np.float64).reshape(12, 2)
    latency = np.linspace(1e-3, 2e-3, 12)
    assert tune(Picky(), X, latency).get_params() == {"k": 1, "error": "ValueError"}
    with pytest.raises(PluginFailed, match="^plugin 'picky' failed in fit: RuntimeError: k > 1$"):
        tune(Picky(error="RuntimeError"), X, latency)
