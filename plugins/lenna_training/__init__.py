"""Training workloads of the cross-instance study: small models, datasets, optimizers."""
