"""The host part of a target's fingerprint: CPU, cores, memory, GPUs, OS and Python."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> int:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    except (ValueError, OSError, AttributeError):
        return 0


DEVICE_FILES = (Path("/dev/nvidia0"), Path("/dev/dxg"))
"""Files that exist when a GPU is usable (``/dev/dxg`` is the GPU of WSL2)."""
GPU_DIRECTORY = Path("/proc/driver/nvidia/gpus")
"""The NVIDIA driver lists one entry per GPU here."""


def has_cuda_device() -> bool:
    """Whether an NVIDIA GPU is present, judged from device files without any framework."""
    if any(path.exists() for path in DEVICE_FILES):
        return True
    try:
        return any(GPU_DIRECTORY.iterdir())
    except OSError:
        return False


def _gpus() -> list[dict[str, Any]]:
    """NVIDIA GPUs with their memory, from nvidia-smi when it is installed."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        name, _, memory = line.rpartition(",")
        gpus.append({"name": name.strip(), "memory_mib": int(memory) if memory.strip().isdigit()
                     else None})
    return gpus


@cache
def host_fingerprint() -> dict[str, Any]:
    """Facts about this machine that change latency; stable across processes."""
    return {
        "cpu": _cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "gpus": _gpus(),
    }
