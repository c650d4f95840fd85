"""The ``fbnet-encoding`` featurizer: the block in each of FBNet's 22 layers, one-hot."""

from __future__ import annotations

from typing import ClassVar

from lenna_core.api import LennaError, Workload
from lenna_fbnet.blocks import BLOCKS, NUM_LAYERS, parse_blocks
from lenna_fbnet.source import FbnetSource


class FbnetEncodingFeaturizer:
    """198 features ``layer{i:02d}_{block}``: 1 where layer i (0-21) has that block."""

    name: ClassVar[str] = "fbnet-encoding"
    version: ClassVar[str] = "1"

    def featurize(self, workload: Workload) -> dict[str, float]:
        arch = workload.architecture
        if arch.source != FbnetSource.name:
            raise LennaError(f"featurizer {self.name} needs fbnet architectures, "
                             f"not {arch.source}")
        blocks = parse_blocks(arch.spec["blocks"])
        return {f"layer{i:02d}_{block}": float(blocks[i] == block)
                for i in range(NUM_LAYERS) for block in BLOCKS}
