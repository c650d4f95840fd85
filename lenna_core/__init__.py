"""LENNA: Latency Estimation for Neural Network Architectures.

The core defines the plugin hooks, the Graph IR, the records, the store and the jobs;
bundled and third-party plugins provide sources, backends, featurizers and estimators.
Plugins import from :mod:`lenna_core.api`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
