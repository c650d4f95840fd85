"""Measurement campaigns: sample architectures, measure what the store lacks, commit each.

Labels are taken in passes spread over time: the campaign goes through its workloads in groups
of up to ``GROUP`` whose prepared models the worker keeps; round after round, every unfinished
label of the group gets one pass, in a new shuffled order each round, so that a label's passes
lie several seconds apart. Each pass is committed as it is taken and each label as soon as its
passes are final, so an interrupted campaign resumes where it stopped. Campaigns sharing a
store claim each group's labels before taking them (:class:`Claims`) and leave the labels
another campaign holds to it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence

import attrs
import numpy as np

from lenna_core.data.store import Store, owner_name
from lenna_core.errors import LennaError
from lenna_core.measurement.host import available_bytes, host_fingerprint, minimum_bytes
from lenna_core.measurement.passes import combine, label_done
from lenna_core.measurement.protocol import LennaRule, MeasurementProtocol
from lenna_core.measurement.worker import Worker
from lenna_core.plugins.calls import plugin_call
from lenna_core.plugins.interfaces import Source, optional
from lenna_core.progress import progress_bar
from lenna_core.records import Architecture, Measurement, Target, Workload

Children = Callable[[Architecture, np.random.Generator], Architecture]
MAX_CHILDREN = 100
GROUP = 8
"""Labels whose passes are taken in turn; the worker keeps their models prepared meanwhile."""
GROUP_MEMORY_SHARE = 0.25
"""The models kept prepared take at most this share of the available memory (lower bound)."""
CLAIM_TTL = 60.0
"""Seconds a claim on a label lasts unless renewed (every third of it while a campaign runs):
the labels of a campaign that was killed on another host are taken over after this."""
CLAIM_POLL = 2.0
"""Seconds between looks at labels another campaign is taking."""


def sample_architectures(source: Source, n: int, seed: int) -> list[Architecture]:
    """``n`` distinct architectures (with distinct workload settings, where the source fixes
    them) drawn with a generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    settings = optional(source, "workload_settings")
    found: dict[str, Architecture] = {}
    for _ in range(max(50, 20 * n)):
        if len(found) == n:
            break
        with plugin_call(source, "sample"):
            arch = source.sample(rng)
        with plugin_call(source, "workload_settings"):
            key = f"{arch.id}:{sorted(settings(arch).items())}"
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
    """The measurements of a campaign, in workload order, and how many it took itself (the
    others were stored already or taken by another campaign meanwhile)."""

    target: Target
    workloads: tuple[Workload, ...]
    measurements: tuple[Measurement, ...]
    measured: int

    @property
    def reused(self) -> int:
        return len(self.workloads) - self.measured

    def contention_line(self) -> str | None:
        """One line on the labels taken under contention, or None when there are none."""
        contended = [m for m in self.measurements if m.contended]
        if not contended:
            return None
        waited = [m.contention for m in contended if m.contention is not None]
        others = [m.others_cpu for m in contended if m.others_cpu is not None]
        why = []
        if waited:
            why.append(f"their runs waited for a CPU {np.mean(waited):.0%} of the time")
        if others:
            why.append(f"other processes used {np.mean(others):.0%} of a CPU meanwhile")
        reason = f" ({'; '.join(why)})" if why else ""
        threads = self.target.fingerprint.get("threads_setting")
        advice = "re-run on a quiet machine" + ("" if threads == 1 else " or with --threads 1")
        return (f"{len(contended)} of {len(self.measurements)} labels were taken under "
                f"contention{reason}; {advice}")


