"""The ``onnxruntime`` and ``onnxruntime-cuda`` backends: Graph IR compiled to ONNX and run by
ONNX Runtime."""
