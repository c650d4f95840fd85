"""Helpers for sources that validate JSON specs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lenna_core.errors import LennaError


def check_spec_fields(source: str, spec: Any, allowed: Iterable[str]) -> Mapping[str, Any]:
    """Return ``spec`` if it is an object with only ``allowed`` fields, else a LennaError."""
    if not isinstance(spec, Mapping):
        raise LennaError(f"{source} spec must be an object, got {type(spec).__name__}")
    allowed = list(allowed)
    unknown = sorted(str(k) for k in set(spec) - set(allowed))
    if unknown:
        raise LennaError(f"{source} spec: unknown field(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(allowed)}")
    return spec
