"""The ``conv-layers`` source: single conv2d layers with configurations seen in real CNNs."""
