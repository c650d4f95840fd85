"""The latency-aware DARTS search over darts-cells blocks (the source's ``search_space``).

The search network is a stem (3×3 conv, BN) to ``channels``, the searched cells in the order
``cells`` names them (``normal`` keeps C×H×W, ``reduction`` doubles C and halves H and W),
global average pooling and a linear classifier. Each cell is a darts-cells supernet block
whose edges sum the ops weighted by softmax(α), one α for all normal cells and one for all
reduction cells, as in DARTS. The search is first-order DARTS: each step trains α on a batch
of the validation split, then the weights on a batch of the training split, with

    loss_α = cross-entropy + λ · ln(classes) · T(α) / T(α₀)

where T is the latency term, the sum over cells of the predictor applied to each cell's
``darts-encoding`` built from softmax(α), and α₀ the initial α: λ = 1 makes the latency term
at the start as large as the cross-entropy of a network that guesses. The first ``warmup``
epochs train the weights only, so that α does not judge ops before they have learnt.

The discrete cells follow DARTS: on each edge the strongest op other than ``none``, and per
layer the two edges whose ops are strongest; the other edges get ``none``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from lenna_core.api import LennaError
from lenna_darts.blocks import BLOCKS, NONE, OPS, edges, softmax
from lenna_darts.encoding import DartsEncodingFeaturizer
from lenna_darts.latency import BlockEncoding

KEPT_INPUTS = 2
"""Edges a derived layer keeps, as a DARTS node keeps two inputs."""
DEFAULT_CELLS = "normal,reduction"
NUMBERS = {  # option -> (default, type, low, high)
    "channels": (8, int, 1, 256),
    "batch_size": (64, int, 1, 4096),
    "warmup": (5, int, 0, 10_000),
    "weight_lr": (0.05, float, 1e-6, 10.0),
    "arch_lr": (0.01, float, 1e-6, 10.0),
}
WEIGHT_DECAY = 3e-4
ARCH_WEIGHT_DECAY = 1e-3
GRADIENT_CLIP = 5.0


def derived_cell(alpha: np.ndarray, layers: int) -> list[int]:
    """DARTS's discrete cell of ``alpha`` (edges × ops) as one op index per edge: per edge the
    strongest op but ``none``; per layer the :data:`KEPT_INPUTS` edges whose ops are
    strongest, the rest ``none``."""
    weights = softmax(alpha)[:, :NONE]
    best = weights.argmax(axis=1)
    strength = weights.max(axis=1)
    choice = [NONE] * len(alpha)
    first = 0
    for layer in range(1, layers + 1):
        incoming = range(first, first + layer + 1)
        for e in sorted(incoming, key=lambda e: -strength[e])[:KEPT_INPUTS]:
            choice[e] = int(best[e])
        first += layer + 1
    return choice


class DartsSearchSpace:
    """Searches darts-cells blocks by first-order DARTS with a latency term.

    Options (``--space-option``): ``cells`` (comma-separated blocks, default
    ``normal,reduction``, both at the stem's shape, so that one predictor shape covers them),
    ``channels`` (of the stem, default 8), ``batch_size`` (64), ``warmup`` (epochs training
    weights only, 5), ``weight_lr`` (SGD, 0.05) and ``arch_lr`` (Adam on α, 0.01). The cells
    have the source's ``layers``.
    """

    features: ClassVar[str] = DartsEncodingFeaturizer.name

    def __init__(self, source: Any, input_shape: Sequence[int], classes: int, seed: int = 0,
                 **options: Any) -> None:
        unknown = sorted(set(options) - set(NUMBERS) - {"cells"})
        if unknown:
            raise LennaError(f"unknown search option {unknown[0]}; the darts-cells search "
                             f"takes {', '.join(['cells', *NUMBERS])}")
        for name, (default, kind, low, high) in NUMBERS.items():
            value = options.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or (
                    kind is int and not isinstance(value, int)) or not low <= value <= high:
                what = "an integer" if kind is int else "a number"
                raise LennaError(f"search option {name} must be {what} in [{low}, {high}], "
                                 f"got {value!r}")
            setattr(self, name, kind(value))
        cells = options.get("cells", DEFAULT_CELLS)
        blocks = cells.split(",") if isinstance(cells, str) else cells
        if not isinstance(blocks, list) or not blocks or any(b not in BLOCKS for b in blocks):
            raise LennaError(f"search option cells must be a comma-separated list of "
                             f"{' and '.join(BLOCKS)}, got {cells!r}")
        self.layers = source.layers
        self.input_shape = tuple(input_shape)
        self.classes, self.seed = classes, seed
        channels, size = self.channels, self.input_shape[1]
        self.cells: list[dict[str, Any]] = []
        for block in blocks:
            if block == "reduction" and size % 2:
                raise LennaError(f"a reduction cell needs an even input size, but the images "
                                 f"are {size}×{size} there; give --image-size a power of 2")
            self.cells.append({"block": block, "layers": self.layers, "channels": channels,
                               "input_size": size})
            if block == "reduction":
                channels, size = 2 * channels, size // 2
        self.edges = len(edges(self.layers))
        self._encodings: dict[tuple[int, tuple[str, ...]], BlockEncoding] = {}

    def _blocks(self) -> list[str]:
        return sorted({cell["block"] for cell in self.cells})

    def expected_latency(self, parameters: Mapping[str, Any], latency: Any) -> Any:
        """Σ over cells of the predictor on the cell's encoding from softmax(α), seconds."""
        total = 0.0
        names = tuple(latency.feature_names)
        for index, cell in enumerate(self.cells):
            key = (index, names)
            if key not in self._encodings:
                self._encodings[key] = BlockEncoding(cell, names)
            total = total + latency(self._encodings[key](parameters[cell["block"]]))[0]
        return total

    def search(self, data: Any, lam: float, latency: Any, epochs: int,
               advance: Callable[[str], None]) -> dict[str, Any]:
        """First-order DARTS for ``epochs``; returns α of each block type (lists)."""
        import torch

        from lenna_darts.supernet import Network

        torch.manual_seed(self.seed)
        every_op = [list(range(len(OPS)))] * self.edges
        network = Network(self.input_shape[0], self.classes, self.channels, self.layers,
                          [(c["block"], c["channels"], every_op) for c in self.cells],
                          affine=False)
        alphas = {b: (1e-3 * torch.randn(self.edges, len(OPS))).requires_grad_()
                  for b in self._blocks()}
        weights_opt = torch.optim.SGD(network.parameters(), lr=self.weight_lr, momentum=0.9,
                                      weight_decay=WEIGHT_DECAY)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(weights_opt, max(1, epochs))
        alpha_opt = torch.optim.Adam(alphas.values(), lr=self.arch_lr, betas=(0.5, 0.999),
                                     weight_decay=ARCH_WEIGHT_DECAY)
        coefficient = 0.0
        if lam > 0:
            with torch.no_grad():
                start = float(self.expected_latency(alphas, latency))
            coefficient = lam * math.log(self.classes) / start
        rng = np.random.default_rng(self.seed)
        loss = torch.nn.functional.cross_entropy
        for epoch in range(epochs):
            network.train()
            train = _batches(data.train_x, data.train_y, self.batch_size, rng)
            val = _batches(data.val_x, data.val_y, self.batch_size, rng)
            for (x, y), (xv, yv) in zip(train, val, strict=False):
                if epoch >= self.warmup:
                    alpha_opt.zero_grad()
                    term = loss(network(xv, _softmax(alphas)), yv)
                    if coefficient:
                        term = term + coefficient * self.expected_latency(alphas, latency)
                    term.backward()
                    alpha_opt.step()
                weights_opt.zero_grad()
                fit = loss(network(x, {b: w.detach() for b, w in _softmax(alphas).items()}), y)
                fit.backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), GRADIENT_CLIP)
                weights_opt.step()
            schedule.step()
            status = f"search epoch {epoch + 1}/{epochs}, loss {fit.item():.3f}"
            if latency is not None:
                with torch.no_grad():
                    seconds = float(self.expected_latency(alphas, latency))
                status += f", latency term {1e3 * seconds:.3f} ms"
            advance(status)
        return {b: np.round(a.detach().double().numpy(), 6).tolist() for b, a in alphas.items()}

    def derive(self, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The darts-cells child spec of each cell under DARTS's rule."""
        specs = []
        for cell in self.cells:
            alpha = np.asarray(parameters[cell["block"]], dtype=np.float64)
            parent = {**cell, "alpha": alpha.tolist(), "ops": list(OPS)}
            specs.append({"parent": parent, "choice": derived_cell(alpha, self.layers)})
        return specs

    def train(self, cells: list[dict[str, Any]], data: Any, epochs: int,
              advance: Callable[[str], None]) -> float:
        """Train the derived network on the training and validation splits from scratch with
        SGD and a cosine schedule; return its accuracy on the test split."""
        import torch

        from lenna_darts.supernet import Network

        torch.manual_seed(self.seed)
        network = Network(self.input_shape[0], self.classes, self.channels, self.layers,
                          [(s["parent"]["block"], s["parent"]["channels"],
                            [[i] for i in s["choice"]]) for s in cells], affine=True)
        optimiser = torch.optim.SGD(network.parameters(), lr=self.weight_lr, momentum=0.9,
                                    weight_decay=WEIGHT_DECAY)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, epochs))
        x_all = np.concatenate([data.train_x, data.val_x])
        y_all = np.concatenate([data.train_y, data.val_y])
        rng = np.random.default_rng(self.seed)
        for epoch in range(epochs):
            network.train()
            for x, y in _batches(x_all, y_all, self.batch_size, rng):
                optimiser.zero_grad()
                fit = torch.nn.functional.cross_entropy(network(x), y)
                fit.backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), GRADIENT_CLIP)
                optimiser.step()
            schedule.step()
            advance(f"training the derived network, epoch {epoch + 1}/{epochs}, "
                    f"loss {fit.item():.3f}")
        network.eval()
        correct = 0
        with torch.no_grad():
            for x, y in _batches(data.test_x, data.test_y, 256, None):
                correct += int((network(x).argmax(dim=1) == y).sum())
        return correct / len(data.test_y)


def _softmax(alphas: Mapping[str, Any]) -> dict[str, Any]:
    import torch

    return {b: torch.softmax(a, dim=1) for b, a in alphas.items()}


def _batches(x: np.ndarray, y: np.ndarray, size: int,
             rng: np.random.Generator | None) -> Iterator[tuple[Any, Any]]:
    """Mini-batches as tensors, shuffled by ``rng`` (in order without one)."""
    import torch

    order = np.arange(len(y)) if rng is None else rng.permutation(len(y))
    for start in range(0, len(y), size):
        index = order[start:start + size]
        if rng is not None and len(index) < 2:  # batch norm cannot train on one image
            continue
        yield torch.from_numpy(x[index]), torch.from_numpy(y[index]).long()
