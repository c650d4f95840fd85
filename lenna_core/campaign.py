"""Measurement campaigns: sample architectures, measure what the store lacks, commit each."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from lenna_core.environment import host_fingerprint
from lenna_core.errors import LennaError
from lenna_core.interfaces import Backend, Source
from lenna_core.measure import MeasurementProtocol, measure
from lenna_core.progress import progress_bar
from lenna_core.records import Architecture, Measurement, Target, Workload
from lenna_core.store import Store


def sample_architectures(source: Source, n: int, seed: int) -> list[Architecture]:
    """``n`` distinct architectures drawn with a generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    found: dict[str, Architecture] = {}
    for _ in range(max(50, 20 * n)):
        if len(found) == n:
            break
        arch = source.sample(rng)
        found.setdefault(arch.id, arch)
    if len(found) < n:
        raise LennaError(f"source {source.name} yielded only {len(found)} distinct "
                         f"architectures; ask for at most that many with --n")
    return list(found.values())


def target_of(backend: Backend) -> Target:
    """The target a backend measures on: its name, the host and the backend's settings."""
    return Target(backend.name, {**host_fingerprint(), **backend.fingerprint()})


def _measure_one(backend: Backend, workload: Workload,
                 protocol: MeasurementProtocol) -> Measurement:
    try:
        runner = backend.prepare(workload)
    except MemoryError:
        return Measurement.failed("out of memory while building the model")
    except Exception as exc:  # noqa: BLE001 - a framework failure is a failed measurement
        return Measurement.failed(_reason(exc))
    try:
        return measure(runner, protocol)
    except MemoryError:
        return Measurement.failed("out of memory while running the model")
    except Exception as exc:  # noqa: BLE001
        return Measurement.failed(_reason(exc))
    finally:
        runner.close()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


@attrs.frozen
class CampaignResult:
    """The measurements of a campaign, in workload order, and how many were new."""

    workloads: tuple[Workload, ...]
    measurements: tuple[Measurement, ...]
    measured: int

    @property
    def reused(self) -> int:
        return len(self.workloads) - self.measured


def run_campaign(store: Store, backend: Backend, workloads: Sequence[Workload],
                 protocol: MeasurementProtocol) -> CampaignResult:
    """Measure every workload the store lacks on this backend's target, committing each."""
    target = target_of(backend)
    store.add_target(target)
    results, measured = [], 0
    with progress_bar(len(workloads), f"measuring on {backend.name}") as advance:
        for workload in workloads:
            stored = store.get_measurement(workload, target, protocol.key)
            if stored is None:
                stored = _measure_one(backend, workload, protocol)
                store.add_measurement(workload, target, protocol.key, stored)
                measured += 1
                status = "new"
            else:
                status = "stored"
            results.append(stored)
            latency = f"{stored.median_ns / 1e6:.2f} ms" if stored.ok else "failed"
            advance(f"{workload.architecture.id[:8]} {latency} ({status})")
    return CampaignResult(tuple(workloads), tuple(results), measured)
