"""The conv layers of real models, shipped as a table, as a distribution to sample from.

``real_layers.json`` lists, per torchvision model at 224×224, its conv layers as
``[kernel, filters, in_channels, size, stride, groups]`` (square kernels and maps, no
dilation: every conv of the fifteen default models). Regenerate it with
``python -m lenna_torchvision.layer_table``; a test checks it against torchvision.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import numpy as np

from lenna_core.api import LennaError

FIELDS = ("kernel", "filters", "in_channels", "size", "stride", "groups")
TABLE = "real_layers.json"


@functools.cache
def load_table() -> dict[str, Any]:
    """The shipped table: ``{"input_size": 224, "models": {name: [[...], ...]}}``."""
    return json.loads(resources.files("lenna_conv_layers").joinpath(TABLE).read_text())


class RealLayers:
    """Uniform draws over the conv layers of ``models`` (a comma list; every model in the
    table by default), each at one of ``input_sizes`` (its map scaled from 224)."""

    def __init__(self, models: str | None, input_sizes: str | int) -> None:
        table = load_table()
        known = table["models"]
        chosen = [m.strip() for m in models.split(",") if m.strip()] if models else list(known)
        unknown = [m for m in chosen if m not in known]
        if unknown or not chosen:
            raise LennaError(f"conv-layers option models: unknown {', '.join(unknown) or '(none)'}"
                             f"; the real-layer table has {', '.join(known)}")
        try:
            self.input_sizes = [int(v) for v in str(input_sizes).split(",")]
        except ValueError:
            self.input_sizes = []
        if not self.input_sizes or min(self.input_sizes) < 32 or max(self.input_sizes) > 1024:
            raise LennaError(f"conv-layers option input_sizes must be ints in [32, 1024], "
                             f"got {input_sizes!r}")
        self.base = int(table["input_size"])
        self.rows = [row for m in chosen for row in known[m]]

    def sample_spec(self, rng: np.random.Generator) -> dict[str, int]:
        """One real layer, at an input size drawn from ``input_sizes``."""
        spec = dict(zip(FIELDS, self.rows[int(rng.integers(len(self.rows)))], strict=True))
        scale = self.input_sizes[int(rng.integers(len(self.input_sizes)))] / self.base
        spec["size"] = max(spec["stride"], round(spec["size"] * scale))
        return spec
