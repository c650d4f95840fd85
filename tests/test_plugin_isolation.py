"""Plugin isolation at every call: a plugin that fails to import, whose hook raises or returns
malformed classes, that takes a name already registered or whose availability check fails is
listed as broken by ``lenna plugins`` while every other command works; with
``LENNA_STRICT_PLUGINS=1`` it is one error line naming its distribution.

Every case is a real distribution on PYTHONPATH, found through its entry point by ``lenna``
run in a subprocess. ``lenna plugins --json`` and ``lenna features`` run once with all the
broken distributions installed together; the strict run is one per case.
"""

from __future__ import annotations

import json
import types
from importlib.metadata import version
from typing import NamedTuple

import pytest
from conftest import assert_one_line_error, make_distribution, run_lenna

from lenna_core.api import hookimpl
from lenna_core.errors import LennaError, PluginError
from lenna_core.plugins.registry import make_registry

FEATURES = ("features", "--source", "resnet-family", "--seed", "0", "--json")
STRICT = {"LENNA_STRICT_PLUGINS": "1"}
LENNA = f"lenna {version('lenna')}"

PRELUDE = '''
from lenna_core.api import hookimpl


class Stub:
    """A complete backend that does nothing."""

    name = "stub"

    def __init__(self, threads=None):
        pass

    def fingerprint(self):
        return {}

    def prepare(self, workload):
        raise NotImplementedError
'''


def backends(body: str, returned: str) -> str:
    """Plugin code defining ``body`` and a backend hook returning ``returned``."""
    return f"{body}\n\n@hookimpl\ndef lenna_register_backends():\n    return {returned}\n"


class Case(NamedTuple):
    """A broken plugin: its code, and the reason ``lenna plugins`` gives for it."""

    id: str
    code: str
    reason: str
    row: tuple[str, str] | None = None  # (kind, name) of a broken class; None: the plugin
    modules: tuple[tuple[str, str], ...] = ()  # other modules of its distribution

    @property
    def distribution(self) -> str:
        return f"bad-{self.id}"

    @property
    def described(self) -> str:
        """How messages name the broken plugin or class."""
        kind, name = self.row or ("plugin", self.id)
        return f"{kind} '{name}' from {self.distribution} 1.0"


