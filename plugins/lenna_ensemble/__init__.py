"""The ``ensemble`` estimator: the best k of several estimators, averaged or stacked."""
