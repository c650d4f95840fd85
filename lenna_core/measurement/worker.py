"""Backends run in worker subprocesses: one per backend, with a timeout per measurement.

Framework thread pools fight when they share a process (ONNX Runtime's spinning threads
slow torch 2–5x), so each backend lives in its own process. A worker that crashes, hangs
or is killed yields a failed measurement whose reason starts with the kind of its end
(``timeout:``, ``oom:``, ``killed:``, ``crash:`` or ``exit:``; see docs/reliability.md), and
the next request starts a fresh worker.

A worker dies with the process that started it: on Linux the kernel kills it (the
parent-death signal), and everywhere it checks between requests and between timed runs that
its parent is still there. Once its parent is gone it exits at once and prints nothing.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

import attrs

from lenna_core.errors import LennaError, error_line, first_line
from lenna_core.measurement.host import (
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
    set_cpu_affinity,
)
from lenna_core.measurement.oom import OomWatch
from lenna_core.measurement.protocol import MeasurementProtocol, run_protocol
from lenna_core.measurement.reference import reference_workload
from lenna_core.plugins.interfaces import optional
from lenna_core.records import Architecture, Measurement, Workload

STARTUP_TIMEOUT = 300.0
PR_SET_PDEATHSIG = 1
"""The ``prctl`` option that names the signal Linux sends a process when its parent dies."""
CRASH_SIGNALS = ("SIGSEGV", "SIGABRT", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS")
"""Signals a process gets from its own faults, not from another process."""


@attrs.frozen
class WorkerSettings:
    """What a worker process is started with; all of it is recorded with the target."""

    backend: str
    threads: int | None = None
    cpus: tuple[int, ...] | None = None
    timeout: float = 600.0
    profile_runs: int = 5


def _reason(exc: BaseException) -> str:
    """A LennaError's own line; any other error's type and first line."""
    return first_line(exc) if isinstance(exc, LennaError) else error_line(exc)


def _exit_if_orphaned(parent: int) -> None:
    """Exit at once, printing nothing, when ``parent`` is no longer this process's parent."""
    if os.getppid() != parent:
        os._exit(0)


