"""The ``torch-cpu`` backend: Graph IR compiled to a torch module and run on CPU."""
