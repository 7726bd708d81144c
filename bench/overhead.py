"""Item 2: what one fitscope trial costs beyond bare `model.fit` + `evaluate` of the same config.

A fitscope trial here is everything the study loop does per trial: sampling, the pruning
callback, the epoch recorder and its curve saves, test predictions and metrics, the best-model
file, the Optuna writes, and the MLflow child run (curves, diagnosis, plots, artifacts). It is
timed inside a running study, from one trial's end to the next, so per-study costs (opening the
study, the parent run) stay out; the study's final wait for its last MLflow write is spread over
its trials, so a write that did not overlap training is still counted.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

# the Fashion-MNIST network both sides train; a fixed `units` applies to every hidden layer
CONFIG = {
    "n_layers": 2, "units": 256, "activation": "relu", "optimizer": "adam",
    "learning_rate": 1.0e-3, "batch_size": 128, "dropout": 0.0,
}


def fixed_spec(epochs: int) -> Any:
    """The fashion spec with every hyperparameter fixed and early stopping out of reach."""
    from experiments.registry import load_spec, parse_spec

    raw = load_spec("fashion").model_dump(mode="json")
    raw["space"] = dict(CONFIG)
    raw["train"] |= {"max_epochs": epochs, "patience": epochs}  # same epochs on both sides
    return parse_spec(raw)


class _TrialClock:
    """Observer that stamps the study's start, each trial's end and the study's end."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_study_start(self, study: Any, spec: Any) -> None:
        self.stamps = [time.perf_counter()]

    def on_trial_end(self, study: Any, record: Any) -> None:
        self.stamps.append(time.perf_counter())

    def on_study_end(self, study: Any, outcome: str) -> None:
        self.stamps.append(time.perf_counter())


def run(epochs: int = 3, trials: int = 3, blocks: int = 2) -> dict[str, Any]:
    """`blocks` x (a fitscope study of `trials` trials, then as many bare trials): alternating
    blocks so that drifting machine load hits both sides alike."""
    import keras

    from experiments.data import load_dataset
    from experiments.tasks import task_kind
    from fitscope.session import session_for
    from search.builder import build_model, compile_model
    from search.inputs import fit_data
    from search.params import TrialParams
    from search.seeding import seed_everything, trial_seed
    from search.study import StudySettings, run_study, trial_loop

    spec = fixed_spec(epochs)
    data = load_dataset(spec)
    task = task_kind(spec.task)
    params = TrialParams(2, (256, 256), "relu", "adam", 1e-3, 128, 0.0)
    tmp = Path(tempfile.mkdtemp(prefix="fitscope-bench-"))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    per_study: list[float] = []

    def fitscope_trials(name: str, n: int) -> list[float]:
        # runs_dir is fresh per study, so every study saves its first trial's model: the
        # best-model file write is measured, as in a real study that keeps improving
        settings = StudySettings(
            study_name=name, storage=f"sqlite:///{tmp / 'optuna.db'}", trials=n,
            timeout=None, seed=spec.search.seed, runs_dir=tmp / name,
        )
        # the best model is a per-study cost, not per trial
        tracker = session_for(spec, settings, uri, data).mlflow(log_best_model=False)
        clock = _TrialClock()
        started = time.perf_counter()
        run_study(spec, data, settings, [tracker, clock])
        stamps = clock.stamps
        spans = [b - a for a, b in zip(stamps[:-2], stamps[1:-1], strict=True)]
        drain = stamps[-1] - stamps[-2]  # the last write, which had no next trial to hide behind
        per_study.append(stamps[0] - started)
        return [span + drain / n for span in spans]

    def bare_trial(number: int) -> float:
        started = time.perf_counter()
        seed_everything(trial_seed(spec.search.seed, number), spec.train.deterministic)
        model = build_model(params, data.n_features, task, data.n_classes)
        compile_model(model, params, task, spec.train.steps_per_execution)
        # fed as fitscope feeds its trials (search/inputs.py): the difference between the two
        # sides is then fitscope's bookkeeping alone, not a faster or slower input pipeline
        model.fit(**fit_data(spec.train.input_pipeline, (data.x_train, data.y_train),
                             (data.x_val, data.y_val), params.batch_size, number),
                  epochs=epochs, verbose=0,
                  callbacks=[keras.callbacks.EarlyStopping(patience=epochs,
                                                           restore_best_weights=True)])
        model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
        keras.backend.clear_session()
        return time.perf_counter() - started

    fitscope_trials("warm-up", 1)  # creates both stores (MLflow's schema migration takes seconds)
    bare_trial(0)
    per_study.clear()
    fit_times: list[float] = []
    bare_times: list[float] = []
    for block in range(blocks):
        fit_times += fitscope_trials(f"overhead-{block}", trials)
        # as a study's loop runs its trials (search.study.trial_loop): the heap frozen, so
        # Keras' per-trial gc.collect() walks what fitscope's does, and the data copied into
        # TensorFlow once per block on both sides; the difference stays bookkeeping alone
        with trial_loop():
            bare_times += [bare_trial(number) for number in range(trials)]
    fit_med, bare_med = statistics.median(fit_times), statistics.median(bare_times)
    return {
        "epochs": epochs,
        "fitscope_seconds": fit_times,
        "bare_seconds": bare_times,
        "fitscope_median": fit_med,
        "bare_median": bare_med,
        "ratio": fit_med / bare_med,
        "fixed_cost_seconds": fit_med - bare_med,
        "seconds_per_epoch": bare_med / epochs,
        "study_start_seconds": statistics.median(per_study),
    }
