"""Measurement campaigns: sample architectures, measure what the store lacks, commit each."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import attrs
import numpy as np

from lenna_core.environment import host_fingerprint
from lenna_core.errors import LennaError
from lenna_core.interfaces import Source
from lenna_core.measure import LennaRule, MeasurementProtocol
from lenna_core.progress import progress_bar
from lenna_core.records import Architecture, Measurement, Target, Workload
from lenna_core.resources import available_bytes, minimum_bytes
from lenna_core.store import Store
from lenna_core.worker import Worker

Children = Callable[[Architecture, np.random.Generator], Architecture]
MAX_CHILDREN = 100


def sample_architectures(source: Source, n: int, seed: int) -> list[Architecture]:
    """``n`` distinct architectures (with distinct workload settings, where the source fixes
    them) drawn with a generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    settings = getattr(source, "workload_settings", None)
    found: dict[str, Architecture] = {}
    for _ in range(max(50, 20 * n)):
        if len(found) == n:
            break
        arch = source.sample(rng)
        key = arch.id if settings is None else f"{arch.id}:{sorted(settings(arch).items())}"
        found.setdefault(key, arch)
    if len(found) < n:
        raise LennaError(f"source {source.name} yielded only {len(found)} distinct "
                         f"architectures; ask for at most that many with --n")
    return list(found.values())


def target_of(worker: Worker) -> Target:
    """The target a worker measures on: backend, host, framework and thread settings."""
    settings = worker.settings
    return Target(settings.backend, {
        **host_fingerprint(), **worker.fingerprint(),
        "threads_setting": settings.threads,
        "cpus": list(settings.cpus) if settings.cpus else None,
    })


def _too_big(workload: Workload) -> Measurement | None:
    """A failed measurement for a workload that cannot fit in the host's free memory."""
    available = available_bytes()
    needed = minimum_bytes(workload)
    if available is not None and needed > available:
        return Measurement.failed(
            f"needs at least {needed / 2**30:.1f} GiB (weights and largest activation) but "
            f"only {available / 2**30:.1f} GiB of memory is available")
    return None


@attrs.frozen
class CampaignResult:
    """The measurements of a campaign, in workload order, and how many were new."""

    target: Target
    workloads: tuple[Workload, ...]
    measurements: tuple[Measurement, ...]
    measured: int

    @property
    def reused(self) -> int:
        return len(self.workloads) - self.measured


def measure_expected(worker: Worker, workload: Workload, protocol: MeasurementProtocol,
                     children: Children, max_children: int = MAX_CHILDREN) -> Measurement:
    """The expected latency of a supernet over children drawn by binary gates.

    Reset the gates (draw a child), measure it, keep the cumulative average of the children's
    medians, and stop under the LENNA rule: less than 1% change for 10 consecutive resets.
    Children are drawn from a generator seeded by the architecture id, so a re-run draws the
    same ones.
    """
    rng = np.random.default_rng(int(workload.architecture.id[:12], 16))
    rule = LennaRule(protocol.tolerance, protocol.patience)
    started = time.perf_counter()
    latencies: list[float] = []
    while len(latencies) < max_children and not rule.converged:
        child = children(workload.architecture, rng)
        measured = worker.measure(attrs.evolve(workload, architecture=child), protocol)
        if not measured.ok:
            return Measurement.failed(f"child {len(latencies) + 1}: {measured.error}")
        latencies.append(measured.median_ns)
        rule.add(measured.median_ns)
    return Measurement.from_samples(
        [round(v) for v in latencies], "converged" if rule.converged else "max_children",
        expected_ns=rule.average, seconds=time.perf_counter() - started)


def run_campaign(store: Store, worker: Worker, workloads: Sequence[Workload],
                 protocol: MeasurementProtocol,
                 children: Children | None = None) -> CampaignResult:
    """Measure every workload the store lacks on the worker's target, committing each.

    With ``children`` (a source's gate sampler) each workload is a supernet labelled by
    :func:`measure_expected`.
    """
    target = target_of(worker)
    store.add_target(target)
    results, measured = [], 0
    with progress_bar(len(workloads), f"measuring on {worker.settings.backend}") as advance:
        for workload in workloads:
            stored = store.get_measurement(workload, target, protocol.key)
            if stored is None:
                stored = _too_big(workload) or (
                    measure_expected(worker, workload, protocol, children) if children
                    else worker.measure(workload, protocol))
                store.add_measurement(workload, target, protocol.key, stored)
                measured += 1
                status = "new"
            else:
                status = "stored"
            results.append(stored)
            latency = (f"{stored.median_ns / 1e6:.2f} ms" if stored.ok
                       else f"failed: {stored.error[:60]}")
            advance(f"{workload.architecture.id[:8]} {latency} ({status})")
    return CampaignResult(target, tuple(workloads), tuple(results), measured)
