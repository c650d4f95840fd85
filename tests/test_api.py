"""The public plugin API: what plugins import, optional members' defaults, unknown hooks."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

import lenna_core
from lenna_core import api
from lenna_core.api import (
    BackendBase,
    EstimatorBase,
    PluginError,
    SourceBase,
    estimator_class,
    hookimpl,
    optional,
)
from lenna_core.plugins.loading import BrokenPlugin, load_plugins
from lenna_core.plugins.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "tensorflow", "onnxruntime", "sklearn", "lightgbm", "pandas", "scipy")
TYPO_REASON = ("unknown hook 'lenna_register_estimator' "
               "(did you mean 'lenna_register_estimators'?)")


def _plugin_files() -> list[Path]:
    return sorted([*ROOT.glob("plugins/**/*.py"), *ROOT.glob("examples/**/*.py")])


def _core_imports(path: Path) -> list[tuple[str, list[str]]]:
    """Each ``lenna_core`` module ``path`` imports, with the names it takes from it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "lenna_core"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "lenna_core":
            found.append((node.module, [a.name for a in node.names]))
    return found


def test_plugins_and_examples_import_only_the_api():
    files = _plugin_files()
    assert len(files) >= 50 and any(f.parts[-3] == "lenna-example-plugin" for f in files)
    offenders = [(str(f.relative_to(ROOT)), module) for f in files
                 for module, _ in _core_imports(f) if module != "lenna_core.api"]
    assert offenders == []


def test_every_name_a_plugin_imports_is_public():
    imported = {name for f in _plugin_files() for _, names in _core_imports(f) for name in names}
    assert sorted(imported - set(api.__all__)) == []


def test_every_public_name_resolves():
    assert [name for name in api.__all__ if not hasattr(api, name)] == []
    assert len(api.__all__) == len(set(api.__all__))
    assert api.hookimpl is hookimpl and api.EstimatorBase is EstimatorBase


def test_the_package_exports_only_its_version():
    assert lenna_core.__all__ == ["__version__"]
    assert not hasattr(lenna_core, "hookimpl")


