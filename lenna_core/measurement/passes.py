"""Labels taken in passes: when a label needs another pass, and the label its passes make.

A campaign measures every workload in ``protocol.passes`` passes spread over its length, so a
burst of load that lasts seconds spoils one pass, not the label. A pass with too few clean runs,
or passes whose latencies disagree by more than ``protocol.agreement``, get another pass, up to
``protocol.max_passes``. A label whose every pass ran while other processes kept at least
``protocol.max_others`` CPUs busy is contended however clean its runs were: what the cores
share is slowed then, and no per-run signal shows by how much.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import attrs

from lenna_core.measurement.protocol import MeasurementProtocol
from lenna_core.records import Measurement


def _value(measurement: Measurement) -> float:
    """What passes are compared by: the per-pair ratio when compensated, else the median."""
    value = measurement.ratio if measurement.ratio is not None else measurement.median_ns
    assert value is not None
    return value


def passes_agree(passes: Sequence[Measurement], protocol: MeasurementProtocol) -> bool:
    """Whether enough passes are clean and their latencies lie within the agreement."""
    clean = [_value(p) for p in passes if p.ok]
    return (len(clean) >= protocol.passes
            and max(clean) <= (1 + protocol.agreement) * min(clean))


def under_load(passes: Sequence[Measurement], protocol: MeasurementProtocol) -> bool:
    """Whether every pass ran while other processes kept ``max_others`` CPUs busy."""
    return bool(passes) and all(p.others_cpu is not None and p.others_cpu >= protocol.max_others
                                for p in passes)


def label_done(passes: Sequence[Measurement], protocol: MeasurementProtocol) -> bool:
    """Whether a label's passes are final: one failed, they agree, the last was taken, or all
    the passes it needs ran under load (more would only cost time)."""
    return (any(p.status == "failed" for p in passes) or len(passes) >= protocol.max_passes
            or passes_agree(passes, protocol)
            or (len(passes) >= protocol.passes and under_load(passes, protocol)))


def combine(passes: Sequence[Measurement], protocol: MeasurementProtocol) -> Measurement:
    """The label of a workload's passes: all their samples, summarised over the clean ones of
    the fastest pass (see :class:`~lenna_core.records.Measurement`).

    A failed pass fails the label. The label is ``contended`` when fewer than
    ``protocol.label_min_runs`` of its samples were clean and some were spoiled.
    """
    failed = next((p for p in passes if p.status == "failed"), None)
    if failed is not None:
        return failed
    samples, waits, references, reference_waits, sample_pass = [], [], [], [], []
    for index, measured in enumerate(passes):
        samples += measured.samples_ns
        waits += measured.wait_ns
        references += measured.reference_samples_ns
        reference_waits += measured.reference_wait_ns
        sample_pass += [index] * len(measured.samples_ns)
    others = [p.others_cpu for p in passes if p.others_cpu is not None]
    memory = [p.peak_memory_bytes for p in passes if p.peak_memory_bytes is not None]
    device = [p.device_memory_bytes for p in passes if p.device_memory_bytes is not None]
    loaded = under_load(passes, protocol)
    reason = ("passes_agree" if passes_agree(passes, protocol)
              else "under_load" if loaded else "max_passes")
    label = Measurement.from_samples(
        samples, reason,
        references, wait_ns=waits, reference_wait_ns=reference_waits,
        max_wait=protocol.max_wait, min_clean=protocol.label_min_runs,
        sample_pass=tuple(sample_pass), passes=len(passes),
        others_cpu=statistics.fmean(others) if others else None,
        peak_memory_bytes=max(memory) if memory else None,
        device_memory_bytes=max(device) if device else None,
        op_profile=next((p.op_profile for p in passes if p.op_profile), None),
        seconds=sum(p.seconds or 0.0 for p in passes), timestamp=passes[-1].timestamp)
    return attrs.evolve(label, status="contended") if loaded else label
