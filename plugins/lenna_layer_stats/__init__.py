"""The ``layer-stats`` featurizer: MACs, parameters, memory and op counts of a Graph IR."""
