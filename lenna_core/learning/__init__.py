"""Learning from labels: features, splits, validation, tuning, metrics, predictors and the
comparison of estimators."""
