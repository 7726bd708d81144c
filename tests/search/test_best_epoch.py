"""The objective is the best epoch's val loss, and test is scored on the restored best weights.

The data make val loss rise after its minimum, deterministically: the validation (and test)
targets are the training targets flipped, so every epoch that fits the training set worsens
val loss. Early stopping then ends the fit `patience` epochs after the best one, and the last
epoch is never the best.

Shown to fail (issue 19): with `restore_best_weights=False` in search/training.py, the test
metrics are the last epoch's (test accuracy 0.0 instead of the best epoch's); with the
Objective returning the last epoch's val loss, `trial.value == min(val_loss)` fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest

from experiments.data import Dataset
from experiments.registry import load_spec
from experiments.spec import ExperimentSpec, SpaceSpec, TrainSpec
from experiments.tasks import task_kind
from search.params import TrialParams
from search.study import Objective, StudySettings

PARAMS = TrialParams(1, (8,), "tanh", "adam", 0.05, 16, 0.0)


def contradicting_data() -> Dataset:
    """Two separable blobs; val and test hold the same points with every label flipped."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    flipped = 1 - y
    return Dataset(x, y, x, flipped, x, flipped, ("a", "b"), ("no", "yes"), 2,
                   "val = test = train with labels flipped")


def spec() -> ExperimentSpec:
    """xor's spec with every parameter fixed to PARAMS, no pruning, early stopping within reach."""
    base = load_spec("xor")
    space = {name: value for name, value in PARAMS.flat().items() if name != "units_0"}
    return base.model_copy(update={
        "space": SpaceSpec(**space, units=PARAMS.units[0]),
        "train": TrainSpec(max_epochs=30, patience=3),
        "search": base.search.model_copy(update={"pruner": "none"}),
    })


def weights_per_epoch() -> Any:
    """A Keras callback keeping a copy of the weights at the end of every epoch (`.kept`)."""
    import keras

    class KeepWeights(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.kept: list[list[np.ndarray]] = []

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.kept.append([w.copy() for w in self.model.get_weights()])

    return KeepWeights()


def test_test_metrics_are_those_of_the_best_epochs_weights() -> None:
    import keras

    from search.training import fit_candidate

    data = contradicting_data()
    task = task_kind("binary")
    keep = weights_per_epoch()
    try:
        result = fit_candidate(PARAMS, data, task, TrainSpec(max_epochs=30, patience=3), seed=1,
                               callbacks=[keep])
        val = result.history["val_loss"]
        assert result.best_epoch == int(np.argmin(val))
        assert result.best_epoch < len(val) - 1  # val loss rose after its minimum
        assert val[-1] > val[result.best_epoch]

        def scored(weights: list[np.ndarray]) -> dict[str, float]:
            result.model.set_weights(weights)
            raw = np.asarray(result.model.predict(data.x_test, verbose=0))
            loss = result.model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
            return {"test_loss": loss["loss"], **task.test_metrics(data.y_test, raw)}

        at_best = scored(keep.kept[result.best_epoch])
        at_last = scored(keep.kept[-1])
    finally:
        keras.backend.clear_session()
    assert at_best["test_accuracy"] != at_last["test_accuracy"]  # the check can tell them apart
    assert set(at_best) == set(result.test)
    for name, value in at_best.items():
        assert result.test[name] == pytest.approx(value, rel=1e-5), name


def test_the_trial_value_is_the_best_epochs_val_loss(tmp_path: Path) -> None:
    settings = StudySettings("best-epoch", "unused", 1, None, 1, tmp_path / "runs")
    study = optuna.create_study(direction="minimize")
    objective = Objective(spec(), contradicting_data(), settings)
    study.optimize(objective, n_trials=1)

    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    val = trial.user_attrs["history"]["val_loss"]
    assert len(val) < 30  # early stopping ended it, `patience` epochs after the best
    assert trial.value == min(val)
    assert trial.value != val[-1]
