"""The ``torch-mlp`` estimator: a PyTorch MLP usable as a differentiable latency model."""
