"""Measuring latency: protocols, workers, campaigns of passes, interference, the host, and checks
of a model's parts against the whole."""
