"""One-trial training: fit a candidate with early stopping, then score the restored best weights.

Reporting (pruning, curves, tracking) comes in through `callbacks`; nothing here logs anywhere.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from search.builder import build_model, compile_model
from search.callbacks import EpochRecorder, StopOnNonFinite
from search.inputs import fit_data
from search.params import TrialParams
from search.seeding import seed_everything

if TYPE_CHECKING:
    import keras

    from experiments.data import Dataset
    from experiments.spec import TrainSpec
    from experiments.tasks import TaskKind


class Diverged(Exception):
    """The loss became NaN or infinite: the candidate cannot be scored."""


@dataclass
class FitResult:
    """What one fitted candidate produced (the model stays in memory for the caller to save)."""

    history: dict[str, list[float]]
    best_epoch: int  # 0-based epoch of the lowest val_loss, whose weights were restored
    best_val_loss: float
    epochs_trained: int
    n_params: int
    train_seconds: float
    test: dict[str, float]  # test_loss and the task's test metrics
    model_summary: str
    confusion_matrix: list[list[int]] | None = None
    classification_report: str | None = None
    model: Any = field(default=None, repr=False)


def fit_candidate(
    params: TrialParams,
    data: Dataset,
    task: TaskKind,
    train: TrainSpec,
    seed: int,
    callbacks: list[keras.callbacks.Callback] | None = None,
    recorder: EpochRecorder | None = None,
    verbose: int = 0,
) -> FitResult:
    """Seed, build, compile, fit with early stopping, restore the best epoch and evaluate on test.

    Raises:
        Diverged: the loss or val_loss became NaN/inf; the recorder keeps the partial curves.
    """
    import keras

    seed_everything(seed, train.deterministic)
    model = build_model(params, data.n_features, task, data.n_classes)
    compile_model(model, params, task, train.steps_per_execution)
    recorder = recorder or EpochRecorder()
    non_finite = StopOnNonFinite()
    early = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=train.patience, restore_best_weights=True
    )
    started = time.perf_counter()
    model.fit(
        **fit_data(train.input_pipeline, (data.x_train, data.y_train), (data.x_val, data.y_val),
                   params.batch_size, seed),
        epochs=train.max_epochs,
        verbose=verbose,
        # order matters: the recorder must see the epoch before a pruning callback may raise
        callbacks=[
            recorder,
            keras.callbacks.TerminateOnNaN(),
            non_finite,
            early,
            *(callbacks or []),
        ],
    )
    seconds = time.perf_counter() - started
    history = recorder.history
    if non_finite.bad_epoch is not None or _has_non_finite(history.get("loss", [])):
        epoch = (
            non_finite.bad_epoch if non_finite.bad_epoch is not None else len(history["loss"]) - 1
        )
        metric = non_finite.bad_metric or "loss"
        raise Diverged(f"diverged: {metric} became NaN/inf at epoch {epoch}")
    val = history["val_loss"]
    best_epoch = int(np.argmin(val))
    test = _evaluate(model, data, task)
    result = FitResult(
        history=history,
        best_epoch=best_epoch,
        best_val_loss=float(val[best_epoch]),
        epochs_trained=len(val),
        n_params=int(model.count_params()),
        train_seconds=seconds,
        test=test["metrics"],
        model_summary=_summary(model),
        confusion_matrix=test.get("confusion"),
        classification_report=test.get("report"),
        model=model,
    )
    return result


def _evaluate(model: keras.Model, data: Dataset, task: TaskKind) -> dict[str, Any]:
    import keras

    raw = np.asarray(model.predict(data.x_test, verbose=0, batch_size=1024))
    # the compiled loss on those predictions equals `evaluate`'s (to float32 rounding) and saves
    # a second pass over the test set and the tracing of a test function (~0.5 s per trial)
    loss = model.compute_loss(
        x=None,
        y=keras.ops.convert_to_tensor(data.y_test),
        y_pred=keras.ops.convert_to_tensor(raw),
        training=False,
    )
    test_loss = float(keras.ops.convert_to_numpy(loss))
    metrics = {"test_loss": test_loss, **task.test_metrics(data.y_test, raw)}
    out: dict[str, Any] = {"metrics": metrics}
    if task.is_classification:
        from sklearn.metrics import classification_report, confusion_matrix

        labels = task.predict_labels(raw)
        classes = list(range(data.n_classes or 2))
        out["confusion"] = confusion_matrix(data.y_test, labels, labels=classes).tolist()
        out["report"] = classification_report(
            data.y_test,
            labels,
            labels=classes,
            target_names=list(data.class_names or []) or None,
            digits=4,
            zero_division=0,
        )
    return out


def _summary(model: keras.Model) -> str:
    buffer = io.StringIO()
    model.summary(print_fn=lambda line, *args, **kwargs: buffer.write(line + "\n"))
    return buffer.getvalue()


def _has_non_finite(values: list[float]) -> bool:
    return any(not math.isfinite(v) for v in values)
