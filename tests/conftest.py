"""Shared test helpers: run the CLI in a subprocess and fake installed distributions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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


@pytest.fixture
def lenna():
    return run_lenna