CASES = [
    Case("import-error", "raise ImportError('needs libfoo 9')",
         "failed to load: ImportError: needs libfoo 9"),
    Case("misspelt-hook", backends("", "[Stub]").replace("backends():", "backend():"),
         "failed to load: unknown hook 'lenna_register_backend' "
         "(did you mean 'lenna_register_backends'?)"),
    Case("hook-raises",
         backends("", "[Stub]") + "\n\n@hookimpl\ndef lenna_register_estimators():\n"
         "    raise RuntimeError('no licence server\\nsecond line')\n",
         "failed to register: lenna_register_estimators() raised RuntimeError: "
         "no licence server"),
    Case("hook-exits",
         "import sys\n" + backends("", "sys.exit(3)"),
         "failed to register: lenna_register_backends() raised SystemExit: 3"),
    Case("returns-string", backends("", "'Stub'"),
         "failed to register: lenna_register_backends() returned str 'Stub', "
         "not a list of classes"),
    Case("returns-number", backends("", "42"),
         "failed to register: lenna_register_backends() returned int 42, "
         "not a list of classes"),
    Case("item-not-class", backends("", "['stub']"),
         "failed to register: lenna_register_backends() returned 'stub', not a class"),
    Case("no-name", backends("class Nameless:\n    pass", "[Nameless]"),
         "failed to register: backend class Nameless needs a lowercase-kebab 'name' "
         "attribute, got None"),
    Case("bad-name", backends("class Upper(Stub):\n    name = 'Torch_CPU'", "[Upper]"),
         "failed to register: backend class Upper needs a lowercase-kebab 'name' "
         "attribute, got 'Torch_CPU'"),
    Case("number-name", backends("class Numbered(Stub):\n    name = 7", "[Numbered]"),
         "failed to register: backend class Numbered needs a lowercase-kebab 'name' "
         "attribute, got 7"),
    Case("missing-method",
         backends("class Half:\n    name = 'half'\n    def fingerprint(self):\n"
                  "        return {}", "[Half]"),
         "failed to register: backend 'half' lacks prepare (see lenna_core.api.Backend)"),
    Case("featurizer-without-version",
         "\n\nclass Counts:\n    name = 'counts'\n    def featurize(self, workload):\n"
         "        return {}\n\n@hookimpl\ndef lenna_register_featurizers():\n"
         "    return [Counts]\n",
         "failed to register: featurizer 'counts' lacks version "
         "(see lenna_core.api.Featurizer)"),
    Case("requires-string",
         backends("class Needy(Stub):\n    name = 'needy'\n    requires = 'torch'", "[Needy]"),
         "failed to register: backend 'needy' has 'requires' 'torch'; it must be a tuple of "
         "import names"),
    Case("extra-list",
         backends("class Extra(Stub):\n    name = 'extra'\n    extra = ['gpu']", "[Extra]"),
         "failed to register: backend 'extra' has 'extra' ['gpu']; it must be a string or "
         "None"),
    Case("reason-attribute",
         backends("class Said(Stub):\n    name = 'said'\n    unavailable_reason = 'no'",
                  "[Said]"),
         "failed to register: backend 'said' has 'unavailable_reason' 'no'; it must be a "
         "method"),
    Case("duplicate-of-bundled",
         "\n\nclass LayerStats:\n    name = 'layer-stats'\n    version = '9'\n"
         "    def featurize(self, workload):\n        return {'macs': -1.0}\n\n"
         "@hookimpl\ndef lenna_register_featurizers():\n    return [LayerStats]\n",
         f"failed to register: featurizer name 'layer-stats' is registered twice: by {LENNA} "
         "and by bad-duplicate-of-bundled 1.0; uninstall one of them"),
    Case("duplicate-within", backends("", "[Stub, Stub]"),
         "failed to register: backend name 'stub' is returned twice by its hooks"),
    Case("reason-raises",
         backends("class Flaky(Stub):\n    name = 'flaky'\n    @classmethod\n"
                  "    def unavailable_reason(cls):\n"
                  "        raise RuntimeError('driver crashed')", "[Flaky]"),
         "failed its availability check: RuntimeError: driver crashed", ("backend", "flaky")),
    Case("reason-number",
         backends("class Moody(Stub):\n    name = 'moody'\n    @classmethod\n"
                  "    def unavailable_reason(cls):\n        return 42", "[Moody]"),
         "failed its availability check: unavailable_reason() returned 42, not a string or "
         "None", ("backend", "moody")),
    Case("requires-parent-raises",
         backends("class Orphan(Stub):\n    name = 'orphan'\n"
                  "    requires = ('half_installed.sub',)", "[Orphan]"),
         "failed its availability check: RuntimeError: half installed",
         ("backend", "orphan"),
         (("half_installed", "raise RuntimeError('half installed')"),)),
]


def _install(root, case: Case):
    module = f"bad_{case.id.replace('-', '_')}"
    return make_distribution(root / case.id, case.distribution, "1.0", {case.id: module},
                             {module: PRELUDE + case.code, **dict(case.modules)})


