"""Item 2: one fitscope trial (pruning callback, recorder, test evaluation, MLflow child run with
curves, diagnosis and plots) against bare `model.fit` + `evaluate` of the same config and seed."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.common import median_seconds

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


def run(epochs: int = 3, repeats: int = 3) -> dict[str, Any]:
    import keras

    from experiments.data import load_dataset
    from experiments.tasks import task_kind
    from search.builder import build_model, compile_model
    from search.params import TrialParams
    from search.seeding import seed_everything, trial_seed
    from search.study import StudySettings, run_study
    from tracking.diagnosis import baseline_loss
    from tracking.study_tracker import MlflowStudyTracker

    spec = fixed_spec(epochs)
    data = load_dataset(spec)
    task = task_kind(spec.task)
    params = TrialParams(2, (256, 256), "relu", "adam", 1e-3, 128, 0.0)
    seed = trial_seed(spec.search.seed, 0)
    tmp = Path(tempfile.mkdtemp(prefix="fitscope-bench-"))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    counter = iter(range(1000))

    def fitscope_trial() -> None:
        settings = StudySettings(
            study_name=f"overhead-{next(counter)}", storage=f"sqlite:///{tmp / 'optuna.db'}",
            trials=1, timeout=None, seed=spec.search.seed, runs_dir=tmp / "runs",
        )
        tracker = MlflowStudyTracker(uri, spec, settings, data.class_names,
                                     baseline_loss(spec.task, data.y_train, data.n_classes),
                                     log_best_model=False)  # a per-study cost, not per trial
        run_study(spec, data, settings, [tracker])

    def bare_trial() -> None:
        seed_everything(seed, spec.train.deterministic)
        model = build_model(params, data.n_features, task, data.n_classes)
        compile_model(model, params, task, spec.train.steps_per_execution)
        model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                  epochs=epochs, batch_size=params.batch_size, verbose=0,
                  callbacks=[keras.callbacks.EarlyStopping(patience=epochs,
                                                           restore_best_weights=True)])
        model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)
        keras.backend.clear_session()

    fitscope_trial()  # warm-up: creates both stores (MLflow's schema migration takes seconds)
    bare_trial()
    # interleave so drifting machine load hits both sides alike
    fit_times, bare_times = [], []
    for _ in range(repeats):
        fit_times += median_seconds(fitscope_trial, 1)[1]
        bare_times += median_seconds(bare_trial, 1)[1]
    import statistics

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
    }
