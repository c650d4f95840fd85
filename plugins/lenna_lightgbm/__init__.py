"""The LightGBM latency estimator, saved in LightGBM's native text format."""
