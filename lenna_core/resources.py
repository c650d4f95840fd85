"""Host memory: what is available, a workload's lower bound, and a process's peak RSS."""

from __future__ import annotations

import math
import os
from pathlib import Path

from lenna_core.ir.weights import parameter_bytes
from lenna_core.records import Workload


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
