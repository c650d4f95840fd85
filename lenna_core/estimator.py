"""EstimatorBase: scikit-learn's parameter contract without importing scikit-learn."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Self


class EstimatorBase:
    """Gives ``get_params``/``set_params`` from the ``__init__`` signature, so that
    ``sklearn.base.clone`` and model selection work on LENNA estimators."""

    name: ClassVar[str]

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            p.name for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for estimator {self.name}; valid: {valid}"
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
