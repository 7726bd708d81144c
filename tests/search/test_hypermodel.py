"""The spec's space as KerasTuner sees it: same ranges, choices, log scales and conditions."""

from __future__ import annotations

from pathlib import Path

import keras
import keras_tuner
import optuna
import pytest

from experiments.params import Choice, Fixed
from experiments.registry import load_spec
from experiments.spec import SpaceSpec
from experiments.tasks import task_kind
from search.builder import build_model
from search.hypermodel import SpaceHyperModel, declare_space, replay
from search.space import sample_params

IRIS = load_spec("iris").space  # n_layers 1-3, units 8-64 log, lr 1e-3-1e-1 log, 5 optimizers


def _space_after_one_build(space: SpaceSpec, tmp_path: Path) -> keras_tuner.HyperParameters:
    # a stock KerasTuner tuner discovers the space by building the hypermodel: what it finds is
    # what every oracle samples from
    tuner = keras_tuner.RandomSearch(
        SpaceHyperModel(space, task_kind("multiclass"), 4, 3), objective="val_loss",
        max_trials=1, directory=str(tmp_path), project_name="space",
    )
    return tuner.oracle.get_space()


def _conditions(hp: keras_tuner.HyperParameters, name: str) -> list[tuple[str, list]]:
    (param,) = [p for p in hp.space if p.name == name]
    return [(c.name, list(c.values)) for c in param.conditions]


def test_the_translated_space_matches_the_spec(tmp_path: Path) -> None:
    hp = _space_after_one_build(IRIS, tmp_path)
    space = {p.name: p for p in hp.space}
    assert list(space) == ["n_layers", "units_0", "units_1", "units_2", "activation",
                           "optimizer", "momentum", "learning_rate", "batch_size", "dropout"]
    n_layers = space["n_layers"]
    assert isinstance(n_layers, keras_tuner.engine.hyperparameters.Int)
    assert (n_layers.min_value, n_layers.max_value, n_layers.step) == (1, 3, 1)
    for i in range(3):
        units = space[f"units_{i}"]
        assert isinstance(units, keras_tuner.engine.hyperparameters.Int)
        assert (units.min_value, units.max_value, units.sampling) == (8, 64, "log")
    # units_i exists only when the network has more than i layers
    assert _conditions(hp, "units_0") == []
    assert _conditions(hp, "units_1") == [("n_layers", [2, 3])]
    assert _conditions(hp, "units_2") == [("n_layers", [3])]
    assert list(space["activation"].values) == ["relu", "tanh", "elu"]
    assert list(space["optimizer"].values) == ["sgd", "momentum", "rmsprop", "adam", "adagrad"]
    momentum = space["momentum"]
    assert (momentum.min_value, momentum.max_value, momentum.sampling) == (0.5, 0.99, "linear")
    assert _conditions(hp, "momentum") == [("optimizer", ["momentum"])]
    rate = space["learning_rate"]
    assert isinstance(rate, keras_tuner.engine.hyperparameters.Float)
    assert (rate.min_value, rate.max_value, rate.sampling) == (1e-3, 1e-1, "log")
    assert list(space["batch_size"].values) == [8, 16, 32]
    dropout = space["dropout"]
    assert (dropout.min_value, dropout.max_value, dropout.sampling) == (0.0, 0.3, "linear")


def _samples(space_hp: keras_tuner.HyperParameters, count: int) -> list:
    """Random points as KerasTuner's oracles draw them: active values only."""
    points, seed = [], 0
    for _ in range(count):
        hp = keras_tuner.HyperParameters()
        for param in space_hp.space:
            hp.merge([param])
            if hp.is_active(param):
                hp.values[param.name] = param.random_sample(seed)
                seed += 1
        points.append(hp)
    return points


def test_kerastuner_points_mean_what_they_mean_to_the_optuna_engine(tmp_path: Path) -> None:
    hypermodel = SpaceHyperModel(IRIS, task_kind("multiclass"), 4, 3)
    optuna_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    optuna_distributions: dict = {}
    for _ in range(60):
        trial = optuna_study.ask()
        sample_params(trial, IRIS)
        optuna_distributions.update(trial.distributions)
    layer_counts, optimizers = set(), set()
    for hp in _samples(_space_after_one_build(IRIS, tmp_path), 60):
        params, searched = replay(hp.values, IRIS)
        assert params == hypermodel.params(hp)
        # KerasTuner's conditions leave exactly the parameters the Optuna engine would ask for
        assert set(hp.values) == set(searched.params)
        assert set(params.flat()) == set(searched.params)
        assert len(params.units) == params.n_layers
        assert all(8 <= u <= 64 for u in params.units)
        assert 1e-3 <= params.learning_rate <= 1e-1
        assert (params.momentum is not None) == (params.optimizer == "momentum")
        for name, distribution in searched.distributions.items():
            assert distribution == optuna_distributions[name]
        layer_counts.add(params.n_layers)
        optimizers.add(params.optimizer)
    assert layer_counts == {1, 2, 3}
    assert "momentum" in optimizers


