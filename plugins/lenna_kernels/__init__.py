"""The ``kernels`` featurizer: features of the fused kernels a backend runs."""
