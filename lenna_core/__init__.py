"""LENNA: Latency Estimation for Neural Network Architectures.

The core defines the plugin hooks, the Graph IR, the records, the store and the pipeline;
bundled and third-party plugins provide sources, backends, featurizers and estimators.
"""

from lenna_core.plugins.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
