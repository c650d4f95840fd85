"""The scikit-learn estimators: each declares its hyperparameters, their search grid and its
regressor."""

from __future__ import annotations

from typing import Any

from lenna_sklearn.base import SklearnEstimator


class LinearEstimator(SklearnEstimator):
    """Ordinary least squares on standardised features."""

    name = "linear"
    scaled = True

    def __init__(self, fit_intercept: bool = True) -> None:
        self.fit_intercept = fit_intercept

    def _regressor(self) -> Any:
        from sklearn.linear_model import LinearRegression

        return LinearRegression(fit_intercept=self.fit_intercept)


class RidgeEstimator(SklearnEstimator):
    """L2-regularised linear regression on standardised features."""

    name = "ridge"
    scaled = True
    param_grid = {"alpha": [0.01, 0.1, 1.0, 10.0, 100.0]}

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def _regressor(self) -> Any:
        from sklearn.linear_model import Ridge

        return Ridge(alpha=self.alpha)


class ElasticNetEstimator(SklearnEstimator):
    """L1 + L2 regularised linear regression on standardised features."""

    name = "elasticnet"
    scaled = True
    param_grid = {"alpha": [0.001, 0.01, 0.1], "l1_ratio": [0.1, 0.5, 0.9]}

    def __init__(self, alpha: float = 0.01, l1_ratio: float = 0.5, max_iter: int = 10_000
                 ) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.max_iter = max_iter

    def _regressor(self) -> Any:
        from sklearn.linear_model import ElasticNet

        return ElasticNet(alpha=self.alpha, l1_ratio=self.l1_ratio, max_iter=self.max_iter)


class KNNEstimator(SklearnEstimator):
    """Distance-weighted k nearest neighbours (Euclidean) on standardised features."""

    name = "knn"
    scaled = True
    param_grid = {"n_neighbors": [3, 5, 10, 20], "weights": ["uniform", "distance"]}

    def __init__(self, n_neighbors: int = 5, weights: str = "distance") -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights

    def _regressor(self) -> Any:
        from sklearn.neighbors import KNeighborsRegressor

        return KNeighborsRegressor(n_neighbors=self.n_neighbors, weights=self.weights)


class DecisionTreeEstimator(SklearnEstimator):
    """A single regression tree."""

    name = "decision-tree"
    param_grid = {"max_depth": [4, 8, None], "min_samples_leaf": [1, 2, 5]}

    def __init__(self, max_depth: int | None = None, min_samples_leaf: int = 2,
                 random_state: int | None = 0) -> None:
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.random_state = random_state

    def _regressor(self) -> Any:
        from sklearn.tree import DecisionTreeRegressor

        return DecisionTreeRegressor(max_depth=self.max_depth,
                                     min_samples_leaf=self.min_samples_leaf,
                                     random_state=self.random_state)


class RandomForestEstimator(SklearnEstimator):
    """A random forest of regression trees (nn-Meter's choice of kernel predictor)."""

    name = "random-forest"
    param_grid = {"n_estimators": [100, 300], "max_features": [0.33, 1.0],
                  "min_samples_leaf": [1, 3]}

    def __init__(self, n_estimators: int = 200, max_depth: int | None = None,
                 min_samples_leaf: int = 1, max_features: float | str | None = 1.0,
                 random_state: int | None = 0) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state

    def _regressor(self) -> Any:
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=self.n_estimators, max_depth=self.max_depth,
                                     min_samples_leaf=self.min_samples_leaf,
                                     max_features=self.max_features,
                                     random_state=self.random_state)


class AdaBoostEstimator(SklearnEstimator):
    """AdaBoost.R2 over shallow regression trees."""

    name = "adaboost"
    native_multi_output = False
    param_grid = {"n_estimators": [50, 100, 200], "learning_rate": [0.1, 0.5, 1.0],
                  "max_depth": [3, 5]}

    def __init__(self, n_estimators: int = 100, learning_rate: float = 0.5, max_depth: int = 4,
                 loss: str = "linear", random_state: int | None = 0) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.loss = loss
        self.random_state = random_state

    def _regressor(self) -> Any:
        from sklearn.ensemble import AdaBoostRegressor
        from sklearn.tree import DecisionTreeRegressor

        return AdaBoostRegressor(DecisionTreeRegressor(max_depth=self.max_depth),
                                 n_estimators=self.n_estimators,
                                 learning_rate=self.learning_rate, loss=self.loss,
                                 random_state=self.random_state)


class MLPEstimator(SklearnEstimator):
    """A small multi-layer perceptron on standardised features.

    L-BFGS converges fast and reliably on the ~100-row data sets LENNA fits; early stopping
    is off because holding out a validation fraction of so few rows costs more than it saves.
    """

    name = "mlp"
    scaled = True
    param_grid = {"hidden_layer_sizes": [[32], [64, 64], [128, 128]],
                  "alpha": [1e-4, 1e-3, 1e-2]}

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (64, 64), activation: str = "relu",
                 solver: str = "lbfgs", alpha: float = 1e-3, learning_rate_init: float = 1e-3,
                 max_iter: int = 2000, early_stopping: bool = False,
                 random_state: int | None = 0) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.random_state = random_state

    def _regressor(self) -> Any:
        from sklearn.neural_network import MLPRegressor

        return MLPRegressor(hidden_layer_sizes=tuple(self.hidden_layer_sizes),
                            activation=self.activation, solver=self.solver, alpha=self.alpha,
                            learning_rate_init=self.learning_rate_init, max_iter=self.max_iter,
                            early_stopping=self.early_stopping,
                            random_state=self.random_state)


ESTIMATORS: list[type[SklearnEstimator]] = [
    LinearEstimator, RidgeEstimator, ElasticNetEstimator, KNNEstimator, DecisionTreeEstimator,
    RandomForestEstimator, AdaBoostEstimator, MLPEstimator,
]
