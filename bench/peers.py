"""The peers fitscope is measured against (item 1), each run in its own process:

- `optuna`: plain Optuna TPE + HyperbandPruner written the way optuna-examples writes it
  (data in memory, KerasPruningCallback on val_accuracy, fixed epochs, no tracking);
- `kerastuner`: KerasTuner Hyperband (max_epochs 20, factor 3) on val_accuracy.

Both search the same space as the fashion spec, with the same seed and data, and stop starting
trials when the wall-clock budget is spent. Prints one JSON line with their results.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from typing import Any

EPOCHS = 20


def _data() -> Any:
    from experiments.data import load_dataset
    from experiments.registry import load_spec

    return load_dataset(load_spec("fashion"))


def plain_optuna(budget: float, seed: int) -> dict[str, Any]:
    import keras
    import optuna
    from optuna_integration import KerasPruningCallback

    data = _data()

    def objective(trial: optuna.Trial) -> float:
        keras.backend.clear_session()
        model = keras.Sequential([keras.Input((784,))])
        for i in range(trial.suggest_int("n_layers", 1, 3)):
            units = trial.suggest_int(f"units_{i}", 64, 512, log=True)
            activation = trial.suggest_categorical("activation", ["relu", "elu"])
            model.add(keras.layers.Dense(units, activation=activation))
            model.add(keras.layers.Dropout(trial.suggest_float("dropout", 0.0, 0.3)))
        model.add(keras.layers.Dense(10, activation="softmax"))
        lr = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
        name = trial.suggest_categorical("optimizer", ["adam", "rmsprop", "momentum"])
        optimizer = {"adam": keras.optimizers.Adam(lr), "rmsprop": keras.optimizers.RMSprop(lr),
                     "momentum": keras.optimizers.SGD(lr, momentum=0.9)}[name]
        model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val),
                  epochs=EPOCHS, verbose=0,
                  batch_size=trial.suggest_categorical("batch_size", [128, 256]),
                  callbacks=[KerasPruningCallback(trial, "val_accuracy")])
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
        "epochs": sum(len(t.intermediate_values) for t in finished),
        "best_val_accuracy": study.best_value,
        "test_accuracy": study.best_trial.user_attrs["test_accuracy"],
        "wall_seconds": time.perf_counter() - started,
    }


def kerastuner_hyperband(budget: float, seed: int) -> dict[str, Any]:
    import keras
    import keras_tuner as kt

    data = _data()

    def build(hp: kt.HyperParameters) -> keras.Model:
        model = keras.Sequential([keras.Input((784,))])
        for i in range(hp.Int("n_layers", 1, 3)):
            model.add(keras.layers.Dense(hp.Int(f"units_{i}", 64, 512, sampling="log"),
                                         activation=hp.Choice("activation", ["relu", "elu"])))
            model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.3)))
        model.add(keras.layers.Dense(10, activation="softmax"))
        lr = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
        name = hp.Choice("optimizer", ["adam", "rmsprop", "momentum"])
        optimizer = {"adam": keras.optimizers.Adam(lr), "rmsprop": keras.optimizers.RMSprop(lr),
                     "momentum": keras.optimizers.SGD(lr, momentum=0.9)}[name]
        model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    started = time.perf_counter()
    epochs = []

    class Budgeted(kt.Hyperband):
        # KerasTuner has no wall-clock limit: cap max_trials once the budget is spent
        def pre_create_trial(self) -> None:
            if time.perf_counter() - started > budget:
                self.oracle.max_trials = len(self.oracle.trials)

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs["batch_size"] = trial.hyperparameters.Choice("batch_size", [128, 256])
            result = super().run_trial(trial, *args, **kwargs)
            epochs.append(trial.hyperparameters.values.get("tuner/epochs", 0)
                          - trial.hyperparameters.values.get("tuner/initial_epoch", 0))
            return result

    tuner = Budgeted(build, objective="val_accuracy", max_epochs=EPOCHS, factor=3, seed=seed,
                     directory=tempfile.mkdtemp(prefix="kt-peer-"), project_name="fashion")
    tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), verbose=0)
    best_trial = tuner.oracle.get_best_trials(1)[0]
    best = tuner.get_best_models(1)[0]
    return {
        "trials": len(tuner.oracle.trials),
        "epochs": int(sum(epochs)),
        "best_val_accuracy": float(best_trial.score),
        "test_accuracy": float(best.evaluate(data.x_test, data.y_test, verbose=0,
                                             return_dict=True)["accuracy"]),
        "wall_seconds": time.perf_counter() - started,
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
