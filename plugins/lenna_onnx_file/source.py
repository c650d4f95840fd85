"""The ``onnx-file`` source: one architecture per ONNX file, given as ``{"path": ...}``."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import Architecture, LennaError
from lenna_onnx_file.importer import load_onnx_graph


class OnnxFileSource:
    """Imports the Graph IR of an ONNX model file; it has no space to sample from."""

    name: ClassVar[str] = "onnx-file"
    requires: ClassVar[tuple[str, ...]] = ("onnx",)
    extra: ClassVar[str] = "onnxruntime"

    def sample(self, rng: np.random.Generator) -> Architecture:
        """Always fails: a file source has nothing to sample."""
        raise LennaError(
            "the onnx-file source cannot sample; give a file with --onnx or a spec {'path': ...}"
        )

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """The architecture of the ONNX file ``spec["path"]``."""
        if not isinstance(spec, Mapping):
            raise LennaError(f"an onnx-file spec must be an object {{'path': ...}}, got {spec!r}")
        unknown = sorted(set(spec) - {"path"})
        if unknown:
            raise LennaError(f"unknown onnx-file spec field(s) {', '.join(map(str, unknown))}; "
                             "the only field is 'path'")
        raw = spec.get("path")
        if not isinstance(raw, str | PathLike) or not str(raw):
            raise LennaError(f"the onnx-file spec needs a 'path' to an ONNX file, got {raw!r}")
        path = Path(raw)
        return Architecture(source=self.name, spec={"path": str(path)},
                            graph=load_onnx_graph(path))