def _die_with(parent: int) -> None:
    """Have Linux kill this process when its parent dies, and exit now if ``parent`` died
    before that was set."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the checks between requests and between runs remain
    _exit_if_orphaned(parent)


def _send(conn: Connection, message: dict[str, Any]) -> None:
    """Send ``message`` to the parent; if it is gone, exit at once and print nothing."""
    try:
        conn.send(message)
    except OSError:
        os._exit(0)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration (native libraries included)."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _workload_payload(workload: Workload) -> dict[str, Any]:
    return {"architecture": workload.architecture.to_dict(), **workload.settings()}


def _workload_from(payload: dict[str, Any]) -> Workload:
    settings = dict(payload)
    return Workload(Architecture.from_dict(settings.pop("architecture")), **settings)


class _Session:
    """The worker side: one backend, its cached reference runner, the runners kept for a
    label's next pass, and measurement requests."""

    def __init__(self, settings: WorkerSettings, between_runs: Callable[[], None]) -> None:
        from lenna_core.plugins.registry import make_registry

        registry = make_registry()
        cls = registry.get_available("backend", settings.backend)
        self.backend = cls(threads=settings.threads)
        self.vocabulary: dict[str, str] = dict(optional(cls, "op_vocabulary"))
        self.settings = settings
        self.between_runs = between_runs
        self.reference = None
        self.kept: dict[str, Any] = {}

    def fingerprint(self) -> dict[str, Any]:
        return self.backend.fingerprint()

    def release(self, workload_id: str) -> None:
        """Close the runner kept for a workload, if any."""
        runner = self.kept.pop(workload_id, None)
        if runner is not None:
            runner.close()

    def measure(self, workload: Workload, protocol: MeasurementProtocol,
                profile: bool, keep: bool) -> Measurement:
        """One pass; with ``keep`` the prepared runner stays for the workload's next pass."""
        if protocol.compensate and self.reference is None:
            try:
                self.reference = self.backend.prepare(reference_workload())
            except Exception as exc:  # noqa: BLE001 - it fails the measurement, not the worker
                return Measurement.failed(f"the reference workload failed: {_reason(exc)}")
        started = time.perf_counter()
        reset_peak_rss()
        before = rss_bytes()
        runner = self.kept.pop(workload.id, None)
        try:
            runner = runner or self.backend.prepare(workload)
        except MemoryError:
            return Measurement.failed("oom: out of memory while building the model")
        except Exception as exc:  # noqa: BLE001 - a framework failure is a failed measurement
            return Measurement.failed(_reason(exc))
        try:
            series = run_protocol(runner, protocol,
                                  self.reference if protocol.compensate else None,
                                  between_runs=self.between_runs)
            profiler = optional(runner, "profile")
            framework_ops = None
            if profile and profiler is not None and self.settings.profile_runs > 0:
                with _quiet_stderr():  # profilers print tracing banners on every start
                    framework_ops = profiler(self.settings.profile_runs)
            device_memory = optional(runner, "peak_device_memory")
            peak = peak_rss_bytes()
            measurement = Measurement.from_samples(
                series.samples_ns, series.stop_reason, series.reference_ns,
                wait_ns=series.wait_ns, reference_wait_ns=series.reference_wait_ns,
                max_wait=protocol.max_wait, min_clean=protocol.pass_min_runs,
                others_cpu=series.others_cpu,
                peak_memory_bytes=None if peak is None or before is None
                else max(0, peak - before),
                device_memory_bytes=None if device_memory is None else device_memory(),
                seconds=time.perf_counter() - started,
            )
            if framework_ops:
                measurement = attrs.evolve(
                    measurement, op_profile=self._op_profile(framework_ops, measurement))
            if keep and measurement.status != "failed":
                self.kept[workload.id], runner = runner, None
            return measurement
        except MemoryError:
            return Measurement.failed("oom: out of memory while running the model")
        except Exception as exc:  # noqa: BLE001
            return Measurement.failed(_reason(exc))
        finally:
            if runner is not None:
                runner.close()

    def _op_profile(self, framework_ops: dict[str, float],
                    measurement: Measurement) -> dict[str, Any]:
        lenna_ops: dict[str, float] = {}
        for name, ns in framework_ops.items():
            op = self.vocabulary.get(name, "other")
            lenna_ops[op] = lenna_ops.get(op, 0.0) + ns
        total = float(sum(framework_ops.values()))
        return {
            "framework": {k: float(v) for k, v in framework_ops.items()},
            "lenna": lenna_ops,
            "sum_ns": total,
            "end_to_end_ns": measurement.median_ns,
            "sum_over_end_to_end": total / measurement.median_ns if measurement.median_ns
            else None,
        }


