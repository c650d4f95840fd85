"""The ``kernel-additive`` estimator: latency as the sum of per-kernel latencies."""