def measure_expected(worker: Worker, workload: Workload, protocol: MeasurementProtocol,
                     children: Children, max_children: int = MAX_CHILDREN) -> Measurement:
    """The expected latency of a supernet over children drawn by binary gates.

    Reset the gates (draw a child), measure it in one pass, keep the cumulative average of the
    children's medians, and stop under the LENNA rule: less than 1% change for 10 consecutive
    resets. The label is contended when a child's was. Children are drawn from a generator
    seeded by the architecture id, so a re-run draws the same ones.
    """
    rng = np.random.default_rng(int(workload.architecture.id[:12], 16))
    rule = LennaRule(protocol.tolerance, protocol.patience)
    started = time.perf_counter()
    latencies: list[float] = []
    contended = 0
    while len(latencies) < max_children and not rule.converged:
        with plugin_call(children, "children"):
            child = children(workload.architecture, rng)
        measured = worker.measure(attrs.evolve(workload, architecture=child),
                                  protocol.single_pass())
        if measured.status == "failed":
            return Measurement.failed(f"child {len(latencies) + 1}: {measured.error}")
        contended += measured.contended
        latencies.append(measured.median_ns)
        rule.add(measured.median_ns)
    label = Measurement.from_samples(
        [round(v) for v in latencies], "converged" if rule.converged else "max_children",
        expected_ns=rule.average, seconds=time.perf_counter() - started)
    return attrs.evolve(label, status="contended") if contended else label


def run_campaign(store: Store, worker: Worker, workloads: Sequence[Workload],
                 protocol: MeasurementProtocol, children: Children | None = None, *,
                 retry_failed: bool = False) -> CampaignResult:
    """Measure every workload the store lacks on the worker's target, in passes spread over
    the campaign, committing each pass and each final label.

    With ``children`` (a source's gate sampler) each supernet (an architecture with
    parameters) is labelled by :func:`measure_expected` in one go; other architectures of
    the source, such as its children, are measured as they are. With ``retry_failed`` a
    stored failed label is measured again. Labels another campaign has claimed are left to
    it and read from the store when it has finished them (or taken over if it ends without).
    """
    target = target_of(worker)
    store.add_target(target)
    labels: dict[str, Measurement] = {}
    for workload in workloads:
        stored = store.get_measurement(workload, target, protocol.key)
        if stored is not None and not (retry_failed and stored.status == "failed"):
            labels[workload.id] = stored
    pending = list({w.id: w for w in workloads if w.id not in labels}.values())
    taken = store.pending_passes(target, protocol.key)
    planned = {w.id: 1 if children and _supernet(w) else
               max(1, protocol.passes - len(taken.get(w.id, []))) for w in pending}
    with (progress_bar(sum(planned.values()), f"measuring on {worker.settings.backend}")
          as advance, Claims(store, target, protocol.key) as claims):
        campaign = _Campaign(store, worker, target, protocol, children, labels, planned,
                             advance, np.random.default_rng(len(workloads)))
        waiting: list[Workload] = []
        for group in _groups(pending):
            mine = claims.take([w.id for w in group])
            waiting += [w for w in group if w.id not in mine]
            campaign.measure([w for w in group if w.id in mine])
        while waiting:
            waiting = campaign.settle(waiting)
            mine = claims.take([w.id for w in waiting])
            campaign.measure([w for w in waiting if w.id in mine])
            waiting = [w for w in waiting if w.id not in mine]
            if waiting:
                time.sleep(CLAIM_POLL)
    measurements = tuple(labels[w.id] for w in workloads)
    return CampaignResult(target, tuple(workloads), measurements, campaign.finished)


class Claims:
    """The labels a campaign has claimed, renewed in the background while it runs and
    released when it ends, so that campaigns sharing a store never take the same label."""

    def __init__(self, store: Store, target: Target, protocol: str) -> None:
        self.store, self.target, self.protocol = store, target, protocol
        self.owner = owner_name()
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, daemon=True,
                                         name="lenna-claims")

    def __enter__(self) -> Claims:
        self._renewer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._renewer.join()
        with contextlib.suppress(LennaError):  # unreleased claims expire by themselves
            self.store.release_claims(self.owner)

    def take(self, workload_ids: Sequence[str]) -> set[str]:
        """Claim what is free of ``workload_ids``; return the ids this campaign holds."""
        return self.store.claim(workload_ids, self.target, self.protocol, self.owner,
                                CLAIM_TTL) if workload_ids else set()

    def _renew(self) -> None:
        while not self._stop.wait(CLAIM_TTL / 3):
            with contextlib.suppress(LennaError):  # a busy store: the next renewal will do
                self.store.renew_claims(self.owner, CLAIM_TTL)


