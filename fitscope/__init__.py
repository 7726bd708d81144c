"""fitscope: hyperparameter search and experiment tracking for dense Keras networks."""

__version__ = "0.1.0"
