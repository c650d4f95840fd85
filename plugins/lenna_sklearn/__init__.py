"""Scikit-learn latency estimators, saved with skops and loaded only with trusted types."""
