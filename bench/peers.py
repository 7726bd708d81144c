"""The peers fitscope is measured against (item 1), each run in its own process:

- `optuna`: plain Optuna TPE + HyperbandPruner written the way optuna-examples writes it
  (data in memory, KerasPruningCallback on val_accuracy, fixed epochs, no tracking);
- `kerastuner`: KerasTuner Hyperband (max_epochs 20, factor 3) on val_accuracy.

Both search the fashion spec's own space (every optimizer, its per-optimizer learning rates,
activations, layers, batch sizes, dropout): candidates are drawn through fitscope's
`sample_params` (Optuna) and `declare_space` (KerasTuner), so the space is the same by
construction, while the model is built and compiled the plain way the examples do (default
`compile`, no fitscope training code). Each stops starting trials when the wall-clock budget is
spent, logs the time and val accuracy of every epoch, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

    from search.params import TrialParams

EPOCHS = 20
EPOCH_LOG: list[tuple[float, float]] = []  # (time.time(), val_accuracy) of every epoch


def _spec_and_data() -> Any:
    from experiments.data import load_dataset
    from experiments.registry import load_spec

    spec = load_spec("fashion")
    return spec, load_dataset(spec)


def _plain_model(params: TrialParams) -> keras.Model:
    """The candidate as a tutorial writes it: Dense (+ Dropout) layers, default compile."""
    import keras

    model = keras.Sequential([keras.Input((784,))])
    for units in params.units:
        model.add(keras.layers.Dense(units, activation=params.activation))
        if params.dropout > 0:
            model.add(keras.layers.Dropout(params.dropout))
    model.add(keras.layers.Dense(10, activation="softmax"))
    lr = params.learning_rate
    optimizer = {
        "sgd": lambda: keras.optimizers.SGD(lr),
        "momentum": lambda: keras.optimizers.SGD(lr, momentum=params.momentum or 0.9),
        "rmsprop": lambda: keras.optimizers.RMSprop(lr),
        "adam": lambda: keras.optimizers.Adam(lr),
        "adagrad": lambda: keras.optimizers.Adagrad(lr),
    }[params.optimizer]()
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _epoch_logger() -> keras.callbacks.Callback:
    import keras

    class LogEpochs(keras.callbacks.Callback):
        # appends to the module's list: KerasTuner deep-copies the callbacks of every trial
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            EPOCH_LOG.append((time.time(), float((logs or {}).get("val_accuracy", 0.0))))

    return LogEpochs()


def plain_optuna(budget: float, seed: int) -> dict[str, Any]:
    import keras
    import optuna
    from optuna_integration import KerasPruningCallback

    from search.space import sample_params

    spec, data = _spec_and_data()
    keras.utils.set_random_seed(seed)

    def objective(trial: optuna.Trial) -> float:
        keras.backend.clear_session()
        params = sample_params(trial, spec.space)
        model = _plain_model(params)
        model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                  epochs=EPOCHS, verbose=0, batch_size=params.batch_size,
                  callbacks=[KerasPruningCallback(trial, "val_accuracy"), _epoch_logger()])
        val = model.evaluate(data.x_val, data.y_val, verbose=0, return_dict=True)["accuracy"]
        test = model.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)["accuracy"]
        trial.set_user_attr("test_accuracy", test)  # reported, never used to choose
        return val

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner())
    started = time.perf_counter()
    study.optimize(objective, timeout=budget)
    finished = [t for t in study.trials if t.state.is_finished()]
    return {
        "trials": len(finished),
        "epochs": len(EPOCH_LOG),
        "chosen_val_accuracy": study.best_value,
        "test_accuracy": study.best_trial.user_attrs["test_accuracy"],
        "wall_seconds": time.perf_counter() - started,
        "epoch_log": EPOCH_LOG,
    }


def kerastuner_hyperband(budget: float, seed: int) -> dict[str, Any]:
    import keras
    import keras_tuner as kt

    from search.hypermodel import declare_space, replay

    spec, data = _spec_and_data()
    keras.utils.set_random_seed(seed)

    def build(hp: kt.HyperParameters) -> keras.Model:
        declare_space(hp, spec.space)
        return _plain_model(replay(hp.values, spec.space)[0])

    started = time.perf_counter()

    class Budgeted(kt.Hyperband):
        # KerasTuner has no wall-clock limit: cap max_trials once the budget is spent
        def pre_create_trial(self) -> None:
            if time.perf_counter() - started > budget:
                self.oracle.max_trials = len(self.oracle.trials)

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            declare_space(trial.hyperparameters, spec.space)  # the batch size is searched too
            kwargs["batch_size"] = int(trial.hyperparameters.get("batch_size"))
            return super().run_trial(trial, *args, **kwargs)

    tuner = Budgeted(build, objective="val_accuracy", max_epochs=EPOCHS, factor=3, seed=seed,
                     directory=tempfile.mkdtemp(prefix="kt-peer-"), project_name="fashion")
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), verbose=0,
                 callbacks=[_epoch_logger()])
    best_trial = tuner.oracle.get_best_trials(1)[0]
    best = tuner.get_best_models(1)[0]
    return {
        "trials": len(tuner.oracle.trials),
        "epochs": len(EPOCH_LOG),
        "chosen_val_accuracy": float(best_trial.score),
        "test_accuracy": float(best.evaluate(data.x_test, data.y_test, verbose=0,
                                             return_dict=True)["accuracy"]),
        "wall_seconds": time.perf_counter() - started,
        "epoch_log": EPOCH_LOG,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=["optuna", "kerastuner"])
    parser.add_argument("--budget", type=float, default=600)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    run = plain_optuna if args.peer == "optuna" else kerastuner_hyperband
    print(json.dumps(run(args.budget, args.seed)))


if __name__ == "__main__":
    main()
