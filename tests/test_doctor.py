"""``lenna doctor``: every check on fake /proc and /sys trees, the verdict, the quick warning
and the command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, run_lenna
from typer.testing import CliRunner

from lenna_core.cli import app
from lenna_core.errors import LennaError
from lenna_core.measurement import doctor
from lenna_core.measurement.doctor import CHECKS, Check, Diagnosis, diagnose, quick_warning

IDLE = (0, 0, 0, 100, 0, 0, 0, 0)  # one CPU, 100 idle ticks


def stat(*cpus: tuple[int, ...]) -> str:
    """A /proc/stat with one line per CPU (user nice system idle iowait irq softirq steal)."""
    lines = [f"cpu{i} {' '.join(map(str, c))} 0 0" for i, c in enumerate(cpus)]
    return "cpu  0 0 0 0 0 0 0 0 0 0\n" + "\n".join(lines) + "\nintr 1 2 3\nctxt 5\n"


def plus(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def self_stat(ticks: int, cpu: int) -> str:
    rest = ["S", *["0"] * 49]
    rest[11], rest[12], rest[36] = str(ticks), "0", str(cpu)
    return "4242 (python (x)) " + " ".join(rest) + "\n"


def psi(total: int, avg10: float = 0.0) -> str:
    return (f"some avg10={avg10:.2f} avg60=0.00 avg300=0.00 total={total}\n"
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")


def meminfo(total: int, available: int, swap_free: int = 1000, swap_total: int = 1000) -> str:
    return (f"MemTotal: {total} kB\nMemFree: {available} kB\nMemAvailable: {available} kB\n"
            f"SwapTotal: {swap_total} kB\nSwapFree: {swap_free} kB\n")


def write(root, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def fake(root, before: dict[str, str], after: dict[str, str] | None = None,
         seconds: float = 1.0, cpus=(0, 1)) -> dict:
    """Keyword arguments of diagnose: ``before`` is on disk at the start of the window, and the
    fake sleep writes ``after`` over it; the fake clock advances by exactly ``seconds``."""
    write(root, before)
    times = iter([0.0, seconds])

    def sleep(s: float) -> None:
        assert s == seconds
        write(root, after or {})

    return {"root": root, "sleep": sleep, "clock": lambda: next(times), "cpus": cpus}


def run(tmp_path, before, after=None, seconds=1.0, cpus=(0, 1)) -> Diagnosis:
    return diagnose(seconds, **fake(tmp_path, before, after, seconds, cpus))


# ---------------------------------------------------------------- load and steal


def test_half_busy_cpu_warns_with_its_share(tmp_path):
    busy = (40, 0, 10, 50, 0, 0, 0, 0)  # 50 of 100 ticks busy on CPU 1
    d = run(tmp_path, {"/proc/stat": stat(IDLE, IDLE), "/proc/loadavg": "1.50 1.0 0.5 2/80 9\n"},
            {"/proc/stat": stat(plus(IDLE, IDLE), plus(IDLE, busy))})
    load = d.check("load")
    assert (load.status, load.value, load.unit) == ("warn", 0.5, "fraction")
    assert load.data["per_cpu"] == {"0": 0.0, "1": 0.5}
    assert load.data["overall"] == 0.25
    assert load.data["loadavg_1min"] == 1.5 and load.data["loadavg_per_cpu"] == 0.75
    assert load.detail.startswith("other processes used 50% of CPU 1 over 1 s, 25% of the 2")
    assert "--threads 1" in load.advice
    assert d.verdict == "warn"


def test_busy_overall_is_bad_and_iowait_is_idle(tmp_path):
    busy = (60, 0, 0, 20, 20, 0, 0, 0)  # 60% busy, iowait counts as idle
    d = run(tmp_path, {"/proc/stat": stat(IDLE, IDLE)},
            {"/proc/stat": stat(plus(IDLE, busy), plus(IDLE, busy))})
    assert (d.check("load").status, d.check("load").value) == ("bad", 0.6)
    assert d.check("load").data["overall"] == 0.6
    assert d.verdict == "bad"


def test_quiet_cpus_are_ok_and_only_usable_cpus_count(tmp_path):
    busy = (90, 0, 0, 10, 0, 0, 0, 0)
    d = run(tmp_path, {"/proc/stat": stat(IDLE, IDLE)},
            {"/proc/stat": stat(plus(IDLE, (5, 0, 0, 95, 0, 0, 0, 0)), plus(IDLE, busy))},
            cpus=(0,))
    load = d.check("load")
    assert (load.status, load.value, load.data["cpus"]) == ("ok", 0.05, [0])
    assert load.advice == ""


def test_own_cpu_time_is_not_load(tmp_path):
    busy = (50, 0, 0, 50, 0, 0, 0, 0)
    d = run(tmp_path, {"/proc/stat": stat(IDLE, IDLE), "/proc/self/stat": self_stat(100, 1)},
            {"/proc/stat": stat(plus(IDLE, IDLE), plus(IDLE, busy)),
             "/proc/self/stat": self_stat(130, 1)})
    assert d.check("load").value == 0.2  # 50 busy ticks, 30 of them this process's


def test_steal_is_its_own_check_and_not_load(tmp_path):
    stolen = (0, 0, 0, 95, 0, 0, 0, 5)
    d = run(tmp_path, {"/proc/stat": stat(IDLE, IDLE)},
            {"/proc/stat": stat(plus(IDLE, stolen), plus(IDLE, stolen))})
    steal = d.check("steal")
    assert (steal.status, steal.value) == ("warn", 0.05)
    assert "hypervisor" in steal.advice
    assert d.check("load").value == 0.0


def test_heavy_steal_is_bad(tmp_path):
    stolen = (0, 0, 0, 70, 0, 0, 0, 30)
    d = run(tmp_path, {"/proc/stat": stat(IDLE, IDLE)},
            {"/proc/stat": stat(plus(IDLE, stolen), plus(IDLE, IDLE))})
    assert (d.check("steal").status, d.check("steal").value) == ("bad", 0.15)


# ---------------------------------------------------------------- frequency and SMT

CPUFREQ = "/sys/devices/system/cpu/cpu{}/cpufreq/{}"


def governors(name: str, cur: int = 1500000, top: int = 3000000) -> dict[str, str]:
    files = {}
    for cpu in (0, 1):
        files[CPUFREQ.format(cpu, "scaling_governor")] = name + "\n"
        files[CPUFREQ.format(cpu, "scaling_cur_freq")] = f"{cur}\n"
        files[CPUFREQ.format(cpu, "cpuinfo_max_freq")] = f"{top}\n"
    return files


def test_missing_cpufreq_is_unknown_not_bad(tmp_path):
    (tmp_path / "sys/devices/system/cpu/cpufreq").mkdir(parents=True)  # empty, as in a VM
    check = run(tmp_path, {}).check("frequency")
    assert check.status == "unknown"
    assert check.detail == "no cpufreq (a VM usually hides it)"


def test_powersave_governor_warns(tmp_path):
    check = run(tmp_path, governors("powersave")).check("frequency")
    assert (check.status, check.value) == ("warn", "powersave")
    assert check.data["cur_over_max"] == {"0": 0.5, "1": 0.5}
    assert "performance" in check.advice and "50%" in check.detail


def test_performance_governor_without_turbo_is_ok(tmp_path):
    files = {**governors("performance"), "/sys/devices/system/cpu/intel_pstate/no_turbo": "1\n"}
    check = run(tmp_path, files).check("frequency")
    assert (check.status, check.value, check.data["turbo"]) == ("ok", "performance", False)


@pytest.mark.parametrize("path, text", [("intel_pstate/no_turbo", "0"), ("cpufreq/boost", "1")])
def test_turbo_warns(tmp_path, path, text):
    files = {**governors("performance"), f"/sys/devices/system/cpu/{path}": text + "\n"}
    check = run(tmp_path, files).check("frequency")
    assert (check.status, check.data["turbo"]) == ("warn", True)
    assert "turbo" in check.detail and "turbo" in check.advice


def test_smt(tmp_path):
    topology = "/sys/devices/system/cpu/cpu{}/topology/thread_siblings_list"
    files = {"/sys/devices/system/cpu/smt/active": "1\n", topology.format(0): "0,2\n",
             topology.format(1): "1,3\n", topology.format(2): "0,2\n",
             topology.format(3): "1,3\n"}
    check = run(tmp_path, files, cpus=(0, 1, 2, 3)).check("smt")
    assert (check.status, check.value) == ("warn", 1)
    assert check.advice.endswith("--cpus 0,1")
    assert run(tmp_path / "x", {"/sys/devices/system/cpu/smt/active": "0\n"}).check(
        "smt").status == "ok"
    assert run(tmp_path / "y", {}).check("smt").status == "unknown"


# ---------------------------------------------------------------- cgroups

V2 = {"/proc/self/cgroup": "0::/lenna.slice/job\n"}
LEAF = "/sys/fs/cgroup/lenna.slice/job"


def test_cgroup_v2_quota_below_the_usable_cpus_warns(tmp_path):
    files = {**V2, f"{LEAF}/cpu.max": "50000 100000\n", f"{LEAF}/cpu.stat": "nr_throttled 4\n"}
    check = run(tmp_path, files, cpus=(0, 1)).check("cgroup_quota")
    assert (check.status, check.value, check.unit) == ("warn", 0.5, "CPUs")
    assert check.detail == "the cgroup quota allows 0.5 CPUs of the 2 usable"
    assert "--threads 1" in check.advice


def test_cgroup_v2_without_quota_is_ok_and_a_parent_quota_counts(tmp_path):
    files = {**V2, f"{LEAF}/cpu.max": "max 100000\n"}
    assert run(tmp_path, files).check("cgroup_quota").status == "ok"
    write(tmp_path, {"/sys/fs/cgroup/lenna.slice/cpu.max": "100000 100000\n"})
    check = run(tmp_path, {}).check("cgroup_quota")
    assert (check.status, check.value) == ("warn", 1.0)


def test_cgroup_throttled_during_the_window_is_bad(tmp_path):
    files = {**V2, f"{LEAF}/cpu.max": "400000 100000\n", f"{LEAF}/cpu.stat": "nr_throttled 4\n"}
    check = run(tmp_path, files, {f"{LEAF}/cpu.stat": "nr_throttled 7\n"}).check("cgroup_quota")
    assert (check.status, check.value, check.data["throttled"]) == ("bad", 4.0, 3)
    assert "throttled 3 times over 1 s" in check.detail


def test_cgroup_v1_quota(tmp_path):
    files = {"/proc/self/cgroup": "4:cpu,cpuacct:/docker/abc\n1:name=systemd:/\n",
             "/proc/self/mountinfo": "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup "
                                     "cgroup rw,cpu,cpuacct\n",
             "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "150000\n",
             "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
             "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
             "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"}
    check = run(tmp_path, files).check("cgroup_quota")
    assert (check.status, check.value) == ("warn", 1.5)


def test_cgroup_of_a_container_is_its_mount_point(tmp_path):
    files = {"/proc/self/cgroup": "0::/docker/abc\n",
             "/proc/self/mountinfo": "41 31 0:38 /docker/abc /sys/fs/cgroup rw - cgroup2 "
                                     "cgroup2 rw\n",
             "/sys/fs/cgroup/cpu.max": "200000 100000\n"}
    check = run(tmp_path, files, cpus=(0, 1, 2, 3)).check("cgroup_quota")
    assert (check.status, check.value) == ("warn", 2.0)


def test_no_cgroups_is_unknown(tmp_path):
    assert run(tmp_path, {}).check("cgroup_quota").status == "unknown"


# ---------------------------------------------------------------- memory and pressure


@pytest.mark.parametrize("available, status", [(500, "ok"), (150, "warn"), (40, "bad")])
def test_memory_available(tmp_path, available, status):
    check = run(tmp_path, {"/proc/meminfo": meminfo(1000, available)}).check("memory")
    assert (check.status, check.value) == (status, available / 1000)


@pytest.mark.parametrize("avg10, status", [(0.5, "ok"), (2.0, "warn"), (12.0, "bad")])
def test_memory_pressure(tmp_path, avg10, status):
    files = {"/proc/meminfo": meminfo(1000, 900), "/proc/pressure/memory": psi(0, avg10)}
    check = run(tmp_path, files).check("memory")
    assert (check.status, check.data["pressure_avg10"]) == (status, avg10)


def test_growing_swap_warns(tmp_path):
    check = run(tmp_path, {"/proc/meminfo": meminfo(1 << 20, 900 << 10, swap_free=1 << 20,
                                                    swap_total=2 << 20)},
                {"/proc/meminfo": meminfo(1 << 20, 900 << 10, swap_free=(1 << 20) - 2048,
                                          swap_total=2 << 20)}).check("memory")
    assert (check.status, check.data["swap_growth_kib"]) == ("warn", 2048)
    assert "swap in use grew by 2.0 MiB" in check.detail


@pytest.mark.parametrize("waited_us, status", [(10_000, "ok"), (100_000, "warn"),
                                               (300_000, "bad")])
def test_cpu_pressure(tmp_path, waited_us, status):
    check = run(tmp_path, {"/proc/pressure/cpu": psi(5_000_000)},
                {"/proc/pressure/cpu": psi(5_000_000 + waited_us)}).check("cpu_pressure")
    assert (check.status, check.value) == (status, waited_us / 1e6)


# ---------------------------------------------------------------- the whole diagnosis


def test_nothing_readable_is_all_unknown_and_ok(tmp_path):
    d = run(tmp_path, {})
    assert [c.name for c in d.checks] == list(CHECKS)
    assert {c.status for c in d.checks} == {"unknown"}
    assert all(c.detail for c in d.checks)
    assert d.verdict == "ok"


def test_malformed_files_are_unknown_not_tracebacks(tmp_path):
    garbage = "cpu0 a b c\nMemTotal: lots\nsome total=x\n"
    files = dict.fromkeys(
        ["/proc/stat", "/proc/meminfo", "/proc/pressure/cpu", "/proc/pressure/memory",
         "/proc/self/stat", "/proc/loadavg", "/proc/self/cgroup", "/proc/self/mountinfo",
         "/sys/devices/system/cpu/smt/active", CPUFREQ.format(0, "scaling_cur_freq"),
         CPUFREQ.format(0, "cpuinfo_max_freq"), "/sys/fs/cgroup/cpu.max"], garbage)
    d = run(tmp_path, {**files, "/proc/self/cgroup": "0::/\n"})
    assert [c.name for c in d.checks] == list(CHECKS)
    assert all(c.status in ("unknown", "ok", "warn") for c in d.checks), d.to_dict()


def test_verdict_and_json():
    checks = (Check("a", "ok"), Check("b", "unknown"), Check("c", "warn"))
    assert Diagnosis(1.0, checks).verdict == "warn"
    assert Diagnosis(1.0, (*checks, Check("d", "bad"))).verdict == "bad"
    assert Diagnosis(1.0, checks[:2]).verdict == "ok"
    data = json.loads(json.dumps(Diagnosis(1.0, checks).to_dict()))
    assert data["verdict"] == "warn" and [c["name"] for c in data["checks"]] == ["a", "b", "c"]
    assert set(data["checks"][0]) == {"name", "status", "value", "unit", "detail", "advice",
                                      "data"}


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), 61])
def test_bad_seconds(seconds):
    with pytest.raises(LennaError, match="--seconds"):
        diagnose(seconds, sleep=lambda s: None)


# ---------------------------------------------------------------- the quick warning


def test_quick_warning_names_the_busy_cpu(tmp_path):
    busy = (60, 0, 4, 36, 0, 0, 0, 0)
    kwargs = fake(tmp_path, {"/proc/stat": stat(IDLE, IDLE),
                             "/sys/devices/system/cpu/smt/active": "1\n"},
                  {"/proc/stat": stat(plus(IDLE, IDLE), plus(IDLE, busy))}, seconds=0.3)
    assert quick_warning(**kwargs) == (
        "warning: this host is busy: other processes used 64% of CPU 1 over 0.3 s, 32% of the "
        "2 usable CPUs; labels may be flagged as contended (see 'lenna doctor')")


def test_quick_warning_is_none_on_a_quiet_host_and_ignores_slow_checks(tmp_path):
    files = {"/proc/stat": stat(IDLE, IDLE), "/sys/devices/system/cpu/smt/active": "1\n",
             "/proc/meminfo": meminfo(1000, 10), **governors("powersave")}
    after = {"/proc/stat": stat(plus(IDLE, IDLE), plus(IDLE, IDLE))}
    assert quick_warning(**fake(tmp_path, files, after, seconds=0.3)) is None


def test_quick_warning_for_a_quota_says_limited(tmp_path):
    files = {**V2, f"{LEAF}/cpu.max": "50000 100000\n"}
    assert quick_warning(**fake(tmp_path, files, seconds=0.3)) == (
        "warning: this host is limited: the cgroup quota allows 0.5 CPUs of the 2 usable; "
        "labels may be flagged as contended (see 'lenna doctor')")


# ---------------------------------------------------------------- the command


def fixed(status: str):
    def fake_diagnose(seconds: float) -> Diagnosis:
        return Diagnosis(seconds, (Check("load", status, 0.5, "fraction", "busy", "stop it"),
                                   Check("smt", "unknown", detail="no smt")))
    return fake_diagnose


@pytest.mark.parametrize("status, strict, code", [
    ("ok", True, 0), ("warn", False, 0), ("bad", False, 0), ("warn", True, 3), ("bad", True, 3)])
def test_exit_codes(monkeypatch, status, strict, code):
    monkeypatch.setattr(doctor, "diagnose", fixed(status))
    result = CliRunner().invoke(app, ["doctor", *(["--strict"] if strict else [])])
    assert result.exit_code == code, result.output
    assert "load" in result.output and "50.0%" in result.output and "stop it" in result.output


def test_json_output(monkeypatch):
    monkeypatch.setattr(doctor, "diagnose", fixed("warn"))
    result = CliRunner().invoke(app, ["doctor", "--json", "--seconds", "0.5"])
    data = json.loads(result.output)
    assert data["verdict"] == "warn" and data["seconds"] == 0.5
    assert [c["status"] for c in data["checks"]] == ["warn", "unknown"]


def test_real_doctor_reports_every_check():
    result = run_lenna("doctor", "--json", "--seconds", "0.2", timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [c["name"] for c in data["checks"]] == list(CHECKS)
    assert data["verdict"] in ("ok", "warn", "bad")
    assert all(c["status"] in ("ok", "warn", "bad", "unknown") for c in data["checks"])


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "61"])
def test_bad_seconds_is_one_line(seconds):
    result = run_lenna("doctor", "--seconds", seconds, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --seconds must be > 0 and <= 60, not {float(seconds)}"]


def test_doctor_imports_no_heavy_module():
    code = ("import sys, lenna_core.measurement.doctor; heavy = {'numpy', 'pandas', 'rich', "
            "'typer', 'sqlalchemy', 'scipy'} & set(sys.modules); print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"