@attrs.define
class _Campaign:
    """The state of one campaign: the labels so far and the progress of each."""

    store: Store
    worker: Worker
    target: Target
    protocol: MeasurementProtocol
    children: Children | None
    labels: dict[str, Measurement]
    planned: dict[str, int]
    advance: Callable[..., None]
    rng: np.random.Generator
    used: dict[str, int] = attrs.field(factory=dict)
    finished: int = 0

    def measure(self, group: Sequence[Workload]) -> None:
        """Take the labels of a group this campaign has claimed: one pass of each unfinished
        label per round, in a new order each round."""
        if not group:
            return
        key = self.protocol.key
        taken = self.store.pending_passes(self.target, key, [w.id for w in group])
        for _ in range(self.protocol.max_passes):
            todo = [w for w in group if w.id not in self.labels]
            for workload in (todo[i] for i in self.rng.permutation(len(todo))):
                passes = taken.setdefault(workload.id, [])
                label = _too_big(workload) or (
                    measure_expected(self.worker, workload, self.protocol, self.children)
                    if self.children and _supernet(workload) else None)
                if label is None:
                    passes.append(self.worker.measure(workload, self.protocol,
                                                      profile=not passes, keep=True))
                    if label_done(passes, self.protocol):
                        label = combine(passes, self.protocol)
                        self.worker.release(workload)
                    else:
                        self.store.add_pass(workload, self.target, key, len(passes) - 1,
                                            passes[-1])
                self.used[workload.id] = self.used.get(workload.id, 0) + 1
                change = 0
                if label is not None:
                    self.store.finish_label(workload, self.target, key, label)
                    self.labels[workload.id] = label
                    self.finished += 1
                    change = self.used[workload.id] - self.planned[workload.id]
                self.advance(_status(workload, passes, label), change)

    def settle(self, waiting: Sequence[Workload]) -> list[Workload]:
        """Take the labels other campaigns have stored meanwhile; return those still
        missing."""
        missing = []
        for workload in waiting:
            stored = self.store.get_measurement(workload, self.target, self.protocol.key)
            if stored is None:
                missing.append(workload)
                continue
            self.labels[workload.id] = stored
            self.advance(f"{workload.architecture.id[:8]} taken by another campaign",
                         1 - self.planned[workload.id])
        return missing


def _supernet(workload: Workload) -> bool:
    """Whether the workload is a supernet: an architecture with parameters (DARTS's α)."""
    return workload.architecture.params is not None


def _groups(workloads: Sequence[Workload]) -> list[list[Workload]]:
    """Consecutive groups of at most ``GROUP`` workloads whose models fit in a share of the
    available memory together (a workload too big for that is a group of its own)."""
    available = available_bytes()
    limit = None if available is None else GROUP_MEMORY_SHARE * available
    groups: list[list[Workload]] = []
    size = 0
    for workload in workloads:
        needed = minimum_bytes(workload)
        if (not groups or len(groups[-1]) >= GROUP
                or (limit is not None and size + needed > limit)):
            groups.append([])
            size = 0
        groups[-1].append(workload)
        size += needed
    return groups


def _status(workload: Workload, passes: list[Measurement], label: Measurement | None) -> str:
    """The progress line of one pass or label."""
    name = workload.architecture.id[:8]
    if label is None:
        last = passes[-1]
        return f"{name} pass {len(passes)}: {last.median_ns / 1e6:.2f} ms ({last.status})"
    if label.status == "failed":
        return f"{name} failed: {(label.error or '')[:60]}"
    return f"{name} {label.median_ns / 1e6:.2f} ms ({label.status}, {label.passes} passes)"
