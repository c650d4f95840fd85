"""The ``onnxruntime`` backend: Graph IR compiled to ONNX and run by ONNX Runtime on CPU."""
