"""The loaded, split and preprocessed data every trial of a study shares."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no truth value; compare sha256() instead
class Dataset:
    """Train/val/test arrays, ready for a dense network.

    x arrays are 2-D float32 (images flattened); y arrays are int64 class indices 0..K-1 for
    classification, float32 for regression. The arrays are read-only because one Dataset is
    cached per process and shared by every trial.

    Attributes:
        feature_names: Column names after one-hot encoding ("Sex_male"); "px0".. for images.
        class_names: Names of classes 0..K-1; None for regression.
        n_classes: K; None for regression.
        split_note: One human line describing the split, for logs and reports.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None
    n_classes: int | None
    split_note: str

    @property
    def n_features(self) -> int:
        """Number of input columns."""
        return int(self.x_train.shape[1])

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The six arrays in a fixed order: x_train, y_train, x_val, y_val, x_test, y_test."""
        return (self.x_train, self.y_train, self.x_val, self.y_val, self.x_test, self.y_test)

    def sha256(self) -> str:
        """Fingerprint of the data (bytes, shapes and dtypes of the six arrays), for reruns."""
        digest = hashlib.sha256()
        for array in self.arrays():
            digest.update(f"{array.dtype.str}{array.shape};".encode())
            digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()