def serve(conn: Connection, settings: WorkerSettings, parent: int) -> None:
    """The worker process's loop: answer requests until told to stop; exit at once, printing
    nothing, as soon as ``parent`` is gone."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt means
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    set_cpu_affinity(settings.cpus)
    try:
        session = _Session(settings, partial(_exit_if_orphaned, parent))
        _send(conn, {"ready": session.fingerprint()})
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        _send(conn, {"fatal": _reason(exc)})
        return
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            os._exit(0)
        if request["op"] == "stop":
            return
        if request["op"] == "release":
            session.release(request["workload_id"])
            continue
        workload = _workload_from(request["workload"])
        protocol = MeasurementProtocol(**request["protocol"])
        measurement = session.measure(workload, protocol, request["profile"], request["keep"])
        _send(conn, {"measurement": attrs.asdict(measurement, recurse=False)})


class Worker:
    """The parent side: starts the worker on demand and turns its failures into reasons."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._fingerprint: dict[str, Any] | None = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(child, self.settings, os.getpid()),
                                  daemon=True, name=f"lenna-{self.settings.backend}")
        process.start()
        child.close()
        self._process, self._conn = process, parent
        watch = OomWatch(process.pid)
        try:
            reply = self._receive(STARTUP_TIMEOUT)
            if reply is None or "fatal" in reply:
                reason = reply["fatal"] if reply else self._death_reason(
                    "while starting", STARTUP_TIMEOUT, watch)
                self.close()
                raise LennaError(f"backend {self.settings.backend} cannot start: {reason}")
        finally:
            watch.close()
        self._fingerprint = reply["ready"]

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        """The next reply, or None if the worker died or timed out (then it is gone)."""
        assert self._conn is not None
        try:
            if self._conn.poll(timeout):
                return self._conn.recv()
        except (EOFError, OSError):
            return None
        return None

    def _ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send a request and return the reply, or None if the worker died or timed out."""
        assert self._conn is not None
        try:
            self._conn.send(request)
        except OSError:  # the worker died since it was last seen alive
            return None
        return self._receive(timeout)

    def _death_reason(self, doing: str, timeout: float, watch: OomWatch,
                      advice: str = "") -> str:
        """Why the worker gave no answer, as ``kind: what happened``. A worker still alive
        has timed out (the caller kills it); a SIGKILL is put down to the OOM killer only
        when the kernel's records show it (``watch``)."""
        process = self._process
        assert process is not None
        process.join(2)
        code = process.exitcode
        if code is None:
            return f"timeout: timed out after {timeout:g} s {doing}{advice}"
        if code >= 0:
            return f"exit: the worker exited with code {code} {doing}"
        name = _signal_name(-code)
        if name in CRASH_SIGNALS:
            return f"crash: the backend crashed ({name}) {doing}"
        if -code != signal.SIGKILL:
            return f"killed: killed by {name} from outside LENNA {doing}"
        evidence = watch.verdict()
        if evidence:
            return f"oom: killed by the kernel's OOM killer {doing} (recorded in the {evidence})"
        if evidence == "":
            return (f"killed: killed by SIGKILL from outside LENNA {doing} "
                    f"(no out-of-memory kill recorded)")
        return (f"killed: killed by SIGKILL {doing}; the cause is unknown: neither the kernel "
                f"log nor the cgroup memory events are readable")

    def fingerprint(self) -> dict[str, Any]:
        """The backend's fingerprint as the worker process sees it."""
        if self._fingerprint is None:
            self._start()
        assert self._fingerprint is not None
        return self._fingerprint

    def measure(self, workload: Workload, protocol: MeasurementProtocol,
                profile: bool = True, keep: bool = False) -> Measurement:
        """Take one pass in the worker (and the per-op profile, with ``profile``; with
        ``keep`` the prepared model stays in the worker until :meth:`release`); a crash or
        time-out is a failed measurement, not an error."""
        if self._process is None or not self._process.is_alive():
            self._start()
        assert self._process is not None
        started = time.perf_counter()
        watch = OomWatch(self._process.pid)
        try:
            reply = self._ask({"op": "measure", "workload": _workload_payload(workload),
                               "protocol": attrs.asdict(protocol), "profile": profile,
                               "keep": keep}, self.settings.timeout)
            if reply is None:
                reason = self._death_reason("while measuring", self.settings.timeout, watch,
                                            " (raise --timeout)")
                self._kill()
                return Measurement.failed(reason, seconds=time.perf_counter() - started)
        finally:
            watch.close()
        data = reply["measurement"]
        for key in ("samples_ns", "reference_samples_ns", "wait_ns", "reference_wait_ns",
                    "sample_pass"):
            data[key] = tuple(data[key])
        return Measurement(**data)

    def release(self, workload: Workload) -> None:
        """Drop the model kept in the worker for ``workload`` (nothing if the worker is gone)."""
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            try:
                self._conn.send({"op": "release", "workload_id": workload.id})
            except (OSError, BrokenPipeError):
                pass

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None

    def close(self) -> None:
        """Stop the worker process (politely, then by force)."""
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            try:
                self._conn.send({"op": "stop"})
                self._process.join(5)
            except (OSError, BrokenPipeError):
                pass
        self._kill()
