"""Kernel-level features: how many kernels of each kind, and their summed work and sizes."""

from __future__ import annotations

from typing import ClassVar

from lenna_core.api import Workload, kernel_features, split_kernels

#: Kernel kinds reported separately; any other kind counts as ``other``.
KINDS = ("conv2d", "conv2d+batchnorm", "conv2d+batchnorm+relu", "conv2d+batchnorm+relu6",
         "conv2d+batchnorm+hardswish", "conv2d+batchnorm+silu", "conv2d+relu", "conv2d+silu",
         "conv2d+sigmoid", "conv2d+hardsigmoid", "linear", "linear+relu", "batchnorm", "relu",
         "maxpool", "avgpool", "global_avgpool", "add", "mul", "concat", "slice",
         "channel_shuffle", "zero", "lstm")
SUMMED = ("macs", "input_elements", "output_elements")


class KernelsFeaturizer:
    """Per kernel kind: count and summed MACs and tensor sizes, after conv+batchnorm+activation
    and linear+activation fusion (as ONNX Runtime and TensorFlow run them), times the batch."""

    name: ClassVar[str] = "kernels"
    version: ClassVar[str] = "2"

    def featurize(self, workload: Workload) -> dict[str, float]:
        graph = workload.architecture.graph
        values = {f"{kind}.{key}": 0.0 for kind in (*KINDS, "other")
                  for key in ("count", *SUMMED)}
        kernels = split_kernels(graph, fuse=True)
        for kernel in kernels:
            kind = kernel.kind if kernel.kind in KINDS else "other"
            features = kernel_features(graph, kernel)
            values[f"{kind}.count"] += 1
            for key in SUMMED:
                values[f"{kind}.{key}"] += features[key] * workload.batch_size
        values["kernels"] = float(len(kernels))
        return values