def _warning(case: Case) -> str:
    return f"warning: {case.described} {case.reason} (LENNA_STRICT_PLUGINS=1 makes this fatal)"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Every broken distribution, each in its own directory for PYTHONPATH."""
    root = tmp_path_factory.mktemp("broken")
    return {case.id: _install(root, case) for case in CASES}


@pytest.fixture(scope="module")
def listed(installed):
    """``lenna plugins --json`` with every broken distribution installed together."""
    return run_lenna("plugins", "--json", pythonpath=list(installed.values()))


@pytest.fixture(scope="module")
def featured(installed):
    """``lenna features`` of a bundled source and featurizer, first without any broken
    distribution, then with all of them."""
    return run_lenna(*FEATURES), run_lenna(*FEATURES, pythonpath=list(installed.values()))


def test_every_case_is_a_distinct_breakage():
    assert len(CASES) >= 15
    assert len({case.id for case in CASES}) == len({case.reason for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_lenna_plugins_lists_the_broken_plugin(listed, case):
    assert listed.returncode == 0, listed.stderr
    rows = [row for row in json.loads(listed.stdout) if row["distribution"] == case.distribution]
    kind, name = case.row or ("plugin", case.id)
    assert rows == [{"kind": kind, "name": name, "distribution": case.distribution,
                     "version": "1.0", "available": False, "reason": case.reason,
                     "broken": True}]
    warnings = listed.stderr.splitlines()
    assert (_warning(case) in warnings) is (case.row is None)


def test_lenna_plugins_warns_once_per_broken_plugin_and_lists_the_bundled_ones(listed):
    warned = sorted(line for line in listed.stderr.splitlines() if line)
    assert warned == sorted(_warning(case) for case in CASES if case.row is None)
    bundled = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)
               if r["distribution"] == "lenna"}
    assert bundled["featurizer", "layer-stats"]["available"] is True
    assert bundled["backend", "onnxruntime"]["broken"] is False


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_command_using_bundled_plugins_still_works(featured, case):
    alone, among_broken = featured
    assert alone.returncode == 0 and among_broken.returncode == 0, among_broken.stderr
    assert json.loads(among_broken.stdout) == json.loads(alone.stdout)
    assert (_warning(case) in among_broken.stderr.splitlines()) is (case.row is None)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_strict_plugins_make_it_one_error_line(installed, case):
    result = run_lenna(*FEATURES, pythonpath=[installed[case.id]], env=STRICT)
    assert_one_line_error(result)
    assert result.stderr.strip() == f"error: {case.described} {case.reason}"


def test_a_constructor_that_raises_is_one_error_line_naming_the_distribution(tmp_path):
    code = PRELUDE + (
        "\n\nclass Exploding:\n    name = 'exploding'\n    def __init__(self):\n"
        "        raise OSError('no dataset mounted\\nat /data')\n"
        "    def sample(self, rng):\n        pass\n    def from_spec(self, spec):\n"
        "        pass\n\n@hookimpl\ndef lenna_register_sources():\n    return [Exploding]\n")
    dist = make_distribution(tmp_path, "exploding-dist", "2.1", {"exploding": "exploding_src"},
                             {"exploding_src": code})
    result = run_lenna("features", "--source", "exploding", "--seed", "0", pythonpath=[dist])
    assert_one_line_error(result)
    assert result.stderr.strip() == ("error: source 'exploding' from exploding-dist 2.1 failed "
                                     "to start: OSError: no dataset mounted")


class Exploding:
    """An estimator whose constructor fails as the test says."""

    name = "exploding"
    get_params = set_params = fit = predict = save = lambda self, *args, **kwargs: None
    load = classmethod(lambda cls, directory, params: cls())

    def __init__(self, error: str = "runtime"):
        raise {"runtime": RuntimeError("out of licences"), "value": ValueError("bad alpha"),
               "lenna": LennaError("alpha must be positive")}[error]


class Flaky(Exploding):
    name = "flaky"

    @classmethod
    def unavailable_reason(cls):
        raise KeyError("CUDA_HOME")


def _registry():
    module = types.SimpleNamespace(lenna_register_estimators=hookimpl(lambda: [Exploding, Flaky]))
    return make_registry({"fake": module}, use_entry_points=False)


@pytest.mark.parametrize(("error", "raised", "message"), [
    ("runtime", PluginError,
     "estimator 'exploding' from fake local failed to start: RuntimeError: out of licences"),
    ("value", LennaError, "bad option for estimator exploding: bad alpha"),
    ("lenna", LennaError, "alpha must be positive"),
])
def test_create_turns_a_failing_constructor_into_one_line(error, raised, message):
    with pytest.raises(raised) as caught:
        _registry().create("estimator", "exploding", {"error": error})
    assert type(caught.value) is raised and str(caught.value) == message


def test_a_failing_availability_check_refuses_the_plugin_and_keeps_listing(capsys):
    registry = _registry()
    with pytest.raises(PluginError) as caught:
        registry.get_available("estimator", "flaky")
    assert str(caught.value) == ("estimator 'flaky' from fake local failed its availability "
                                 "check: KeyError: 'CUDA_HOME'")
    rows = {row.name: (row.available, row.broken, row.reason) for row in registry.rows()}
    assert rows == {"exploding": (True, False, None),
                    "flaky": (False, True, "failed its availability check: KeyError: "
                                           "'CUDA_HOME'")}
    assert capsys.readouterr().err == ""


class RaisingName(type):
    @property
    def name(cls):
        raise RuntimeError("name is computed lazily\nfrom a file")


def test_a_class_whose_attributes_raise_makes_its_plugin_broken(capsys):
    broken = RaisingName("Lazy", (), {})
    module = types.SimpleNamespace(lenna_register_backends=hookimpl(lambda: [broken]))
    registry = make_registry({"lazy": module}, use_entry_points=False)
    assert registry.names("backend") == []
    assert [(b.name, b.failure, b.reason) for b in registry.loaded.broken] == [
        ("lazy", "failed to register", "its classes raised RuntimeError: name is computed "
                                       "lazily")]
    assert capsys.readouterr().err.count("warning: plugin 'lazy' from lazy local") == 1


def test_strict_plugins_fail_on_a_failing_availability_check_at_once(monkeypatch):
    monkeypatch.setenv("LENNA_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"^estimator 'flaky' from fake local failed its "
                                          r"availability check: KeyError: 'CUDA_HOME'$"):
        _registry()
