"""The ``nb201-encoding`` featurizer: the op on each of the six edges, one-hot."""

from __future__ import annotations

from typing import ClassVar

from lenna_core.api import LennaError, Workload
from lenna_nasbench201.cells import EDGES, OPS, parse_arch


class Nb201EncodingFeaturizer:
    """30 features ``edge{i}_{op}``: 1 where edge i (arch-string order) carries op."""

    name: ClassVar[str] = "nb201-encoding"
    version: ClassVar[str] = "1"

    def featurize(self, workload: Workload) -> dict[str, float]:
        arch = workload.architecture
        if "arch" not in arch.spec:
            raise LennaError(f"featurizer {self.name} needs nasbench201 architectures, "
                             f"not {arch.source}")
        cell = parse_arch(arch.spec["arch"])
        return {f"edge{i}_{op}": float(cell[i] == op)
                for i in range(len(EDGES)) for op in OPS}
