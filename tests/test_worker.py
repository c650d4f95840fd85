"""Worker processes: real measurements, and crashes, hangs and errors turned into reasons."""

from __future__ import annotations

import os

import pytest

from lenna_core.errors import LennaError
from lenna_core.ir import GraphBuilder
from lenna_core.measurement.protocol import MeasurementProtocol
from lenna_core.measurement.worker import Worker, WorkerSettings
from lenna_core.records import Architecture, Workload

QUICK = MeasurementProtocol.parse("fixed:20", warmup_runs=2, warmup_seconds=0.0,
                                   compensate=True, passes=1)

def workload(behaviour: str = "ok", width: int = 4) -> Workload:
    b = GraphBuilder()
    y = b.add_node("conv2d", b.input((3, 16, 16)), out_channels=width, kernel_size=3)
    return Workload(Architecture("test", {"behaviour": behaviour}, b.build(y)))


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
    ("crash", "worker crashed while measuring (SIGABRT)"),
    ("kill", "worker was killed while measuring (SIGKILL: probably out of memory)"),
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
    with Worker(WorkerSettings("chaos", timeout=3)) as worker:
        first_pid = worker.fingerprint() and worker._process.pid
        hung = worker.measure(workload("hang"), QUICK)
        after = worker.measure(workload("ok"), QUICK)
        assert worker._process.pid != first_pid
    assert hung.error == "timed out after 3 s while measuring (raise --timeout)"
    assert 3 <= hung.seconds < 15
    assert after.ok


def test_a_backend_that_cannot_start_is_an_error(chaos_backend):
    with pytest.raises(LennaError, match="backend nosuch cannot start: unknown backend"):
        Worker(WorkerSettings("nosuch")).fingerprint()