def test_importing_the_api_loads_no_ml_framework():
    code = ("import sys, lenna_core.api\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {set(HEAVY)!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert (result.returncode, result.stdout) == (0, "[]\n"), result.stderr


class Bare:
    """A plugin that declares no optional member."""

    name = "bare"


def test_optional_members_default_to_what_the_bases_declare():
    plugin = Bare()
    assert optional(plugin, "requires") == ()
    assert optional(plugin, "extra") is None
    assert optional(plugin, "unavailable_reason")() is None
    assert optional(Bare, "unavailable_reason")() is None
    assert optional(plugin, "workload_settings")("any architecture") == {}
    assert optional(plugin, "children") is None
    assert optional(plugin, "canonical_spec") is None
    assert optional(plugin, "spec_field") is None
    assert optional(plugin, "default_features") == "layer-stats"
    assert optional(Bare, "modes") == ("inference",)
    assert optional(Bare, "optimizers") == ()
    assert optional(Bare, "op_vocabulary") == {}
    assert optional(plugin, "timed_run") is None
    assert optional(plugin, "profile") is None
    assert optional(plugin, "peak_device_memory") is None
    assert optional(plugin, "target_transform") == "log"
    assert optional(plugin, "multi_output") is False
    assert optional(plugin, "param_grid") == {}


def test_a_subclass_of_a_base_reads_the_same_defaults():
    class Source(SourceBase):
        name = "plain"

    class Backend(BackendBase):
        name = "plain"

    class Estimator(EstimatorBase):
        name = "plain"

    source = Source()
    assert source.workload_settings("any architecture") == {}
    assert (source.children, source.canonical_spec, source.spec_field) == (None, None, None)
    assert source.default_features == "layer-stats"
    assert (Backend.modes, Backend.optimizers, Backend.op_vocabulary) == (("inference",), (), {})
    assert (Estimator.target_transform, Estimator.multi_output, Estimator.param_grid) == \
        ("log", False, {})
    assert (Source.requires, Source.extra, Source.unavailable_reason()) == ((), None, None)


def test_optional_members_a_plugin_declares_win():
    class Fixed:
        name = "fixed"
        target_transform = "identity"
        modes = ("inference", "training")

        def workload_settings(self, arch):
            return {"batch_size": 4, "arch": arch}

    assert optional(Fixed(), "workload_settings")("a") == {"batch_size": 4, "arch": "a"}
    assert optional(Fixed, "target_transform") == "identity"
    assert optional(Fixed(), "modes") == ("inference", "training")


def test_bundled_plugins_declare_their_optional_members():
    from lenna_nasbench201.source import NasBench201Source
    from lenna_resnet.source import ResNetFamilySource

    assert optional(NasBench201Source, "spec_field") == "arch"
    assert optional(NasBench201Source, "default_features") == "nb201-encoding"
    assert optional(ResNetFamilySource, "spec_field") is None
    assert optional(ResNetFamilySource(), "canonical_spec") is None


def test_an_unknown_optional_member_is_a_key_error():
    with pytest.raises(KeyError, match="'target_transfrom' is not an optional plugin member"):
        optional(Bare(), "target_transfrom")


class FakeBackend:
    name = "fake-backend"

    def fingerprint(self):
        return {}

    def prepare(self, workload):
        raise NotImplementedError


class BareEstimator(Bare):
    """Bare with the members every estimator needs, doing nothing."""

    get_params = set_params = fit = predict = save = lambda self, *args, **kwargs: None
    load = classmethod(lambda cls, directory, params: cls())


def _typo_plugin() -> types.ModuleType:
    """A plugin whose estimator hook is misspelt, next to a correct backend hook."""
    module = types.ModuleType("typo")
    module.lenna_register_estimator = hookimpl(lambda: [BareEstimator])
    module.lenna_register_backends = hookimpl(lambda: [FakeBackend])
    return module


def test_a_misspelt_hook_makes_the_plugin_broken(capsys):
    good = types.SimpleNamespace(lenna_register_estimators=hookimpl(lambda: [BareEstimator]))
    loaded = load_plugins({"typo": _typo_plugin(), "good": good}, use_entry_points=False)
    assert loaded.broken == [BrokenPlugin("typo", "typo", "local", TYPO_REASON)]
    assert list(loaded.origins) == ["good"]
    registry = Registry(loaded)
    assert registry.names("backend") == []
    assert registry.get("estimator", "bare") is BareEstimator  # registered once: by the good plugin
    assert capsys.readouterr().err == (f"warning: plugin 'typo' from typo local failed to load: "
                                       f"{TYPO_REASON} (LENNA_STRICT_PLUGINS=1 makes this "
                                       "fatal)\n")


def test_a_misspelt_hook_is_fatal_with_strict_plugins(monkeypatch):
    monkeypatch.setenv("LENNA_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError) as raised:
        load_plugins({"typo": _typo_plugin()}, use_entry_points=False)
    assert str(raised.value) == f"plugin 'typo' from typo local failed to load: {TYPO_REASON}"


def test_an_optional_unknown_hook_is_allowed():
    module = types.ModuleType("extension")
    module.some_other_project_hook = hookimpl(optionalhook=True)(lambda: [])
    module.lenna_register_backends = hookimpl(lambda: [FakeBackend])
    loaded = load_plugins({"extension": module}, use_entry_points=False)
    assert loaded.broken == []
    assert Registry(loaded).names("backend") == ["fake-backend"]


def test_a_misspelt_hook_in_an_installed_distribution_is_a_broken_row(tmp_path, monkeypatch):
    from conftest import make_distribution

    code = """
        from lenna_core.api import hookimpl

        class Chaos:
            name = "chaos-typo"

        @hookimpl
        def lenna_register_backend():
            return [Chaos]
    """
    path = make_distribution(tmp_path, "typo-dist", "2.0", {"typo": "typo_plugin"},
                             {"typo_plugin": code})
    monkeypatch.syspath_prepend(str(path))
    registry = Registry(load_plugins())
    rows = [row for row in registry.rows() if row.distribution == "typo-dist"]
    assert [(r.kind, r.name, r.version, r.available, r.reason) for r in rows] == [
        ("plugin", "typo", "2.0", False,
         "failed to load: unknown hook 'lenna_register_backend' "
         "(did you mean 'lenna_register_backends'?)")]
    assert "chaos-typo" not in registry.names("backend")
    assert "resnet-family" in registry.names("source")


def test_estimator_class_loads_the_plugins_once(monkeypatch):
    from lenna_ensemble.estimator import EnsembleEstimator
    from lenna_sklearn.estimators import RidgeEstimator

    calls = []

    def counting_registry():
        calls.append(1)
        return real()

    real = api.make_registry
    api._installed.cache_clear()
    monkeypatch.setattr(api, "make_registry", counting_registry)
    assert estimator_class("ensemble") is EnsembleEstimator
    assert estimator_class("ridge") is RidgeEstimator
    assert calls == [1]
    with pytest.raises(PluginError, match=r"^unknown estimator 'ridgge'; available: .*"
                                          r"did you mean 'ridge'\?$"):
        estimator_class("ridgge")