def test_fixed_values_and_mixed_number_choices(tmp_path: Path) -> None:
    space = SpaceSpec(n_layers=Fixed(value=2), optimizer=Fixed(value="momentum"),
                      dropout=Choice(choices=(0, 0.2)), batch_size=Fixed(value=4))
    hp = _space_after_one_build(space, tmp_path)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds["n_layers"] == kinds["optimizer"] == kinds["batch_size"] == "Fixed"
    assert "units_2" not in kinds
    # always two layers and always the momentum optimizer: nothing is conditional
    assert _conditions(hp, "units_1") == [] and _conditions(hp, "momentum") == []
    (dropout,) = [p for p in hp.space if p.name == "dropout"]
    assert list(dropout.values) == [0.0, 0.2]  # one type, as KerasTuner requires
    params, searched = replay(hp.values, space)
    assert (params.n_layers, params.optimizer, params.batch_size) == (2, "momentum", 4)
    assert params.momentum is not None
    assert "n_layers" not in searched.params  # a fixed value is no search dimension


def test_build_gives_the_optuna_engines_model() -> None:
    values = {"n_layers": 2, "units_0": 32, "units_1": 9, "activation": "tanh",
              "optimizer": "momentum", "momentum": 0.8, "learning_rate": 0.01,
              "batch_size": 16, "dropout": 0.1}
    hp = keras_tuner.HyperParameters()
    declare_space(hp, IRIS)
    hp.values.update(values)
    model = SpaceHyperModel(IRIS, task_kind("multiclass"), 4, 3).build(hp)
    params = sample_params(optuna.trial.FixedTrial(values), IRIS)
    reference = build_model(params, 4, task_kind("multiclass"), 3)

    def layers(m: keras.Model) -> list[tuple]:
        return [(type(layer).__name__, layer.get_config().get("units"),
                 layer.get_config().get("activation"), layer.get_config().get("rate"))
                for layer in m.layers]

    assert layers(model) == layers(reference)
    assert model.count_params() == reference.count_params()
    optimizer = model.optimizer.get_config()
    assert optimizer["momentum"] == pytest.approx(0.8)
    assert optimizer["learning_rate"] == pytest.approx(0.01)


def test_a_learning_rate_per_optimizer_is_one_conditional_parameter_each(tmp_path: Path) -> None:
    """`learning_rate: {sgd: .., default: ..}`: KerasTuner samples learning_rate_sgd only for SGD,
    within SGD's range, and the replayed TrialParams holds one `learning_rate` as in Optuna."""
    from experiments.params import Range
    from experiments.registry import parse_spec

    space = parse_spec({
        "name": "toy", "task": "multiclass", "data": {"source": "sklearn", "dataset": "iris"},
        "space": {"optimizer": ["sgd", "momentum", "adam"],
                  "learning_rate": {"sgd": {"low": 1e-2, "high": 3e-1, "log": True},
                                    "default": {"low": 1e-4, "high": 3e-3, "log": True}}},
    }).space
    hp = _space_after_one_build(space, tmp_path)
    names = [p.name for p in hp.space]
    assert "learning_rate" not in names
    for optimizer in ("sgd", "momentum", "adam"):
        assert _conditions(hp, f"learning_rate_{optimizer}") == [("optimizer", [optimizer])]
    (sgd,) = [p for p in hp.space if p.name == "learning_rate_sgd"]
    assert (sgd.min_value, sgd.max_value, sgd.sampling) == (1e-2, 3e-1, "log")
    seen = set()
    for point in _samples(hp, 40):
        params, searched = replay(point.values, space)
        rate = space.learning_rate.param_for(params.optimizer)  # type: ignore[union-attr]
        assert isinstance(rate, Range) and rate.low <= params.learning_rate <= rate.high
        assert set(point.values) == set(searched.params)  # only the active optimizer's rate
        assert params.flat()["learning_rate"] == point.values[f"learning_rate_{params.optimizer}"]
        seen.add(params.optimizer)
    assert seen == {"sgd", "momentum", "adam"}

    fixed = space.model_copy(update={"optimizer": Fixed(value="sgd")})
    # one optimizer: its rate is no longer conditional
    assert _conditions(_space_after_one_build(fixed, tmp_path / "fixed"), "learning_rate_sgd") == []
