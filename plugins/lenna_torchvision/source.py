"""The ``torchvision`` source: torchvision's classification models as Graph IR.

A spec is ``{"model": "resnet50", "input_size": 224, "width": 1.0, "num_classes": 1000}``;
only ``model`` is required. The model is traced with torch.fx (nothing is downloaded and no
weights are kept); everything the IR cannot express is named in one error.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import Architecture, Graph, LennaError, check_spec_fields
from lenna_torchvision.models import DEFAULT_MODELS, build_model

FIELDS = ("model", "input_size", "width", "num_classes")
MIN_SIZE, MAX_SIZE = 8, 1024
MAX_WIDTH = 4.0


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LennaError(f"torchvision {where} must be an int in [{low}, {high}], got {value!r}")
    return value


def _width(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0 < value <= MAX_WIDTH):
        raise LennaError(f"torchvision {where} must be a number in (0, {MAX_WIDTH:g}], "
                         f"got {value!r}")
    return float(value)


def _list(option: str, text: str, parse: Any) -> tuple[Any, ...]:
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise LennaError(f"torchvision option {option} must be a comma list, got {text!r}")
    values = []
    for part in parts:
        try:
            values.append(parse(part))
        except ValueError:
            raise LennaError(f"torchvision option {option}: {part!r} is not a number") from None
    return tuple(values)


def traced_graph(model: str, input_size: int, width: float, num_classes: int) -> Graph:
    """The Graph IR of a torchvision model for 3×input_size×input_size images; a model that
    cannot be traced raises the same LennaError every time, without tracing again."""
    outcome = _trace(model, input_size, width, num_classes)
    if isinstance(outcome, LennaError):
        raise outcome
    return outcome


@functools.lru_cache(maxsize=128)
def _trace(model: str, input_size: int, width: float, num_classes: int) -> Graph | LennaError:
    from lenna_torch.fx_import import module_to_graph

    label = f"torchvision {model}" + (f" (width {width:g})" if width != 1.0 else "")
    try:
        return module_to_graph(build_model(model, width, num_classes),
                               (3, input_size, input_size), name=label)
    except LennaError as exc:
        return exc


class TorchvisionSource:
    """torchvision's models at chosen input sizes and widths, with random weights.

    Sampling draws a model from ``models`` (the fifteen checked against torchvision's
    published figures by default), an input size from ``input_sizes`` and, for models with
    width variants, a width from ``widths`` (comma lists).
    """

    name: ClassVar[str] = "torchvision"
    requires: ClassVar[tuple[str, ...]] = ("torch", "torchvision")
    extra: ClassVar[str] = "torchvision"

    def __init__(self, models: str | None = None, input_sizes: str | int = "224",
                 widths: str | float = "1.0", num_classes: int = 1000) -> None:
        self.models = _list("models", models, str) if models else DEFAULT_MODELS
        self.input_sizes = tuple(_int(v, "option input_sizes", MIN_SIZE, MAX_SIZE)
                                 for v in _list("input_sizes", str(input_sizes), int))
        self.widths = tuple(_width(v, "option widths") for v in _list("widths", str(widths),
                                                                        float))
        self.num_classes = _int(num_classes, "option num_classes", 1, 100_000)

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A model, an input size and (where the model has variants) a width, uniformly over
        the combinations the IR can express (VGG's classifier, say, wants 7×7 features)."""
        from lenna_torchvision.models import WIDTH_BUILDERS

        combinations = [(m, s, w) for m in self.models for s in self.input_sizes
                        for w in (self.widths if m in WIDTH_BUILDERS else (1.0,))]
        problems = []
        for index in rng.permutation(len(combinations)):
            model, size, width = combinations[index]
            try:
                return self.from_spec({"model": model, "input_size": size, "width": width})
            except LennaError as exc:
                problems.append(str(exc))
        raise LennaError(f"no torchvision model, input size and width of these options can "
                         f"be traced: {problems[0]}")

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """Trace the model; LennaError names a bad field, an unknown model or what the IR
        cannot express."""
        check_spec_fields(self.name, spec, FIELDS)
        model = spec.get("model")
        if not isinstance(model, str):
            raise LennaError(f"torchvision spec needs 'model', a torchvision model name, "
                             f"got {model!r}")
        clean = {
            "model": model,
            "input_size": _int(spec.get("input_size", self.input_sizes[0]),
                               "spec field 'input_size'", MIN_SIZE, MAX_SIZE),
            "width": _width(spec.get("width", 1.0), "spec field 'width'"),
            "num_classes": _int(spec.get("num_classes", self.num_classes),
                                "spec field 'num_classes'", 1, 100_000),
        }
        graph = traced_graph(clean["model"], clean["input_size"], clean["width"],
                             clean["num_classes"])
        return Architecture(self.name, clean, graph)
