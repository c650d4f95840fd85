"""The ``graph-stats`` featurizer: the shape of the graph itself."""
