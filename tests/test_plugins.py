"""Plugin discovery: the registry, isolation of broken plugins, duplicates, unknown names."""

from __future__ import annotations

import json
import types

import pytest
from conftest import make_distribution

from lenna_core.api import hookimpl
from lenna_core.errors import PluginError
from lenna_core.plugins.registry import make_registry

HEAVY = ("torch", "tensorflow", "onnxruntime", "lightgbm", "sklearn")


def fake_plugin(**hooks):
    module = types.ModuleType("fake")
    for name, classes in hooks.items():
        setattr(module, name, hookimpl(lambda classes=classes: classes))
    return module


class BackendStub:
    """The members every backend needs, doing nothing."""

    def fingerprint(self):
        return {}

    def prepare(self, workload):
        raise NotImplementedError


class FakeBackend(BackendStub):
    name = "fake-backend"


class GhostBackend(BackendStub):
    name = "ghost-backend"
    requires = ("a_module_that_is_not_installed",)
    extra = "ghost"


class NoDeviceBackend(BackendStub):
    name = "nodevice"

    @classmethod
    def unavailable_reason(cls):
        return "no CUDA device"


def test_fakes_register_per_test_without_entry_points():
    registry = make_registry(
        {"fake": fake_plugin(lenna_register_backends=[FakeBackend, GhostBackend])},
        use_entry_points=False)
    assert registry.names("backend") == ["fake-backend", "ghost-backend"]
    assert registry.get("backend", "fake-backend") is FakeBackend
    assert registry.names("estimator") == []


def test_unknown_name_lists_available_and_closest():
    registry = make_registry({"fake": fake_plugin(lenna_register_backends=[FakeBackend])},
                             use_entry_points=False)
    with pytest.raises(PluginError, match=r"unknown backend 'fake-backnd'; available: "
                                          r"fake-backend; did you mean 'fake-backend'\?"):
        registry.get("backend", "fake-backnd")


def test_unavailable_plugins_say_why():
    registry = make_registry(
        {"fake": fake_plugin(lenna_register_backends=[GhostBackend, NoDeviceBackend])},
        use_entry_points=False)
    rows = {r.name: r for r in registry.rows()}
    assert not rows["ghost-backend"].available
    assert "missing a_module_that_is_not_installed" in rows["ghost-backend"].reason
    assert "lenna[ghost]" in rows["ghost-backend"].reason
    assert rows["nodevice"].reason == "no CUDA device"
    with pytest.raises(PluginError, match="backend 'nodevice' is unavailable: no CUDA device"):
        registry.get_available("backend", "nodevice")


def test_duplicate_names_keep_the_first_and_name_both_distributions():
    class Other(BackendStub):
        name = "fake-backend"

    registry = make_registry({"one": fake_plugin(lenna_register_backends=[FakeBackend]),
                              "two": fake_plugin(lenna_register_backends=[Other])},
                             use_entry_points=False)
    assert registry.get("backend", "fake-backend") is FakeBackend
    assert [b.reason for b in registry.loaded.broken] == [
        "backend name 'fake-backend' is registered twice: by one local and by two local; "
        "uninstall one of them"]


def test_names_must_be_kebab_case():
    class Bad:
        name = "Bad_Name"

    registry = make_registry({"x": fake_plugin(lenna_register_estimators=[Bad])},
                             use_entry_points=False)
    assert registry.names("estimator") == []
    assert [b.reason for b in registry.loaded.broken] == [
        "estimator class test_names_must_be_kebab_case.<locals>.Bad needs a lowercase-kebab "
        "'name' attribute, got 'Bad_Name'"]


def test_bundled_plugins_are_found_through_entry_points(lenna):
    result = lenna("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert set(rows[0]) == {"kind", "name", "distribution", "version", "available", "reason",
                            "broken"}
    found = {(r["kind"], r["name"]) for r in rows if r["distribution"] == "lenna"}
    assert {("source", "resnet-family"), ("source", "conv-layers"), ("backend", "onnxruntime"),
            ("backend", "torch-cpu"), ("featurizer", "layer-stats"), ("estimator", "lightgbm"),
            ("estimator", "linear"), ("estimator", "random-forest")} <= found


@pytest.mark.parametrize("args", [("--help",), ("plugins",), ("plugins", "--json")])
def test_help_and_plugins_import_no_framework(lenna, args, tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys, runpy\n"
        f"sys.argv = ['lenna', *{list(args)!r}]\n"
        "try:\n    runpy.run_module('lenna_core', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True,
                            timeout=120)
    assert "HEAVY []" in result.stderr, result.stderr


BROKEN = {"broken_plugin": "raise ImportError('needs libfoo 9')\n"}


def test_broken_plugin_is_one_warning_and_a_row(lenna, tmp_path):
    dist = _broken(tmp_path)
    result = lenna("plugins", "--json", pythonpath=[dist])
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "plugin 'broken' from broken-dist 0.3 failed to load" in warnings[0]
    assert "needs libfoo 9" in warnings[0]
    assert "Traceback" not in result.stderr
    row = next(r for r in json.loads(result.stdout) if r["name"] == "broken")
    assert row["available"] is False and row["distribution"] == "broken-dist"


def test_strict_plugins_make_a_broken_plugin_fatal(lenna, tmp_path):
    result = lenna("plugins", pythonpath=[_broken(tmp_path)],
                   env={"LENNA_STRICT_PLUGINS": "1"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: plugin 'broken' from broken-dist 0.3")
    assert "Traceback" not in result.stderr


def test_duplicate_from_another_distribution_names_both(lenna, tmp_path):
    code = """
        from lenna_core.api import EstimatorBase, hookimpl

        class Linear(EstimatorBase):
            name = "linear"
            fit = predict = save = lambda self, *args: self
            load = classmethod(lambda cls, directory, params: cls())

        @hookimpl
        def lenna_register_estimators():
            return [Linear]
    """
    dist = make_distribution(tmp_path, "dupe-dist", "1.2", {"dupe": "dupe_plugin"},
                             {"dupe_plugin": code})
    result = lenna("plugins", "--json", pythonpath=[dist])
    assert result.returncode == 0, result.stderr
    row = next(r for r in json.loads(result.stdout) if r["distribution"] == "dupe-dist")
    assert row["reason"] == ("failed to register: estimator name 'linear' is registered twice: "
                             "by lenna 0.1.0 and by dupe-dist 1.2; uninstall one of them")


def _broken(tmp_path):
    return make_distribution(tmp_path, "broken-dist", "0.3", {"broken": "broken_plugin"},
                             BROKEN)
