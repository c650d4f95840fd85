"""Worker processes: real measurements; crashes, kills, hangs and errors turned into reasons
of their kind; workers that die with their parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs
import pytest
from conftest import ROOT, make_distribution

from lenna_core.data.store import Store
from lenna_core.errors import LennaError
from lenna_core.ir import GraphBuilder
from lenna_core.measurement import oom
from lenna_core.measurement.campaign import run_campaign
from lenna_core.measurement.protocol import MeasurementProtocol
from lenna_core.measurement.worker import Worker, WorkerSettings
from lenna_core.records import Architecture, Workload

QUICK = MeasurementProtocol.parse("fixed:20", warmup_runs=2, warmup_seconds=0.0,
                                   compensate=True, passes=1)

def workload(behaviour: str = "ok", width: int = 4, **spec: object) -> Workload:
    b = GraphBuilder()
    y = b.add_node("conv2d", b.input((3, 16, 16)), out_channels=width, kernel_size=3)
    return Workload(Architecture("test", {"behaviour": behaviour, **spec}, b.build(y)))


def test_real_measurement_in_a_worker_process():
    pytest.importorskip("onnxruntime")
    with Worker(WorkerSettings("onnxruntime", threads=1, profile_runs=3)) as worker:
        fingerprint = worker.fingerprint()
        m = worker.measure(workload(width=16), QUICK)
        worker_pid = worker._process.pid
    assert worker_pid != os.getpid()
    assert "onnxruntime" in fingerprint
    # spoiled runs (another process took the CPU) are re-taken: 20 clean ones in all
    assert m.ok and m.clean_runs == 20 and len(m.reference_samples_ns) == m.runs >= 20
    assert m.ratio > 0 and m.reference_median_ns > 0
    assert m.seconds > 0 and m.peak_memory_bytes is not None


@pytest.mark.parametrize(("behaviour", "reason"), [
    ("crash", "crash: the backend crashed (SIGABRT) while measuring"),
    ("raise", "RuntimeError: unsupported kernel in layer 3"),
])
def test_failures_become_reasons_and_the_campaign_goes_on(chaos_backend, behaviour, reason):
    settings = WorkerSettings("chaos", timeout=30)
    with Worker(settings) as worker:
        failed = worker.measure(workload(behaviour), QUICK)
        after = worker.measure(workload("ok"), QUICK)
    assert failed.status == "failed" and failed.error == reason
    assert after.ok and after.clean_runs == 20


@pytest.mark.slow
def test_a_hung_measurement_times_out_and_the_worker_is_replaced(chaos_backend):
    with Worker(WorkerSettings("chaos", timeout=2)) as worker:
        first_pid = worker.fingerprint() and worker._process.pid
        hung = worker.measure(workload("hang"), QUICK)
        after = worker.measure(workload("ok"), QUICK)
        assert worker._process.pid != first_pid
    assert hung.error == "timeout: timed out after 2 s while measuring (raise --timeout)"
    assert 2 <= hung.seconds < 15
    assert after.ok


def test_a_backend_that_cannot_start_is_an_error(chaos_backend):
    with pytest.raises(LennaError, match="backend nosuch cannot start: unknown backend"):
        Worker(WorkerSettings("nosuch")).fingerprint()


FAULTS = '''
import ctypes, os, pathlib, time
from lenna_core.api import hookimpl

PR_SET_PDEATHSIG = 1


class Runner:
    def run(self):
        time.sleep(0.01)

    def close(self):
        pass


class FaultsBackend:
    """Faults the chaos backend lacks: a segfault, a memory hog, a hang that tells when it
    has begun and a worker that the kernel will not kill with its parent (these two write their
    spec's ready file once that is so)."""

    name = "faults"

    def __init__(self, threads=None):
        pass

    def fingerprint(self):
        return {"faults": "1"}

    def prepare(self, workload):
        spec = workload.architecture.spec
        if spec.get("behaviour") == "segfault":
            ctypes.string_at(0)
        if spec.get("behaviour") == "hog":
            hog = [bytearray(2**20) for _ in range(spec["mib"])]
            for block in hog:
                block[::4096] = b"x" * len(block[::4096])  # touch every page
        if spec.get("behaviour") == "hang":
            pathlib.Path(spec["ready_file"]).touch()
            time.sleep(3600)
        if spec.get("behaviour") == "no-parent-death-signal":
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0)
            pathlib.Path(spec["ready_file"]).touch()
        return Runner()


class NoReferenceBackend(FaultsBackend):
    """Cannot build the reference workload."""

    name = "faults-no-reference"

    def prepare(self, workload):
        if workload.architecture.source == "lenna-reference":
            raise RuntimeError("no kernel for maxpool")
        return super().prepare(workload)


