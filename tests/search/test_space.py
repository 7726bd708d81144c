from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from experiments.data import load_dataset
from experiments.params import Choice, Fixed, Range
from experiments.registry import load_spec, parse_spec
from experiments.spec import SpaceSpec
from fitscope.cli import main
from search.params import TrialParams
from search.space import sample_params
from search.study import Objective, StudySettings
from tests.conftest import empty_mlflow_store, mlflow_runs, write_spec

BASE = {"activation": "relu", "optimizer": "adam", "learning_rate": 1e-3, "batch_size": 32,
        "dropout": 0.1}


def test_units_exist_per_layer_only() -> None:
    trial = optuna.trial.FixedTrial({**BASE, "n_layers": 3, "units_0": 64, "units_1": 32,
                                     "units_2": 16})
    params = sample_params(trial, SpaceSpec())
    assert params.units == (64, 32, 16)
    assert "units_2" in params.flat()

    two = sample_params(optuna.trial.FixedTrial({**BASE, "n_layers": 2, "units_0": 8,
                                                 "units_1": 8}), SpaceSpec())
    assert "units_2" not in two.flat()


def test_momentum_is_sampled_only_for_the_momentum_optimizer() -> None:
    adam = sample_params(optuna.trial.FixedTrial({**BASE, "n_layers": 1, "units_0": 8}),
                         SpaceSpec())
    assert adam.momentum is None and "momentum" not in adam.flat()
    values = {**BASE, "optimizer": "momentum", "momentum": 0.9, "n_layers": 1, "units_0": 8}
    sgd = sample_params(optuna.trial.FixedTrial(values), SpaceSpec())
    assert sgd.momentum == 0.9


def test_fixed_values_are_not_search_dimensions() -> None:
    space = SpaceSpec(n_layers=Fixed(value=1), dropout=Fixed(value=0.0),
                      batch_size=Fixed(value=4))
    trial = optuna.trial.FixedTrial({"units_0": 8, "activation": "tanh", "optimizer": "sgd",
                                     "learning_rate": 0.1})
    params = sample_params(trial, space)
    assert (params.n_layers, params.batch_size, params.dropout) == (1, 4, 0.0)
    assert set(trial.params) == {"units_0", "activation", "optimizer", "learning_rate"}


def test_learning_rate_is_sampled_on_a_log_scale() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = SpaceSpec(learning_rate=Range(low=1e-5, high=1e-1, log=True))
    rates = [sample_params(study.ask(), space).learning_rate for _ in range(200)]
    # uniform on a log scale: about a quarter of the draws fall in each decade
    assert sum(r < 1e-4 for r in rates) > 25
    dist = study.trials[0].distributions["learning_rate"]
    assert dist.log


def test_a_value_outside_the_space_is_refused() -> None:
    space = SpaceSpec(activation=Choice(choices=("relu",)))
    trial = optuna.trial.FixedTrial({**BASE, "activation": "tanh", "n_layers": 1, "units_0": 8})
    with pytest.raises(ValueError):
        sample_params(trial, space)


def test_flat_round_trip_accepts_mlflow_strings() -> None:
    params = TrialParams(2, (16, 8), "elu", "momentum", 0.01, 32, 0.2, momentum=0.9)
    as_strings = {k: str(v) for k, v in params.flat().items()}
    assert TrialParams.from_flat(as_strings) == params
    with pytest.raises(KeyError):
        TrialParams.from_flat({k: v for k, v in as_strings.items() if k != "units_1"})


def test_a_sampling_error_is_recorded_as_the_trials_fail_reason(tmp_path: Path) -> None:
    """sample_params ran before the objective's try: its error was lost and the trial read
    "the process died" (issue 18). A space the sampler refuses, past the spec's validation:"""
    spec = load_spec("xor")
    refused = Range.model_construct(low=8.0, high=64.0, log=False, step=-4.0)
    spec = spec.model_copy(update={"space": spec.space.model_copy(update={"units": refused})})
    settings = StudySettings(study_name="s", storage="", trials=1, timeout=None, seed=1,
                             runs_dir=tmp_path)
    study = optuna.create_study()
    study.optimize(Objective(spec, load_dataset(spec, None), settings), n_trials=1,
                   catch=(Exception,))
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["fail_reason"].startswith("sampling the search space failed: ")
    assert "step" in trial.user_attrs["fail_reason"]


PER_OPTIMIZER = {"sgd": {"low": 1e-2, "high": 3e-1, "log": True},
                 "momentum": {"low": 3e-3, "high": 1e-1, "log": True},
                 "default": {"low": 1e-4, "high": 3e-3, "log": True}}


