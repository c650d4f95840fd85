"""The host: the host part of a target's fingerprint (CPU, cores, memory, GPUs, OS and
Python), the memory available, a workload's lower bound and a process's peak RSS."""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from lenna_core.ir.weights import parameter_bytes
from lenna_core.records import Workload


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


def _status_kib(field: str, path: str = "/proc/self/status") -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_bytes() -> int | None:
    """MemAvailable of the host, or None where /proc/meminfo is missing."""
    kib = _status_kib("MemAvailable", "/proc/meminfo")
    return None if kib is None else kib * 1024


def minimum_bytes(workload: Workload) -> int:
    """A lower bound of the memory a workload needs: its weights and largest activation."""
    graph = workload.architecture.graph
    largest = max(math.prod(shape) for shape in graph.shapes.values())
    factor = 3 if workload.mode == "training" else 1  # weights, gradients, optimizer state
    return factor * parameter_bytes(graph) + 4 * workload.batch_size * largest


def reset_peak_rss() -> None:
    """Reset this process's high-water mark (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def rss_bytes() -> int | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_bytes() -> int | None:
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def set_cpu_affinity(cpus: tuple[int, ...] | None) -> None:
    """Pin this process to ``cpus`` (where the OS supports it)."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(cpus))
