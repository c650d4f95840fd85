"""Shared test helpers: run the CLI in a subprocess and fake installed distributions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# As the tensorflow backend does before it imports TensorFlow: tests that import it themselves
# need oneDNN's CPU kernels too (without AVX-512 TensorFlow leaves them off).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def make_distribution(where: Path, name: str, version: str, entry_points: dict[str, str],
                      modules: dict[str, str]) -> Path:
    """Write modules and a dist-info with ``lenna`` entry points into ``where``; return it."""
    where.mkdir(parents=True, exist_ok=True)
    for module, code in modules.items():
        (where / f"{module}.py").write_text(textwrap.dedent(code))
    info = where / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[lenna]\n{lines}\n")
    return where


def run_lenna(*args: str, cwd: Path | None = None, pythonpath: list[Path] = (),
              env: dict[str, str] | None = None, timeout: float = 600
              ) -> subprocess.CompletedProcess[str]:
    """Run ``lenna ARGS`` in a fresh interpreter and capture its output."""
    full_env = {**os.environ, **(env or {})}
    if pythonpath:
        full_env["PYTHONPATH"] = os.pathsep.join(
            [*(str(p) for p in pythonpath), full_env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "lenna_core", *args], cwd=cwd or ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


CHAOS = '''
import os, signal, time
from lenna_core import hookimpl


class Runner:
    def __init__(self, seconds):
        self.seconds = seconds

    def run(self):
        time.sleep(self.seconds)

    def close(self):
        pass


class ChaosBackend:
    """Behaves as the workload's spec says: crash, kill, hang, raise, or sleep (1 ms)."""

    name = "chaos"

    def __init__(self, threads=None):
        pass

    def fingerprint(self):
        return {"chaos": "1", "pid_free": True}

    def prepare(self, workload):
        behaviour = workload.architecture.spec.get("behaviour")
        if behaviour == "crash":
            os.abort()
        if behaviour == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if behaviour == "hang":
            time.sleep(3600)
        if behaviour == "raise":
            raise RuntimeError("unsupported kernel in layer 3\\ndetails")
        return Runner(workload.architecture.spec.get("sleep", 0.001))


@hookimpl
def lenna_register_backends():
    return [ChaosBackend]
'''




@pytest.fixture
def chaos_backend(tmp_path, monkeypatch):
    """Install the ``chaos`` backend, a real plugin whose failures are chosen by the spec."""
    path = make_distribution(tmp_path / "chaos", "chaos-dist", "0.1",
                             {"chaos": "chaos_backend"}, {"chaos_backend": CHAOS})
    monkeypatch.syspath_prepend(str(path))  # worker processes start with the parent's path
    return path


@pytest.fixture
def lenna():
    return run_lenna