def _per_optimizer_space() -> SpaceSpec:
    return parse_spec({"name": "toy", "task": "binary",
                       "data": {"source": "generated", "dataset": "xor"},
                       "space": {"optimizer": ["sgd", "momentum", "adam", "rmsprop"],
                                 "learning_rate": PER_OPTIMIZER}}).space


def test_a_learning_rate_per_optimizer_keeps_each_optimizer_in_its_range() -> None:
    """TPE (after its random start) samples each optimizer's rate as its own Optuna parameter,
    within that optimizer's range; the TrialParams holds one comparable `learning_rate`."""
    space = _per_optimizer_space()
    bands = {"sgd": (1e-2, 3e-1), "momentum": (3e-3, 1e-1), "adam": (1e-4, 3e-3),
             "rmsprop": (1e-4, 3e-3)}
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(
        seed=0, n_startup_trials=10, multivariate=True, group=True))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        params = sample_params(trial, space)
        low, high = bands[params.optimizer]
        assert low <= params.learning_rate <= high, params
        assert [k for k in trial.params if k.startswith("learning_rate")] == [
            f"learning_rate_{params.optimizer}"]
        assert trial.distributions[f"learning_rate_{params.optimizer}"].log
        flat = params.flat()
        assert flat["learning_rate"] == params.learning_rate
        assert not [k for k in flat if k.startswith("learning_rate_")]
        seen.add(params.optimizer)
        study.tell(trial, params.learning_rate)
    assert seen == set(bands)


def test_a_per_optimizer_rate_replays_from_the_optuna_params() -> None:
    # enqueued trials (a dead worker's retry) and KerasTuner's replay give the Optuna names
    values = {**BASE, "n_layers": 1, "units_0": 8, "optimizer": "sgd", "learning_rate_sgd": 0.2}
    del values["learning_rate"]
    params = sample_params(optuna.trial.FixedTrial(values), _per_optimizer_space())
    assert (params.optimizer, params.learning_rate) == ("sgd", 0.2)
    # 2e-3 is outside SGD's range (though inside Adam's): Optuna says so, for SGD's range
    with pytest.warns(UserWarning, match=r"'learning_rate_sgd' is out of the range.*low=0\.01"):
        sample_params(optuna.trial.FixedTrial({**values, "learning_rate_sgd": 2e-3}),
                      _per_optimizer_space())


def test_a_search_with_per_optimizer_rates_records_learning_rate(
    workdir: Path, tracking_uri: str
) -> None:
    """End to end on XOR: child runs carry `learning_rate` (one comparable MLflow param), the
    Optuna storage the per-optimizer names, a rerun rebuilds the spec from the parent, and the
    KerasTuner engine searches the same spec."""
    spec = write_spec(workdir, "xor", space__optimizer=["sgd", "adam"],
                      space__learning_rate={"sgd": {"low": 0.05, "high": 0.5, "log": True},
                                            "adam": {"low": 1e-3, "high": 1e-2, "log": True}},
                      train__max_epochs=5, train__patience=5)
    assert main(["search", str(spec), "--trials", "4", "--tracking-uri", tracking_uri]) == 0
    parent, children = mlflow_runs(tracking_uri, "xor")
    assert len(children) == 4
    for child in children:
        rate, optimizer = float(child.data.params["learning_rate"]), child.data.params["optimizer"]
        assert (0.05 <= rate <= 0.5) if optimizer == "sgd" else (1e-3 <= rate <= 1e-2)
        assert not [k for k in child.data.params if k.startswith("learning_rate_")]
    study = optuna.load_study(study_name=parent.data.tags["fitscope.study"],
                              storage=f"sqlite:///{workdir / 'optuna.db'}")
    for trial in study.trials:
        optimizer = trial.params["optimizer"]
        assert trial.params[f"learning_rate_{optimizer}"] == trial.user_attrs["params"][
            "learning_rate"]
    assert main(["rerun", children[0].info.run_id, "--tracking-uri", tracking_uri]) == 0
    # the KerasTuner engine takes the same spec (conditional learning_rate_<optimizer> hps)
    kerastuner_uri = empty_mlflow_store(workdir / "mlflow-kerastuner.db")
    assert main(["search", str(spec), "--engine", "kerastuner", "--tuner", "random",
                 "--trials", "3", "--tracking-uri", kerastuner_uri]) == 0
    _, kerastuner_children = mlflow_runs(kerastuner_uri, "xor")
    assert len(kerastuner_children) == 3
    for child in kerastuner_children:
        assert child.data.tags["state"] == "COMPLETE"
        rate, optimizer = float(child.data.params["learning_rate"]), child.data.params["optimizer"]
        assert (0.05 <= rate <= 0.5) if optimizer == "sgd" else (1e-3 <= rate <= 1e-2)
