"""The frozen attrs records that flow between plugins, the store and the pipeline."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from lenna_core.errors import LennaError
from lenna_core.ir.graph import Graph
from lenna_core.measurement.interference import clean_mask

MODES = ("inference", "training")


def content_hash(data: Any, length: int = 16) -> str:
    """Short sha256 of a JSON-able value in canonical form."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class _IdentityByContent:
    """Equal and hashed by ``id``, the content hash: two objects are the same exactly when
    they are stored as the same row."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


@attrs.frozen(eq=False)
class Architecture(_IdentityByContent):
    """A network: the source that made it, the source's spec and its Graph IR.

    ``params`` holds architecture parameters the graph does not show, such as the DARTS α of
    a supernet; they are part of the identity. The id is the graph's content hash, combined
    with ``params`` when there are any.
    """

    source: str
    spec: Mapping[str, Any]
    graph: Graph
    params: Any = None

    @property
    def id(self) -> str:
        if self.params is None:
            return self.graph.id
        return content_hash({"graph": self.graph.id, "params": self.params})

    def to_dict(self) -> dict[str, Any]:
        data = {"id": self.id, "source": self.source, "spec": dict(self.spec),
                "graph": self.graph.to_dict()}
        if self.params is not None:
            data["params"] = self.params
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Architecture:
        """Accept an architecture object or a bare graph object; a LennaError names what is
        malformed."""
        if not isinstance(data, Mapping):
            raise LennaError(f"an architecture must be a JSON object, got {type(data).__name__}")
        if "graph" not in data:
            return cls("file", {}, Graph.from_dict(data))
        source, spec = data.get("source", "file"), data.get("spec") or {}
        if not isinstance(source, str) or not isinstance(spec, Mapping):
            raise LennaError("an architecture's 'source' must be a string and its 'spec' an "
                             f"object, got {type(source).__name__} and {type(spec).__name__}")
        return cls(source, dict(spec), Graph.from_dict(data["graph"]), data.get("params"))


@attrs.frozen
class Workload:
    """What is run: an architecture at a batch size, in inference or training mode."""

    architecture: Architecture
    batch_size: int = 1
    mode: str = "inference"
    optimizer: str | None = None
    dtype: str = "float32"

    def __attrs_post_init__(self) -> None:
        if self.batch_size < 1:
            raise LennaError(f"batch size must be at least 1, got {self.batch_size}")
        if self.mode not in MODES:
            raise LennaError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    @property
    def input_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The batched shape of every graph input, in graph order (kernels may have several)."""
        graph = self.architecture.graph
        return tuple((self.batch_size, *graph.shapes[n.name]) for n in graph.inputs)

    def settings(self) -> dict[str, Any]:
        """Everything but the architecture, as stored and hashed."""
        return {"batch_size": self.batch_size, "mode": self.mode,
                "optimizer": self.optimizer, "dtype": self.dtype}

    @property
    def id(self) -> str:
        return content_hash({"arch": self.architecture.id, **self.settings()})


@attrs.frozen(eq=False)
class Target(_IdentityByContent):
    """Where a workload runs: its name and the fingerprint of the device and software.

    The name is the backend that measured it (``onnxruntime``) or, for latencies imported from
    elsewhere, the device they name (``pi5/onnx/cifar100``); the store keeps it in the column
    ``backend``."""

    name: str
    fingerprint: Mapping[str, Any]

    @property
    def id(self) -> str:
        return content_hash({"backend": self.name, "fingerprint": dict(self.fingerprint)})


