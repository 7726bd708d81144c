"""Data: loading, splitting and preprocessing each experiment's data set once per process.

Example:
    >>> from experiments.data import load_dataset
    >>> from experiments.registry import load_spec
    >>> data = load_dataset(load_spec("iris"))  # doctest: +SKIP
    >>> data.n_features, data.class_names  # doctest: +SKIP
    (4, ('setosa', 'versicolor', 'virginica'))
"""

from __future__ import annotations

from experiments.data.dataset import Dataset
from experiments.data.loader import clear_cache, load_dataset

__all__ = ["Dataset", "clear_cache", "load_dataset"]
