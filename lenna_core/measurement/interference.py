"""What else happened on the CPUs while a workload was timed.

Two signals, chosen by experiment (docs/measurement.md, "Interference"):

- per timed run, the time the worker's threads spent *waiting for a CPU* while runnable
  (the run-queue delay of ``/proc/self/task/*/schedstat``, in ns): another process held the
  core one of the workload's threads needed, so the run took longer than the work it did;
- per pass, how many CPUs' worth of time *other processes* used (``/proc/stat`` busy time of
  the usable CPUs minus the worker's own CPU time, over the pass's wall time): what load the
  label was taken under. It matters even when no thread waited: a process busy on another
  core slows the workload through what the cores share (caches, memory, a host's
  hyperthreads), and nothing else shows it.

Where ``/proc`` is missing both read as unknown and no sample is ever discarded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import attrs

PROC = Path("/proc")


class ThreadWaits:
    """Run-queue delay summed over this process's threads, read cheaply (one ``pread`` each).

    Open it after the workload's thread pools exist (after warm-up); threads started later
    are not seen. ``available`` is False where schedstat is missing.
    """

    def __init__(self, proc: Path = PROC) -> None:
        self._fds: list[int] = []
        task = proc / "self" / "task"
        try:
            tids = os.listdir(task)
        except OSError:
            tids = []
        for tid in tids:
            try:
                self._fds.append(os.open(task / tid / "schedstat", os.O_RDONLY))
            except OSError:
                continue  # the thread ended meanwhile

    @property
    def available(self) -> bool:
        return bool(self._fds)

    def wait_ns(self) -> int:
        """Total ns the threads have waited on a run queue so far (0 when unavailable)."""
        total = 0
        for fd in self._fds:
            try:
                total += int(os.pread(fd, 128, 0).split()[1])
            except (OSError, IndexError, ValueError):
                continue  # a thread that ended no longer waits
        return total

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def __enter__(self) -> ThreadWaits:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cpu_columns(proc: Path = PROC) -> dict[int, tuple[int, ...]] | None:
    """Per-CPU columns of /proc/stat (user nice system idle iowait irq softirq steal), in
    clock ticks; None where the file is missing or unreadable."""
    try:
        text = (proc / "stat").read_text()
    except (OSError, UnicodeDecodeError):
        return None
    cpus = {}
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit():
            cpus[int(name[3:])] = tuple(int(v) for v in rest.split()[:8])
    return cpus


def _cpu_times(proc: Path, cpus: set[int]) -> tuple[int, int] | None:
    """(busy, total) ticks summed over ``cpus``; steal counts as busy."""
    columns = cpu_columns(proc)
    if columns is None:
        return None
    busy = total = 0
    for cpu, values in columns.items():
        if cpu in cpus:
            total += sum(values)
            busy += sum(values) - values[3] - values[4]  # less idle and iowait
    return (busy, total) if total else None


@attrs.frozen
class HostLoad:
    """How many CPUs' worth of time other processes used over a window (1.0: one whole CPU),
    out of the usable ``cpus``."""

    others_cpus: float | None
    cpus: tuple[int, ...]


MIN_JIFFIES = 20
"""A shorter window (in clock ticks over all CPUs, 10 ms each) is too coarse to tell."""


class HostLoadWindow:
    """Start a window with the constructor, end it with :meth:`stop`."""

    def __init__(self, proc: Path = PROC) -> None:
        self._proc = proc
        self._cpus = (set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else set(range(os.cpu_count() or 1)))
        self._start = _cpu_times(proc, self._cpus)
        self._own = _own_cpu_seconds()

    def stop(self) -> HostLoad:
        end = _cpu_times(self._proc, self._cpus)
        cpus = tuple(sorted(self._cpus))
        if self._start is None or end is None or end[1] - self._start[1] < MIN_JIFFIES:
            return HostLoad(None, cpus)
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        busy = (end[0] - self._start[0]) / hz
        total = (end[1] - self._start[1]) / hz
        others = busy - (_own_cpu_seconds() - self._own)
        return HostLoad(max(0.0, others / total) * len(cpus), cpus)


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def is_clean(duration_ns: float, wait_ns: float, max_wait: float) -> bool:
    """Whether a run is clean: its threads waited at most ``max_wait`` of its duration."""
    return wait_ns <= max_wait * duration_ns


def clean_mask(samples_ns: Sequence[int], wait_ns: Sequence[int],
               max_wait: float) -> list[bool]:
    """:func:`is_clean` of every sample; without wait readings (an old or imported
    measurement) every sample is clean."""
    if len(wait_ns) != len(samples_ns):
        return [True] * len(samples_ns)
    return [is_clean(s, w, max_wait) for s, w in zip(samples_ns, wait_ns, strict=True)]
