"""Task kinds: the output layer, the loss, the per-epoch metric and the test metrics of each task.

Example:
    >>> task = task_kind("binary")
    >>> task.output_units(2), task.output_activation, task.loss
    (1, 'sigmoid', 'binary_crossentropy')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TaskKind:
    """What differs between regression, binary and multiclass problems."""

    name: str
    output_activation: str
    loss: str
    curve_metric: str  # logged per epoch beside the loss (train and val_ prefixed)
    is_classification: bool

    @property
    def headline_metric(self) -> str:
        """The one test metric a study's summary and comparisons lead with."""
        return "test_accuracy" if self.is_classification else "test_rmse"

    def output_units(self, n_classes: int | None) -> int:
        if self.name == "multiclass":
            if not n_classes or n_classes < 2:
                raise ValueError(f"multiclass needs at least 2 classes, got {n_classes}")
            return n_classes
        return 1

    def predict_labels(self, raw: np.ndarray) -> np.ndarray:
        """Turn the network's outputs into class indices (classification only)."""
        if self.name == "multiclass":
            return np.argmax(raw, axis=1)
        return (raw.reshape(-1) >= 0.5).astype(np.int64)

    def test_metrics(self, y_true: np.ndarray, raw: np.ndarray) -> dict[str, float]:
        """The task's test metrics, computed by scikit-learn from the network's raw outputs."""
        from sklearn import metrics  # lazy: keeps `fitscope --help` fast

        if not self.is_classification:
            pred = raw.reshape(-1).astype(np.float64)
            true = y_true.reshape(-1).astype(np.float64)
            return {
                "test_rmse": float(np.sqrt(metrics.mean_squared_error(true, pred))),
                "test_mae": float(metrics.mean_absolute_error(true, pred)),
                # sklearn returns a fraction; the course quotes MAPE in percent
                "test_mape": 100.0 * float(metrics.mean_absolute_percentage_error(true, pred)),
                "test_r2": float(metrics.r2_score(true, pred)),
            }
        labels = self.predict_labels(raw)
        result = {
            "test_accuracy": float(metrics.accuracy_score(y_true, labels)),
            "test_f1_macro": float(
                metrics.f1_score(y_true, labels, average="macro", zero_division=0)
            ),
            "test_precision_macro": float(
                metrics.precision_score(y_true, labels, average="macro", zero_division=0)
            ),
            "test_recall_macro": float(
                metrics.recall_score(y_true, labels, average="macro", zero_division=0)
            ),
        }
        if self.name == "binary":
            # ROC AUC is undefined when the test split holds one class only
            has_both = len(np.unique(y_true)) == 2
            score = metrics.roc_auc_score(y_true, raw.reshape(-1)) if has_both else float("nan")
            result["test_roc_auc"] = float(score)
        return result


TASKS = {
    "regression": TaskKind("regression", "linear", "mse", "mae", is_classification=False),
    "binary": TaskKind("binary", "sigmoid", "binary_crossentropy", "accuracy", True),
    "multiclass": TaskKind(
        "multiclass", "softmax", "sparse_categorical_crossentropy", "accuracy", True
    ),
}


def task_kind(name: str) -> TaskKind:
    """The TaskKind for a spec's `task` field."""
    return TASKS[name]
