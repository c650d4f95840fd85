"""TorchMLPEstimator: an MLP in PyTorch whose trained network is an ``nn.Module``.

:meth:`TorchMLPEstimator.module` returns the network with the feature and target scaling
built in, so it maps raw features to the fitted target (log latency by default) and can sit
inside another model, e.g. a latency term in a differentiable architecture search loss.
Weights are saved as a NumPy ``.npz`` and read back without pickle.
"""

from __future__ import annotations

import copy
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from lenna_core.api import EstimatorBase, PredictorError, first_line

if TYPE_CHECKING:
    from torch import nn

MODEL_FILE = "torch_mlp.npz"
ACTIVATIONS = ("relu", "tanh", "gelu", "silu")


def build_network(n_features: int, n_outputs: int, hidden: Sequence[int],
                  activation: str) -> nn.Module:
    """``Standardise -> [Linear, activation] * len(hidden) -> Linear -> Unstandardise``."""
    import torch
    from torch import nn

    class Affine(nn.Module):
        """``(x - shift) / scale`` or its inverse, with the statistics as buffers."""

        def __init__(self, size: int, inverse: bool) -> None:
            super().__init__()
            self.inverse = inverse
            self.register_buffer("shift", torch.zeros(size))
            self.register_buffer("scale", torch.ones(size))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.inverse:
                return x * self.scale + self.shift
            return (x - self.shift) / self.scale

    layers: list[nn.Module] = [Affine(n_features, inverse=False)]
    width = n_features
    for size in hidden:
        layers += [nn.Linear(width, size), _activation(activation)]
        width = size
    layers += [nn.Linear(width, n_outputs), Affine(n_outputs, inverse=True)]
    return nn.Sequential(*layers)


def _activation(name: str) -> nn.Module:
    from torch import nn

    if name not in ACTIVATIONS:
        raise ValueError(f"torch-mlp activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {name!r}")
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}[name]()


class TorchMLPEstimator(EstimatorBase):
    """A PyTorch MLP trained full-batch with Adam on standardised features and target.

    ``module()`` gives the trained network (float32, eval mode): raw features in, fitted
    target out, differentiable with respect to its input.
    """

    name: ClassVar[str] = "torch-mlp"
    requires: ClassVar[tuple[str, ...]] = ("torch",)
    extra: ClassVar[str] = "torch"
    multi_output: ClassVar[bool] = True
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "hidden_layer_sizes": [[32], [64, 64], [128, 128]], "weight_decay": [0.0, 1e-4, 1e-3]}

    def __init__(self, hidden_layer_sizes: Sequence[int] = (64, 64), activation: str = "relu",
                 learning_rate: float = 1e-2, epochs: int = 1000, weight_decay: float = 1e-4,
                 random_state: int = 0) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.random_state = random_state

    def _network(self, n_features: int, n_outputs: int) -> nn.Module:
        return build_network(n_features, n_outputs, [int(h) for h in self.hidden_layer_sizes],
                             self.activation)

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Train on features ``X`` and target ``y`` (one column per output if 2-D)."""
        import torch

        X, y = (a.astype(np.float32) for a in self._validate_fit(X, y))
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        target = y.reshape(len(y), self.n_outputs_)
        torch.manual_seed(self.random_state)
        network = self._network(X.shape[1], self.n_outputs_)
        for affine, data in ((network[0], X), (network[-1], target)):
            affine.shift.copy_(torch.from_numpy(data.mean(axis=0)))
            affine.scale.copy_(torch.from_numpy(np.where(data.std(axis=0) > 0,
                                                         data.std(axis=0), 1.0)))
        inputs, outputs = torch.from_numpy(X), torch.from_numpy(target)
        scaled = (outputs - network[-1].shift) / network[-1].scale
        body = network[:-1]
        optimiser = torch.optim.Adam(body.parameters(), lr=self.learning_rate,
                                     weight_decay=self.weight_decay)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small matrices: more threads only add synchronisation
        try:
            with torch.enable_grad():
                for _ in range(int(self.epochs)):
                    optimiser.zero_grad()
                    loss = torch.nn.functional.mse_loss(body(inputs), scaled)
                    loss.backward()
                    optimiser.step()
        finally:
            torch.set_num_threads(threads)
        self.network_ = network.eval()
        return self

    def module(self) -> nn.Module:
        """The trained network: raw features in, the fitted target out, differentiable."""
        self._check_fitted()
        return self.network_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predict the target for each row of ``X``."""
        import torch

        X = self._validate_predict(X)
        with torch.no_grad():  # in float64, so that a row's prediction is the same in any batch
            out = copy.deepcopy(self.network_).double()(torch.from_numpy(X)).numpy()
        return out[:, 0] if self.n_outputs_ == 1 else out

    def _arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.network_.state_dict().items()}

    def _rebuild(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Set ``network_`` and the widths from the tensors of :meth:`_arrays`."""
        import torch

        n_outputs = arrays[f"{2 * len(self.hidden_layer_sizes) + 2}.shift"].shape[0]
        network = self._network(arrays["0.shift"].shape[0], n_outputs)
        network.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()})
        self.network_, self.n_outputs_ = network.eval(), n_outputs
        self.n_features_in_ = arrays["0.shift"].shape[0]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (``joblib.dump``) the network as plain arrays: its modules are built inside
        a function, so that torch is imported only when needed, and cannot be pickled."""
        state = dict(vars(self))
        if "network_" in state:
            state["network_"] = self._arrays()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        arrays = state.pop("network_", None)
        vars(self).update(state)
        if arrays is not None:
            self._rebuild(arrays)

    def save(self, directory: Path) -> None:
        """Write the network's tensors to ``torch_mlp.npz``."""
        np.savez(Path(directory) / MODEL_FILE, **self._arrays())

    @classmethod
    def load(cls, directory: Path, params: Mapping[str, Any]) -> Self:
        """Rebuild the network from ``params`` and the saved tensors: ``np.load`` with
        ``allow_pickle=False`` reads plain arrays only, so nothing in the file is unpickled."""
        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise PredictorError(f"estimator {cls.name}: {path} not found")
        estimator = cls(**params)
        try:
            with np.load(path, allow_pickle=False) as saved:
                estimator._rebuild({k: saved[k] for k in saved.files})
        except (KeyError, ValueError, RuntimeError, OSError, EOFError, MemoryError,
                zipfile.BadZipFile) as exc:
            raise PredictorError(f"estimator {cls.name}: cannot load {path}: "
                                 f"{first_line(exc)}") from None
        return estimator
