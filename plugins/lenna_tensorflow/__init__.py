"""The ``tensorflow`` backend: Graph IR compiled to a Keras model and run by TensorFlow."""
