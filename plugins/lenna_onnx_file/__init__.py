"""The ``onnx-file`` source: architectures imported from ONNX model files."""
