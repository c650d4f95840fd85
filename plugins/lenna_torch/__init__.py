"""The ``torch-cpu`` and ``torch-cuda`` backends: Graph IR compiled to a torch module."""
