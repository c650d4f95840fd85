"""Is this host fit to measure latency right now? Checks of load, frequency, SMT, cgroup quota,
steal, memory and CPU pressure, read from /proc and /sys (Linux; elsewhere they are unknown).

Every path is read under ``root``, so tests can build a fake /proc and /sys; the checks that
compare two readings take them ``seconds`` apart, with ``sleep`` in between.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from lenna_core.errors import LennaError
from lenna_core.measurement.interference import cpu_columns

STATUSES = ("ok", "warn", "bad", "unknown")
CHECKS = ("load", "frequency", "smt", "cgroup_quota", "steal", "memory", "cpu_pressure")
"""Every check, in the order they are reported."""
FAST_CHECKS = ("load", "steal", "cgroup_quota", "cpu_pressure")
"""The checks of :func:`quick_warning`: the ones that say whether a campaign is contended."""
MAX_SECONDS = 60.0

LOAD_WARN, LOAD_BAD = 0.10, 0.50
STEAL_WARN, STEAL_BAD = 0.02, 0.10
MEMORY_WARN, MEMORY_BAD = 0.20, 0.05
MEMORY_PRESSURE_WARN, MEMORY_PRESSURE_BAD = 1.0, 10.0
CPU_PRESSURE_WARN, CPU_PRESSURE_BAD = 0.05, 0.25

_RANK = {"ok": 0, "warn": 1, "bad": 2}
_IDLE, _IOWAIT, _STEAL = 3, 4, 7  # columns of a /proc/stat cpu line


@attrs.frozen
class Check:
    """One check: its status, the measured value (a share of 0..1 when ``unit`` is
    ``"fraction"``), a one-line detail, a one-line advice and the raw figures in ``data``."""

    name: str
    status: str
    value: Any = None
    unit: str = ""
    detail: str = ""
    advice: str = ""
    data: Mapping[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "value": self.value,
                "unit": self.unit, "detail": self.detail, "advice": self.advice,
                "data": dict(self.data)}

    @property
    def shown_value(self) -> str:
        """The value for a human: a percentage, a number with its unit, or ``-``."""
        if self.value is None:
            return "-"
        if self.unit == "fraction":
            return f"{self.value:.1%}"
        if isinstance(self.value, float):
            return f"{self.value:.3g} {self.unit}".strip()
        return f"{self.value} {self.unit}".strip()


@attrs.frozen
class Diagnosis:
    """The checks of one sampling window and their verdict: ``bad`` if any check is bad, else
    ``warn`` if any warns, else ``ok`` (unknown checks do not count)."""

    seconds: float
    checks: tuple[Check, ...]

    @property
    def verdict(self) -> str:
        return verdict(self.checks)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "seconds": self.seconds,
                "checks": [c.to_dict() for c in self.checks]}


def verdict(checks: Iterable[Check]) -> str:
    """The worst status among ``checks``, ignoring unknown ones."""
    return _worst(c.status for c in checks if c.status != "unknown")


def validate_seconds(seconds: float) -> float:
    """``seconds`` as a float, or a LennaError unless it is finite, > 0 and <= 60."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise LennaError(f"--seconds must be a number, not {seconds!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise LennaError(f"--seconds must be > 0 and <= {MAX_SECONDS:g}, not {seconds}")
    return value


def diagnose(seconds: float = 1.0, *, root: Path = Path("/"),
             sleep: Callable[[float], object] = time.sleep,
             clock: Callable[[], float] = time.monotonic,
             cpus: Iterable[int] | None = None) -> Diagnosis:
    """Run every check over a window of ``seconds`` (sampled once, shared by all checks).

    ``cpus`` are the CPUs this process may use (default: its affinity); ``sleep`` and
    ``clock`` wait and time the window, and tests swap them for fakes.
    """
    return _run(CHECKS, seconds, root, sleep, clock, cpus)


def quick_warning(seconds: float = 0.3, *, root: Path = Path("/"),
                  sleep: Callable[[float], object] = time.sleep,
                  clock: Callable[[], float] = time.monotonic,
                  cpus: Iterable[int] | None = None) -> str | None:
    """One ``warning: ...`` line when the fast checks (load, steal, cgroup quota, CPU pressure)
    warn or are bad over a short window, else None."""
    diagnosis = _run(FAST_CHECKS, seconds, root, sleep, clock, cpus)
    flagged = [c for c in diagnosis.checks if c.status in ("warn", "bad")]
    if not flagged:
        return None
    flagged.sort(key=lambda c: -_RANK[c.status])
    busy = any(c.name != "cgroup_quota" for c in flagged)
    reasons = "; ".join(c.detail.split("; ")[0] for c in flagged)
    return (f"warning: this host is {'busy' if busy else 'limited'}: {reasons}; labels may be "
            f"flagged as contended (see 'lenna doctor')")


# ---------------------------------------------------------------- reading /proc and /sys


def _read(root: Path, path: str) -> str | None:
    """The text of ``root/path``, or None where it is missing or unreadable."""
    try:
        return (root / path.lstrip("/")).read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _fields(text: str | None) -> dict[str, int]:
    """``Key: number ...`` lines (/proc/meminfo, cpu.stat) as a dict."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) >= 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _proc_stat(root: Path) -> dict[int, tuple[int, ...]] | None:
    """Per-CPU columns of /proc/stat (user nice system idle iowait irq softirq steal)."""
    return cpu_columns(root / "proc")


def _own_cpu(root: Path) -> tuple[int, int] | None:
    """This process's user+system clock ticks and the CPU it last ran on (/proc/self/stat)."""
    text = _read(root, "/proc/self/stat")
    if text is None:
        return None
    rest = text.rpartition(")")[2].split()  # rest[0] is field 3, the state
    return int(rest[11]) + int(rest[12]), int(rest[36]) if len(rest) > 36 else -1


def _pressure(root: Path, kind: str) -> dict[str, float] | None:
    """The ``some`` line of /proc/pressure/KIND: avg10, avg60, avg300, total (µs)."""
    text = _read(root, f"/proc/pressure/{kind}")
    for line in (text or "").splitlines():
        if line.startswith("some "):
            return {k: float(v) for k, v in (p.split("=") for p in line.split()[1:])}
    return None


def _swap_used_kib(root: Path) -> int | None:
    info = _fields(_read(root, "/proc/meminfo"))
    if "SwapTotal" not in info or "SwapFree" not in info:
        return None
    return info["SwapTotal"] - info["SwapFree"]


def _unescape(path: str) -> str:
    """A mountinfo path with its octal escapes (``\\040`` for a space) decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _cgroup_dirs(root: Path) -> list[tuple[int, Path, Path]] | None:
    """For each cgroup hierarchy with the CPU controller: (version, this process's cgroup
    directory, the hierarchy's mount point). None without /proc/self/cgroup."""
    text = _read(root, "/proc/self/cgroup")
    if text is None:
        return None
    paths: dict[int, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            paths[2] = parts[2]
        elif "cpu" in parts[1].split(","):
            paths[1] = parts[2]
    mounts: list[tuple[int, str, str]] = []  # version, mount point, mounted cgroup path
    for line in (_read(root, "/proc/self/mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] == "cgroup2":
            mounts.append((2, _unescape(fields[4]), _unescape(fields[3])))
        elif tail[0] == "cgroup" and "cpu" in tail[2].split(","):
            mounts.append((1, _unescape(fields[4]), _unescape(fields[3])))
    if not mounts:
        mounts = [(2, "/sys/fs/cgroup", "/"), (1, "/sys/fs/cgroup/cpu", "/"),
                  (1, "/sys/fs/cgroup/cpu,cpuacct", "/")]
    found = []
    for version, mount_point, mounted in mounts:
        if version not in paths:
            continue
        base = root / mount_point.lstrip("/")
        own = paths[version]
        if mounted != "/" and (own + "/").startswith(mounted.rstrip("/") + "/"):
            own = own[len(mounted.rstrip("/")):]
        leaf = base / own.lstrip("/")
        if not leaf.is_dir():  # a container that sees the host's path but mounts its own
            leaf = base
        if base.is_dir():
            found.append((version, leaf, base))
    return found


def _chain(leaf: Path, top: Path) -> list[Path]:
    """``leaf`` and its parents up to ``top``: every cgroup whose limits apply."""
    out = [leaf]
    while out[-1] != top and top in out[-1].parents:
        out.append(out[-1].parent)
    return out


def _throttled(dirs: list[tuple[int, Path, Path]] | None) -> dict[str, int]:
    out = {}
    for _, leaf, top in dirs or ():
        for directory in _chain(leaf, top):
            stat = _fields(_read(directory, "cpu.stat"))
            if "nr_throttled" in stat:
                out[str(directory)] = stat["nr_throttled"]
    return out


@attrs.frozen
class _Snapshot:
    time: float
    stat: dict[int, tuple[int, ...]] | None
    own: tuple[int, int] | None
    throttled: dict[str, int]
    cpu_pressure: dict[str, float] | None
    swap_used_kib: int | None


def _snapshot(root: Path, clock: Callable[[], float], cgroups) -> _Snapshot:
    return _Snapshot(time=clock(), stat=_guard(_proc_stat, root), own=_guard(_own_cpu, root),
                     throttled=_guard(_throttled, cgroups) or {},
                     cpu_pressure=_guard(_pressure, root, "cpu"),
                     swap_used_kib=_guard(_swap_used_kib, root))


def _guard(function, *args):
    """``function(*args)``, or None when a file is malformed."""
    try:
        return function(*args)
    except (ValueError, IndexError, KeyError, OSError):
        return None


@attrs.frozen
class _Window:
    """What the checks see: the two snapshots and the context of the window."""

    root: Path
    seconds: float
    cpus: tuple[int, ...]
    cgroups: list[tuple[int, Path, Path]] | None
    before: _Snapshot
    after: _Snapshot

    @property
    def elapsed(self) -> float:
        return max(self.after.time - self.before.time, 1e-9)

    def stat_delta(self) -> dict[int, tuple[int, ...]] | None:
        if self.before.stat is None or self.after.stat is None:
            return None
        return {cpu: tuple(max(a - b, 0) for a, b in zip(self.after.stat[cpu],
                                                         self.before.stat[cpu], strict=False))
                for cpu in self.cpus if cpu in self.before.stat and cpu in self.after.stat}


def _usable_cpus(root: Path, cpus: Iterable[int] | None) -> tuple[int, ...]:
    """The CPUs this process may use, limited to those /proc/stat lists when it exists."""
    stat = _guard(_proc_stat, root)
    if cpus is None:
        if hasattr(os, "sched_getaffinity"):
            cpus = os.sched_getaffinity(0)
        else:
            cpus = stat.keys() if stat else range(os.cpu_count() or 1)
    chosen = set(cpus)
    if stat and chosen & stat.keys():
        chosen &= stat.keys()
    elif stat:
        chosen = set(stat)
    return tuple(sorted(chosen))


def _run(names: tuple[str, ...], seconds: float, root: Path, sleep, clock, cpus) -> Diagnosis:
    seconds = validate_seconds(seconds)
    root = Path(root)
    usable = _usable_cpus(root, cpus)
    cgroups = _guard(_cgroup_dirs, root)
    before = _snapshot(root, clock, cgroups)
    sleep(seconds)
    after = _snapshot(root, clock, cgroups)
    window = _Window(root, seconds, usable, cgroups, before, after)
    checks = []
    for name in names:
        try:
            checks.append(_CHECKS[name](window))
        except (ValueError, IndexError, KeyError, OSError, ZeroDivisionError) as exc:
            checks.append(Check(name, "unknown", detail=f"unreadable: {exc}"))
    return Diagnosis(seconds, tuple(checks))


def _worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_RANK.__getitem__, default="ok")


def _status(value: float, warn: float, bad: float, *, below: bool = False) -> str:
    if below:
        return "bad" if value < bad else "warn" if value < warn else "ok"
    return "bad" if value > bad else "warn" if value > warn else "ok"


def _cpu_list(cpus: Iterable[int]) -> str:
    return ",".join(str(c) for c in cpus)


# ---------------------------------------------------------------- the checks


def _load(w: _Window) -> Check:
    delta = w.stat_delta()
    if delta is None:
        return Check("load", "unknown", detail="no /proc/stat (not Linux?)",
                     advice="measure with --threads 1 on a machine you know is quiet")
    own = 0
    if w.before.own is not None and w.after.own is not None:
        own = max(w.after.own[0] - w.before.own[0], 0)
    last = w.after.own[1] if w.after.own is not None else -1
    others: dict[int, int] = {}
    totals: dict[int, int] = {}
    for cpu, d in delta.items():
        totals[cpu] = sum(d)
        others[cpu] = totals[cpu] - d[_IDLE] - d[_IOWAIT] - (d[_STEAL] if len(d) > _STEAL else 0)
    # this process's own time: first from the CPU it last ran on, the rest from the busiest
    for cpu in sorted(others, key=lambda c: (c != last, -others[c])):
        taken = min(own, others[cpu])
        others[cpu] -= taken
        own -= taken
    shares = {cpu: others[cpu] / totals[cpu] if totals[cpu] else 0.0 for cpu in others}
    overall = sum(others.values()) / sum(totals.values()) if sum(totals.values()) else 0.0
    worst_cpu = max(shares, key=lambda c: (shares[c], -c), default=None)
    worst = shares.get(worst_cpu, 0.0)
    status = "bad" if overall > LOAD_BAD else "warn" if worst > LOAD_WARN else "ok"
    data: dict[str, Any] = {"per_cpu": {str(c): round(s, 4) for c, s in shares.items()},
                            "overall": round(overall, 4), "cpus": list(w.cpus)}
    detail = (f"other processes used {worst:.0%} of CPU {worst_cpu} over {w.seconds:g} s, "
              f"{overall:.0%} of the {len(shares)} usable CPU{'s' * (len(shares) != 1)}")
    loadavg = _read(w.root, "/proc/loadavg")
    if loadavg:
        one = float(loadavg.split()[0])
        data["loadavg_1min"] = one
        data["loadavg_per_cpu"] = round(one / max(len(w.cpus), 1), 3)
        detail += f"; 1-minute load average {one:g} on {len(w.cpus)} CPUs"
    advice = ("" if status == "ok" else
              "stop other jobs on this host, or measure with --threads 1 (and --cpus on the "
              "quietest CPU) so that one core is enough")
    return Check("load", status, round(worst, 4), "fraction", detail, advice, data)


def _frequency(w: _Window) -> Check:
    governors: dict[int, str] = {}
    ratios: dict[str, float] = {}
    for cpu in w.cpus:
        base = f"/sys/devices/system/cpu/cpu{cpu}/cpufreq"
        governor = _read(w.root, f"{base}/scaling_governor")
        if governor is not None:
            governors[cpu] = governor.strip()
        current, maximum = (_read(w.root, f"{base}/{f}") for f in ("scaling_cur_freq",
                                                                     "cpuinfo_max_freq"))
        if current and maximum and int(maximum):
            ratios[str(cpu)] = round(int(current) / int(maximum), 3)
    no_turbo = _read(w.root, "/sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = _read(w.root, "/sys/devices/system/cpu/cpufreq/boost")
    turbo = (no_turbo.strip() == "0" if no_turbo is not None
             else boost.strip() == "1" if boost is not None else None)
    if not governors and turbo is None:
        return Check("frequency", "unknown", detail="no cpufreq (a VM usually hides it)",
                     advice="nothing to set here; --reference compensates slow host drift")
    data: dict[str, Any] = {"governors": {str(c): g for c, g in governors.items()},
                            "cur_over_max": ratios, "turbo": turbo}
    problems, advice = [], []
    slow = sorted({g for g in governors.values() if g != "performance"})
    if slow:
        problems.append(f"governor {'/'.join(slow)} on CPU {_cpu_list(sorted(governors))}")
        advice.append("set the performance governor (cpupower frequency-set -g performance)")
    if turbo:
        problems.append("turbo is on, so speed depends on temperature and load")
        advice.append("turn turbo off (1 > intel_pstate/no_turbo or 0 > cpufreq/boost)")
    parts = problems or ([f"governor performance on CPU {_cpu_list(sorted(governors))}"]
                         if governors else []) + (["turbo off"] if turbo is False else [])
    if ratios:
        parts.append(f"current/max frequency {min(ratios.values()):.0%}"
                     f"–{max(ratios.values()):.0%}")
    value = "/".join(sorted(set(governors.values()))) or None
    return Check("frequency", "warn" if problems else "ok", value, "", "; ".join(parts),
                 "; ".join(advice), data)


def _smt(w: _Window) -> Check:
    text = _read(w.root, "/sys/devices/system/cpu/smt/active")
    if text is None:
        return Check("smt", "unknown", detail="no /sys/devices/system/cpu/smt/active")
    active = int(text.strip())
    if not active:
        return Check("smt", "ok", 0, "", "SMT (hyperthreading) is off", "", {"active": 0})
    siblings: dict[str, int] = {}  # one CPU per core: the first usable thread of its siblings
    for cpu in w.cpus:
        text = _read(w.root, f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        siblings.setdefault((text or str(cpu)).strip(), cpu)
    one_per_core = sorted(siblings.values())
    return Check("smt", "warn", 1, "",
                 "SMT (hyperthreading) is on: sibling hardware threads share a core",
                 f"pin with --cpus to one thread per core, e.g. --cpus {_cpu_list(one_per_core)}",
                 {"active": 1, "one_thread_per_core": one_per_core})


def _quota(directory: Path, version: int) -> float | None:
    """The CPUs a cgroup's quota allows, or None without a quota."""
    if version == 2:
        text = _read(directory, "cpu.max")
        if text is None or text.split()[0] == "max":
            return None
        quota, period = text.split()[:2]
    else:
        quota, period = (_read(directory, f) for f in ("cpu.cfs_quota_us", "cpu.cfs_period_us"))
        if quota is None or period is None or int(quota) < 0:
            return None
    return int(quota) / int(period)


def _cgroup_quota(w: _Window) -> Check:
    if not w.cgroups:
        return Check("cgroup_quota", "unknown", detail="no cgroup with the cpu controller found")
    limits = {}
    for version, leaf, top in w.cgroups:
        for directory in _chain(leaf, top):
            limit = _quota(directory, version)
            if limit is not None:
                limits[str(directory)] = limit
    throttled = sum(w.after.throttled.get(k, 0) - v for k, v in w.before.throttled.items())
    effective = min(limits.values(), default=None)
    data = {"quotas": limits, "throttled": throttled, "usable_cpus": len(w.cpus)}
    parts, advice, status = [], [], "ok"
    if throttled > 0:
        status = "bad"
        parts.append(f"the cgroup was throttled {throttled} times over {w.seconds:g} s")
        advice.append("raise the CPU limit or use fewer --threads so the cgroup is not throttled")
    if effective is None:
        parts.append("no CPU quota")
    elif effective < len(w.cpus):
        status = _worst((status, "warn"))
        parts.insert(0, f"the cgroup quota allows {effective:g} CPUs of the {len(w.cpus)} "
                        f"usable")
        advice.append(f"measure with --threads {max(int(effective), 1)} or raise the quota")
    else:
        parts.append(f"the quota allows {effective:g} CPUs, at least the {len(w.cpus)} usable")
    return Check("cgroup_quota", status, effective, "CPUs", "; ".join(parts), "; ".join(advice),
                 data)


def _steal(w: _Window) -> Check:
    delta = w.stat_delta()
    if delta is None or any(len(d) <= _STEAL for d in delta.values()) or not delta:
        return Check("steal", "unknown", detail="no steal column in /proc/stat")
    total = sum(sum(d) for d in delta.values())
    share = sum(d[_STEAL] for d in delta.values()) / total if total else 0.0
    status = _status(share, STEAL_WARN, STEAL_BAD)
    advice = ("" if status == "ok" else "the hypervisor runs other guests on these cores; "
              "measure at another time or on dedicated hardware")
    return Check("steal", status, round(share, 4), "fraction",
                 f"the hypervisor took {share:.1%} of CPU time over {w.seconds:g} s", advice)


def _memory(w: _Window) -> Check:
    info = _fields(_read(w.root, "/proc/meminfo"))
    if not info.get("MemTotal") or "MemAvailable" not in info:
        return Check("memory", "unknown", detail="no MemAvailable in /proc/meminfo")
    share = info["MemAvailable"] / info["MemTotal"]
    statuses = [_status(share, MEMORY_WARN, MEMORY_BAD, below=True)]
    parts = [f"{share:.0%} of {info['MemTotal'] / 2**20:.1f} GiB available"]
    data: dict[str, Any] = {"available_kib": info["MemAvailable"], "total_kib": info["MemTotal"]}
    pressure = _pressure(w.root, "memory")
    if pressure is not None:
        statuses.append(_status(pressure["avg10"], MEMORY_PRESSURE_WARN, MEMORY_PRESSURE_BAD))
        parts.append(f"memory pressure avg10 {pressure['avg10']:g}")
        data["pressure_avg10"] = pressure["avg10"]
    if w.before.swap_used_kib is not None and w.after.swap_used_kib is not None:
        grown = w.after.swap_used_kib - w.before.swap_used_kib
        data["swap_used_kib"], data["swap_growth_kib"] = w.after.swap_used_kib, grown
        if grown > 0:
            statuses.append("warn")
            parts.append(f"swap in use grew by {grown / 1024:.1f} MiB over {w.seconds:g} s")
        else:
            parts.append(f"{w.after.swap_used_kib / 1024:.0f} MiB swap in use")
    status = _worst(statuses)
    advice = ("" if status == "ok" else "stop memory-hungry processes: a host that reclaims or "
              "swaps memory gives slow, noisy latencies")
    return Check("memory", status, round(share, 4), "fraction", "; ".join(parts), advice, data)


def _cpu_pressure(w: _Window) -> Check:
    if w.before.cpu_pressure is None or w.after.cpu_pressure is None:
        return Check("cpu_pressure", "unknown", detail="no /proc/pressure/cpu (kernel without PSI)")
    waited = max(w.after.cpu_pressure["total"] - w.before.cpu_pressure["total"], 0) / 1e6
    share = waited / w.elapsed
    status = _status(share, CPU_PRESSURE_WARN, CPU_PRESSURE_BAD)
    advice = ("" if status == "ok" else "more tasks want to run than there are CPUs: stop other "
              "jobs or measure with fewer --threads")
    return Check("cpu_pressure", status, round(share, 4), "fraction",
                 f"some task waited for a CPU {share:.1%} of the {w.seconds:g} s window",
                 advice, {"waited_seconds": round(waited, 6), "elapsed": round(w.elapsed, 6)})


_CHECKS: dict[str, Callable[[_Window], Check]] = {
    "load": _load, "frequency": _frequency, "smt": _smt, "cgroup_quota": _cgroup_quota,
    "steal": _steal, "memory": _memory, "cpu_pressure": _cpu_pressure,
}
