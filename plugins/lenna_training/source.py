"""The ``training-workloads`` source: (model, dataset, optimizer, batch size) keyed workloads.

A spec is ``{"model": "lenet5", "dataset": "mnist", "optimizer": "adam", "batch_size": 64}``;
only the model is required: a missing dataset is the model's first compatible one in
``DATASETS`` order (lenet5: mnist, lstm: text, lstm-regressor: sequence, densenet-small:
cifar10), a missing optimizer ``sgd`` and a missing batch size 32. The architecture's spec
holds all four fields, filled, and together they name the workload. The graph depends on
the model and the dataset (input shape, classes);
:meth:`TrainingWorkloadsSource.workload_settings` gives the optimizer and batch size, so specs
differing only in those share an architecture and differ in workload id. MNIST and
Fashion-MNIST give equal graphs, so the dataset is kept in the architecture's ``params`` to
keep their architecture ids apart.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from numbers import Integral
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import Architecture, LennaError, check_spec_fields
from lenna_training.models import (
    densenet_small,
    lenet5,
    lstm_regressor,
    resnet_small,
    text_lstm,
    vgg_small,
)

MODELS = {"lenet5": lenet5, "vgg-small": vgg_small, "resnet-small": resnet_small,
          "lstm": text_lstm, "lstm-regressor": lstm_regressor, "densenet-small": densenet_small}
DATASETS = {  # input shape without batch, classes (outputs)
    "mnist": ((1, 28, 28), 10),
    "fashion-mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "text": ((64, 128), 2),  # 64 tokens of 128-dimensional embeddings
    "sequence": ((50, 8), 1),  # 50 steps of 8 features, one regression target
}
SEQUENCE_MODELS = {"lstm": "text", "lstm-regressor": "sequence"}
"""The dataset each sequence model reads; the other models read the image datasets."""
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
BATCH_SIZES = (16, 32, 64, 128, 256)
FIELDS = ("model", "dataset", "optimizer", "batch_size")


def compatible(model: str, dataset: str) -> bool:
    """The lstm reads text, the lstm-regressor sequences, densenet-small 32x32 images (it is
    DenseNet-BC's configuration for CIFAR) and the other models any (C, H, W) images."""
    if model in SEQUENCE_MODELS:
        return dataset == SEQUENCE_MODELS[model]
    shape = DATASETS[dataset][0]
    if model == "densenet-small":
        return shape[1:] == (32, 32)
    return len(shape) == 3


def defaults(model: str) -> dict[str, Any]:
    """The fields a spec of ``model`` may leave out: its first compatible dataset, SGD, 32."""
    dataset = next(name for name in DATASETS if compatible(model, name))
    return {"dataset": dataset, "optimizer": "sgd", "batch_size": 32}


def all_specs() -> list[dict[str, Any]]:
    """Every valid (model, dataset, optimizer, batch size), in a fixed order."""
    return [dict(zip(FIELDS, combo, strict=True))
            for combo in itertools.product(MODELS, DATASETS, OPTIMIZERS, BATCH_SIZES)
            if compatible(combo[0], combo[1])]


def _checked(field: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` if it is one of ``allowed``, else a LennaError naming the field."""
    # only names and integers (not 16.0 or True, which equal allowed values)
    if isinstance(value, bool) or not isinstance(value, str | Integral) or value not in allowed:
        raise LennaError(f"training-workloads spec: {field} {value!r} is not "
                         f"one of {', '.join(map(str, allowed))}")
    return value if isinstance(value, str) else int(value)


def _choices(option: str, text: str | None, allowed: Mapping[str, Any]) -> tuple[str, ...]:
    if text is None:
        return tuple(allowed)
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [c for c in chosen if c not in allowed]
    if unknown or not chosen:
        raise LennaError(f"training-workloads option {option}: unknown {', '.join(unknown)}; "
                         f"choose from {', '.join(allowed)}")
    return chosen


class TrainingWorkloadsSource:
    """LeNet-5, VGG-small, ResNet-small and DenseNet-small on MNIST, Fashion-MNIST and
    CIFAR-10, a text LSTM on text and a bidirectional LSTM regressor on a numeric sequence,
    trained with one of five optimizers at one of five batch sizes. A spec needs only the
    model (see the module docstring for the defaults). ``models`` and ``datasets`` (comma
    lists) restrict sampling."""

    name: ClassVar[str] = "training-workloads"

    def __init__(self, models: str | None = None, datasets: str | None = None) -> None:
        self.models = _choices("models", models, MODELS)
        self.datasets = _choices("datasets", datasets, DATASETS)
        self.specs = [s for s in all_specs()
                      if s["model"] in self.models and s["dataset"] in self.datasets]
        if not self.specs:
            raise LennaError("training-workloads options leave no workload: the lstm model "
                             "needs the text dataset, lstm-regressor the sequence dataset, "
                             "densenet-small cifar10, the others an image dataset")

    def sample(self, rng: np.random.Generator) -> Architecture:
        """One workload drawn uniformly from the allowed combinations."""
        return self.from_spec(self.specs[int(rng.integers(len(self.specs)))])

    def from_spec(self, spec: Mapping[str, Any]) -> Architecture:
        """Build the model for the dataset, filling missing fields with :func:`defaults`;
        LennaError names a bad field."""
        check_spec_fields(self.name, spec, FIELDS)
        if "model" not in spec:
            raise LennaError("training-workloads spec: missing field 'model'")
        model = _checked("model", spec["model"], MODELS)
        clean = {"model": model, **defaults(model)}
        for field, allowed in (("dataset", DATASETS), ("optimizer", OPTIMIZERS),
                               ("batch_size", BATCH_SIZES)):
            if field in spec:
                clean[field] = _checked(field, spec[field], allowed)
        if not compatible(model, clean["dataset"]):
            usable = [name for name in DATASETS if compatible(model, name)]
            raise LennaError(f"training-workloads spec: model {model} cannot train on "
                             f"dataset {clean['dataset']}; it trains on {', '.join(usable)}")
        shape, classes = DATASETS[clean["dataset"]]
        graph = MODELS[model](shape, classes)
        # the dataset is part of the identity: MNIST and Fashion-MNIST share a graph
        return Architecture(self.name, clean, graph, {"dataset": clean["dataset"]})

    def workload_settings(self, arch: Architecture) -> dict[str, Any]:
        """A training step with the spec's optimizer and batch size."""
        return {"batch_size": arch.spec["batch_size"], "mode": "training",
                "optimizer": arch.spec["optimizer"]}