@hookimpl
def lenna_register_backends():
    return [FaultsBackend, NoReferenceBackend]
'''


@pytest.fixture
def faults_backend(tmp_path, monkeypatch):
    """Install the ``faults`` backend, a real plugin, beside ``chaos``."""
    path = make_distribution(tmp_path / "faults", "faults-dist", "0.1",
                             {"faults": "faults_backend"}, {"faults_backend": FAULTS})
    monkeypatch.syspath_prepend(str(path))
    return path


def kernel_log_readable() -> bool:
    try:
        os.close(os.open(oom.KERNEL_LOG, os.O_RDONLY | os.O_NONBLOCK))
    except OSError:
        return False
    return True


def signal_soon(worker: Worker, signum: int) -> None:
    """Send the worker ``signum`` from outside, half a second from now."""
    threading.Timer(0.5, os.kill, (worker._process.pid, signum)).start()


def test_a_worker_killed_from_outside_is_not_called_out_of_memory(chaos_backend, tmp_path,
                                                                   monkeypatch):
    if not kernel_log_readable():
        pytest.skip("the kernel log (/dev/kmsg) is not readable here")
    monkeypatch.setattr(oom, "CGROUP_ROOT", tmp_path / "no-cgroups")  # the log alone decides
    with Worker(WorkerSettings("chaos", timeout=30)) as worker:
        first_pid = worker.fingerprint() and worker._process.pid
        signal_soon(worker, signal.SIGKILL)
        killed = worker.measure(workload("hang"), QUICK)
        after = worker.measure(workload("ok"), QUICK)
        assert worker._process.pid != first_pid
    assert killed.status == "failed"
    assert killed.error == ("killed: killed by SIGKILL from outside LENNA while measuring "
                            "(no out-of-memory kill recorded)")
    assert 0.5 <= killed.seconds < 5
    assert after.ok and after.clean_runs == 20


def test_a_kill_without_readable_evidence_has_an_unknown_cause(chaos_backend, tmp_path,
                                                              monkeypatch):
    monkeypatch.setattr(oom, "KERNEL_LOG", tmp_path / "no-kmsg")
    monkeypatch.setattr(oom, "CGROUP_ROOT", tmp_path / "no-cgroups")
    with Worker(WorkerSettings("chaos", timeout=30)) as worker:
        killed = worker.measure(workload("kill"), QUICK)
        after = worker.measure(workload("ok"), QUICK)
    assert killed.error == ("killed: killed by SIGKILL while measuring; the cause is unknown: "
                            "neither the kernel log nor the cgroup memory events are readable")
    assert after.ok


def test_a_sigterm_from_outside_is_a_kill(chaos_backend):
    with Worker(WorkerSettings("chaos", timeout=30)) as worker:
        worker.fingerprint()
        signal_soon(worker, signal.SIGTERM)
        killed = worker.measure(workload("hang"), QUICK)
    assert killed.error == "killed: killed by SIGTERM from outside LENNA while measuring"


def test_a_segfault_is_a_crash(faults_backend):
    with Worker(WorkerSettings("faults", timeout=30)) as worker:
        crashed = worker.measure(workload("segfault"), QUICK)
        after = worker.measure(workload("ok"), QUICK)
    assert crashed.error == "crash: the backend crashed (SIGSEGV) while measuring"
    assert after.ok


def test_a_reference_that_fails_fails_the_measurement_not_the_worker(faults_backend):
    with Worker(WorkerSettings("faults-no-reference", timeout=30)) as worker:
        pid = worker.fingerprint() and worker._process.pid
        failed = worker.measure(workload(), QUICK)
        plain = worker.measure(workload(), attrs.evolve(QUICK, compensate=False))
        assert worker._process.pid == pid
    assert failed.error == "the reference workload failed: RuntimeError: no kernel for maxpool"
    assert plain.ok


def process_state(pid: int) -> str | None:
    """The state letter of a process in /proc (None when there is no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_worker_killed_from_outside_does_not_stop_the_campaign(faults_backend, tmp_path):
    store = Store(str(tmp_path / "l.db"))
    hanging = tmp_path / "hanging"
    loads = [workload(width=4), workload("hang", width=8, ready_file=str(hanging)),
             workload(width=16)]
    with Worker(WorkerSettings("faults", timeout=60)) as worker:

        def kill_in_the_hang() -> None:
            wait_for(hanging)
            os.kill(worker._process.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_in_the_hang, daemon=True)
        killer.start()
        result = run_campaign(store, worker, loads, QUICK)
        killer.join()
    # the others are labels, ok or (on a busy host) contended
    assert [m.status == "failed" for m in result.measurements] == [False, True, False]
    assert result.measurements[1].error.startswith("killed: killed by SIGKILL")
    assert sum(1 for _ in store.measurement_rows()) == 3


PARENT = """
import json, sys
from lenna_core.ir import GraphBuilder
from lenna_core.measurement.protocol import MeasurementProtocol
from lenna_core.measurement.worker import Worker, WorkerSettings
from lenna_core.records import Architecture, Workload

backend, spec = sys.argv[1], json.loads(sys.argv[2])
b = GraphBuilder()
y = b.add_node("conv2d", b.input((3, 16, 16)), out_channels=4, kernel_size=3)
workload = Workload(Architecture("test", spec, b.build(y)))
worker = Worker(WorkerSettings(backend, timeout=600))
worker.fingerprint()
print(worker._process.pid, flush=True)
worker.measure(workload, MeasurementProtocol.parse("fixed:5000", passes=1))
"""


def kill_parent_while_measuring(plugin: Path, backend: str, spec: dict[str, object],
                                ready: Path | None = None) -> tuple[int, float, str]:
    """Start a parent that measures in a worker and kill -9 it mid-measurement (once
    ``ready`` exists, if given); return the worker's pid, the seconds until the worker was
    gone, and everything the parent and the worker wrote to their stderr."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin), str(ROOT)])}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, backend, json.dumps(spec)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env)
    worker_pid = int(parent.stdout.readline())
    if ready is not None:
        wait_for(ready)
    time.sleep(0.5)  # the measurement is under way
    assert process_state(worker_pid) not in (None, "Z")
    parent.kill()
    killed = time.monotonic()
    # stderr ends only once every process holding it, the worker too, is gone
    _, stderr = parent.communicate(timeout=30)
    while process_state(worker_pid) not in (None, "Z") and time.monotonic() - killed < 30:
        time.sleep(0.02)
    return worker_pid, time.monotonic() - killed, stderr


def test_the_worker_dies_with_its_parent(chaos_backend):
    """The kernel kills it with its parent, even in the middle of a long backend call."""
    pid, gone_after, stderr = kill_parent_while_measuring(chaos_backend, "chaos",
                                                          {"behaviour": "hang"})
    assert process_state(pid) in (None, "Z")
    assert gone_after < 3
    assert stderr == ""


def test_without_the_parent_death_signal_the_worker_stops_between_runs(faults_backend,
                                                                       tmp_path):
    ready = tmp_path / "ready"
    spec = {"behaviour": "no-parent-death-signal", "ready_file": str(ready)}
    pid, gone_after, stderr = kill_parent_while_measuring(faults_backend, "faults", spec,
                                                          ready)
    assert ready.exists()
    assert process_state(pid) in (None, "Z")
    assert gone_after < 3
    assert stderr == ""


@pytest.fixture
def small_memory_cgroup():
    """A new memory cgroup inside this process's own, limited to 256 MiB without swap; skips
    where none can be made (not root, or no memory controller delegated)."""
    limit = str(256 * 2**20)
    made = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):  # cgroup v1
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            files = (("memory.limit_in_bytes", limit), ("memory.memsw.limit_in_bytes", limit))
        elif controllers == "":  # cgroup v2
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            files = (("memory.max", limit), ("memory.swap.max", "0"))
        else:
            continue
        cgroup = base / f"lenna-oom-test-{os.getpid()}"
        try:
            cgroup.mkdir()
        except OSError:
            continue
        try:
            for name, value in files:
                (cgroup / name).write_text(value)
        except OSError:
            cgroup.rmdir()
            continue
        made = cgroup
        break
    if made is None:
        pytest.skip("no memory cgroup with a limit can be made here")
    yield made
    for _ in range(50):  # the killed worker may take a moment to leave it
        try:
            made.rmdir()
            break
        except OSError:
            time.sleep(0.1)


@pytest.mark.parametrize("evidence", ["kernel log", "cgroup memory events"])
def test_an_oom_kill_is_called_one(faults_backend, small_memory_cgroup, tmp_path, monkeypatch,
                                   evidence):
    if evidence == "kernel log" and not kernel_log_readable():
        pytest.skip("the kernel log (/dev/kmsg) is not readable here")
    if evidence == "cgroup memory events":
        monkeypatch.setattr(oom, "KERNEL_LOG", tmp_path / "no-kmsg")
    with Worker(WorkerSettings("faults", timeout=60)) as worker:
        pid = worker.fingerprint() and worker._process.pid
        (small_memory_cgroup / "cgroup.procs").write_text(str(pid))
        killed = worker.measure(workload("hog", mib=1024), QUICK)
        after = worker.measure(workload("ok"), QUICK)
    assert killed.error == ("oom: killed by the kernel's OOM killer while measuring "
                            f"(recorded in the {evidence})")
    assert after.ok