@attrs.frozen
class Measurement:
    """Raw samples (ns) and their robust summary; a failed one carries its reason.

    Every sample has the time the worker's threads waited for a CPU during it (``wait_ns``)
    and the pass it was taken in (``sample_pass``). The summary (median, p10, ...) is over the
    *clean* samples, those that waited at most the protocol's ``max_wait`` share of their
    duration, of the *fastest pass* (the one with the lowest median among those with at least
    ``MIN_PASS_RUNS`` clean samples): what slows a pass unseen — the host's other tenants,
    drift — only ever slows it. ``status`` is ``contended`` when too few samples were clean
    because others were spoiled, and the summary is then over all samples. ``contention`` is
    the share of the timed wall time spent waiting, and ``others_cpu`` how many CPUs' worth of
    time other processes used meanwhile (1.0: a whole CPU).

    A drift-compensated measurement also holds the interleaved reference samples and
    ``ratio``, the median of the per-pair ratios workload/reference; its latency is that
    ratio times the campaign's reference baseline (see :meth:`latency_ns`). A supernet's
    measurement has one sample per child (that child's latency) and ``expected_ns``, their
    cumulative average when the LENNA rule stopped.
    """

    status: str
    samples_ns: tuple[int, ...] = ()
    median_ns: float | None = None
    p10_ns: float | None = None
    p90_ns: float | None = None
    iqr_ns: float | None = None
    cv: float | None = None
    runs: int = 0
    stop_reason: str | None = None
    reference_samples_ns: tuple[int, ...] = ()
    reference_median_ns: float | None = None
    ratio: float | None = None
    expected_ns: float | None = None
    peak_memory_bytes: int | None = None
    device_memory_bytes: int | None = None
    op_profile: Mapping[str, Any] | None = None
    seconds: float | None = None
    error: str | None = None
    timestamp: float = attrs.field(factory=time.time)
    wait_ns: tuple[int, ...] = ()
    reference_wait_ns: tuple[int, ...] = ()
    sample_pass: tuple[int, ...] = ()
    clean_runs: int | None = None
    passes: int = 1
    contention: float | None = None
    others_cpu: float | None = None

    @classmethod
    def from_samples(cls, samples_ns: Sequence[int], stop_reason: str,
                     reference_samples_ns: Sequence[int] = (), *,
                     wait_ns: Sequence[int] = (), reference_wait_ns: Sequence[int] = (),
                     max_wait: float = math.inf, min_clean: int = 1,
                     **extra: Any) -> Measurement:
        """Summarise the clean samples (all of them when fewer than ``min_clean`` are clean);
        every summary can be recomputed from the stored samples and waits."""
        if not samples_ns:
            return cls.failed("no timed runs completed", **extra)
        arr = np.asarray(samples_ns, dtype=np.float64)
        ref = (np.asarray(reference_samples_ns, dtype=np.float64)
               if len(reference_samples_ns) else None)
        clean = np.array(clean_mask(samples_ns, wait_ns, max_wait), dtype=bool)
        waited = float(sum(wait_ns))
        if ref is not None:
            clean &= np.array(clean_mask(reference_samples_ns, reference_wait_ns, max_wait),
                              dtype=bool)
            waited += float(sum(reference_wait_ns))
        clean_runs = int(clean.sum())
        # too few clean runs is contention only when runs were spoiled: a slow workload
        # whose every run was clean is ok, just sampled less
        status = "ok" if clean_runs >= min_clean or clean.all() else "contended"
        kept = _label_mask(status, clean, extra.get("sample_pass", ()),
                           arr if ref is None else arr / ref)
        timed = float(arr.sum() + (ref.sum() if ref is not None else 0.0))
        values = arr[kept]
        p10, p25, p50, p75, p90 = np.percentile(values, [10, 25, 50, 75, 90])
        mean = float(values.mean())
        reference: dict[str, Any] = {}
        if ref is not None:
            reference = {
                "reference_samples_ns": tuple(int(s) for s in reference_samples_ns),
                "reference_wait_ns": tuple(int(w) for w in reference_wait_ns),
                "reference_median_ns": float(np.median(ref[kept])),
                "ratio": float(np.median(values / ref[kept])),
            }
        return cls(
            status=status,
            samples_ns=tuple(int(s) for s in samples_ns),
            wait_ns=tuple(int(w) for w in wait_ns),
            median_ns=float(p50), p10_ns=float(p10), p90_ns=float(p90),
            iqr_ns=float(p75 - p25), cv=float(values.std() / mean) if mean > 0 else 0.0,
            runs=len(samples_ns), clean_runs=clean_runs,
            contention=waited / timed if len(wait_ns) == len(arr) and timed > 0 else None,
            stop_reason=stop_reason, **reference, **extra,
        )

    @classmethod
    def failed(cls, error: str, **extra: Any) -> Measurement:
        return cls(status="failed", error=error, **extra)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def contended(self) -> bool:
        return self.status == "contended"

    def usable(self, keep_contended: bool = False) -> bool:
        """Whether the label may be fitted: ok, or contended when those are kept."""
        return self.ok or (keep_contended and self.contended)

    def label_samples_ns(self, max_wait: float) -> np.ndarray:
        """The samples the median was taken over (clean, of the fastest pass), recomputed from
        the raw samples with the protocol's ``max_wait``; empty for a supernet's or a
        drift-compensated label, whose figure is not a median of samples."""
        if self.expected_ns is not None or self.ratio is not None or not self.samples_ns:
            return np.array([], dtype=np.float64)
        arr = np.asarray(self.samples_ns, dtype=np.float64)
        clean = np.array(clean_mask(self.samples_ns, self.wait_ns, max_wait), dtype=bool)
        return arr[_label_mask(self.status, clean, self.sample_pass, arr)]

    def latency_ns(self, baseline_ns: float | None = None) -> float | None:
        """The reported latency: the expected latency over children for a supernet, the
        ratio × reference baseline when compensated, else the median."""
        if self.expected_ns is not None:
            return self.expected_ns
        if self.ratio is not None and baseline_ns is not None:
            return self.ratio * baseline_ns
        return self.median_ns


MIN_PASS_RUNS = 3
"""Clean samples a pass needs for its median to count when the fastest pass is chosen."""


def _label_mask(status: str, clean: np.ndarray, sample_pass: Sequence[int],
                values: np.ndarray) -> np.ndarray:
    """The samples a label's summary is over: the clean ones of the fastest pass when it is
    ``ok``, all of them when it is contended."""
    if status != "ok":
        return np.ones(len(values), dtype=bool)
    if len(set(sample_pass)) > 1:
        return clean & _fastest_pass(np.asarray(sample_pass), clean, values)
    return clean


def _fastest_pass(sample_pass: np.ndarray, clean: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The samples of the pass whose clean samples have the lowest median (of those with at
    least ``MIN_PASS_RUNS`` clean samples; all passes when none has that many)."""
    medians = {}
    for index in np.unique(sample_pass):
        chosen = clean & (sample_pass == index)
        if chosen.sum() >= MIN_PASS_RUNS:
            medians[index] = float(np.median(values[chosen]))
    if not medians:
        return np.ones(len(sample_pass), dtype=bool)
    return sample_pass == min(medians, key=medians.__getitem__)


@attrs.frozen
class FitReport:
    """An estimator's evaluation: metrics as (mean, std) over splits, and the predictions."""

    estimator: str
    params: Mapping[str, Any]
    split: str
    metrics: Mapping[str, tuple[float, float]]
    per_split: tuple[Mapping[str, float], ...]
    predictions: tuple[tuple[str, float, float, int], ...] = ()
    """(architecture id, measured, predicted, split index) for every test row."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "params": dict(self.params),
            "split": self.split,
            "metrics": {k: mean for k, (mean, _) in self.metrics.items()},
            "metrics_std": {k: std for k, (_, std) in self.metrics.items()},
            "per_split": [dict(m) for m in self.per_split],
        }
