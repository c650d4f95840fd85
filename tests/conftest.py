"""Shared test helpers: run the CLI in a subprocess, check its one-line errors, fake installed
distributions, the chaos backend and its workloads, test graphs, and the plugin registry."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lenna_core.ir import Graph, GraphBuilder
from lenna_core.plugins.registry import Registry, make_registry
from lenna_core.records import Architecture, Workload

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


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Assert that ``lenna`` exited with 2 and one ``error:`` line holding every fragment."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


CHAOS = '''
import os, signal, time
from lenna_core.api import hookimpl


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


def chaos_workload(width: int, behaviour: str = "ok") -> Workload:
    """A one-convolution workload the chaos backend runs as a sleep of ``width`` × 0.1 ms, or
    fails as ``behaviour`` says."""
    b = GraphBuilder()
    y = b.add_node("conv2d", b.input((3, 8, 8)), out_channels=width, kernel_size=3)
    spec = {"sleep": width * 1e-4, "behaviour": behaviour}
    return Workload(Architecture("test", spec, b.build(y)))


def cnn_graph() -> Graph:
    """A small CNN using every image op, with groups, dilation, strides and pool padding."""
    b = GraphBuilder()
    x = b.input((4, 13, 13))
    conv = b.add_node("conv2d", x, out_channels=8, kernel_size=3, stride=2, padding=2,
                      dilation=2, groups=2, bias=True)
    bn = b.add_node("batchnorm", conv)
    act = b.add_node("hardswish", b.add_node("relu6", b.add_node("relu", bn)))
    gate = b.add_node("sigmoid", conv)
    gelu = b.add_node("identity", b.add_node("gelu", conv))
    summed = b.add_node("add", b.add_node("add", act, gate, gelu), gate)
    pools = [
        b.add_node("maxpool", summed, kernel_size=3, stride=2, padding=1, ceil_mode=True),
        b.add_node("avgpool", summed, kernel_size=3, stride=2, padding=1,
                   count_include_pad=True, ceil_mode=True),
        b.add_node("avgpool", summed, kernel_size=3, stride=2, padding=1),
        b.add_node("zero", summed, stride=2),
    ]
    cat = b.add_node("concat", *pools)
    flat = b.add_node("flatten", b.add_node("global_avgpool", cat))
    hidden = b.add_node("linear", b.add_node("batchnorm", flat), out_features=6)
    return b.build(b.add_node("linear", hidden, out_features=3, bias=False), cat)


def lstm_graph() -> Graph:
    """Stacked LSTMs, a zero, an add along time and a concat on the feature axis."""
    b = GraphBuilder()
    x = b.input((5, 6))
    seq = b.add_node("lstm", x, hidden_size=4, num_layers=2)
    seq = b.add_node("lstm", seq, hidden_size=3)
    both = b.add_node("concat", seq, b.add_node("add", seq, b.add_node("zero", seq)), axis=1)
    return b.build(b.add_node("linear", b.add_node("flatten", both), out_features=2))


def mobile_graph() -> Graph:
    """MobileNetV3, EfficientNet and ShuffleNet pieces: silu, a squeeze-excitation scale
    (hardsigmoid, a broadcasting mul), a channel split, concat and channel shuffle, slices and
    products on the other axes and on feature vectors."""
    b = GraphBuilder()
    x = b.input((8, 9, 10))
    x = b.add_node("silu", b.add_node("batchnorm", b.add_node(
        "conv2d", x, out_channels=8, kernel_size=3, padding=1)))
    squeezed = b.add_node("conv2d", b.add_node("global_avgpool", x), out_channels=8,
                          kernel_size=1, bias=True)
    x = b.add_node("mul", b.add_node("hardsigmoid", squeezed), x)
    left = b.add_node("slice", x, start=0, end=4)
    right = b.add_node("slice", x, start=4, end=8)
    right = b.add_node("relu", b.add_node("conv2d", right, out_channels=8, kernel_size=1))
    x = b.add_node("channel_shuffle", b.add_node("concat", left, right), groups=3)
    x = b.add_node("channel_shuffle", x, groups=2)
    rows = b.add_node("slice", x, axis=1, start=2, end=7)
    scaled = b.add_node("mul", rows, b.add_node("slice", rows, axis=2, start=3, end=4))
    vector = b.add_node("linear", b.add_node("flatten", scaled), out_features=6)
    product = b.add_node("mul", b.add_node("slice", vector, start=0, end=3),
                         b.add_node("silu", b.add_node("slice", vector, start=3, end=6)))
    return b.build(scaled, product)


def dropped_window_graph() -> Graph:
    """Ceil-mode pools whose last window would start in the padding, so they drop it."""
    b = GraphBuilder()
    x = b.input((2, 7, 9))
    pools = [b.add_node(op, x, kernel_size=2, padding=1, ceil_mode=True)
             for op in ("maxpool", "avgpool")]
    pools.append(b.add_node("avgpool", x, kernel_size=2, padding=1, count_include_pad=True))
    return b.build(b.add_node("concat", *pools))


#: The test graphs by name; together they use every op of the Graph IR.
GRAPHS = {"cnn": cnn_graph, "lstm": lstm_graph, "mobile": mobile_graph,
          "dropped-window": dropped_window_graph}


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The installed plugins, loaded once for the tests that ask for them."""
    return make_registry()


@pytest.fixture
def lenna():
    """``run_lenna`` as a fixture."""
    return run_lenna
