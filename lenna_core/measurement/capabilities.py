"""What a backend can run: modes, optimizers and dtypes, checked in one place."""

from __future__ import annotations

from typing import Any

import attrs

from lenna_core.errors import LennaError
from lenna_core.plugins.interfaces import optional, source_workload
from lenna_core.records import Architecture, Workload


def check_mode(backend_cls: type, mode: str, optimizer: str | None) -> str | None:
    """Refuse a mode or optimizer the backend lacks; return the optimizer to use.

    A backend declares ``modes`` (default inference only) and ``optimizers`` (the first is
    the default of a training step).
    """
    modes = optional(backend_cls, "modes")
    if mode not in modes:
        raise LennaError(f"backend {backend_cls.name} supports {', '.join(modes)}, not {mode}")
    if mode == "inference":
        if optimizer is not None:
            raise LennaError("--optimizer applies to --mode training only")
        return None
    optimizers = optional(backend_cls, "optimizers")
    chosen = optimizer or (optimizers[0] if optimizers else None)
    if chosen not in optimizers:
        raise LennaError(f"backend {backend_cls.name} has no optimizer {chosen!r}; "
                         f"available: {', '.join(optimizers)}")
    return chosen


def check_workload(backend_cls: type, workload: object) -> str | None:
    """:func:`check_mode` for a workload, which must also be float32; returns the optimizer."""
    if workload.dtype != "float32":
        raise LennaError(f"backend {backend_cls.name} supports float32 only, "
                         f"not {workload.dtype!r}")
    return check_mode(backend_cls, workload.mode, workload.optimizer)


def workload_for(source: Any, arch: Architecture, backend_cls: type,
                 **settings: Any) -> Workload:
    """The workload of an architecture: the run's settings, or those its spec fixes, with the
    optimizer the backend takes for its mode."""
    workload = source_workload(source, arch, **settings)
    return attrs.evolve(workload, optimizer=check_mode(backend_cls, workload.mode,
                                                       workload.optimizer))
