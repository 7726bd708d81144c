from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import SpecError
from experiments.params import Choice, Fixed, PerChoice, Range
from experiments.registry import list_experiments, load_spec, parse_spec

LR = {"low": 1e-3, "high": 1e-2, "log": True}
MINIMAL = {"name": "toy", "task": "binary", "data": {"source": "generated", "dataset": "xor"}}


def spec_with(**changes: object) -> dict:
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in MINIMAL.items()}
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return raw


def test_every_shipped_spec_loads_with_its_documented_task() -> None:
    names = dict(list_experiments())
    assert set(names) == {"fashion", "iris", "boston", "titanic", "xor", "bloodfat",
                          "iris-pareto"}
    assert load_spec("boston").task == "regression"
    assert load_spec("titanic").task == "binary"
    assert load_spec("fashion").data.source == "idx"
    assert all(description for description in names.values())


def test_yaml_shorthand_becomes_fixed_choice_and_range() -> None:
    spec = parse_spec(spec_with(space__n_layers=2, space__activation=["relu", "tanh"],
                                space__learning_rate={"low": 1e-3, "high": 1e-1, "log": True}))
    assert spec.space.n_layers == Fixed(value=2)
    assert spec.space.activation == Choice(choices=("relu", "tanh"))
    assert spec.space.learning_rate == Range(low=1e-3, high=1e-1, log=True)


def test_a_learning_rate_per_optimizer_parses_and_dumps_as_written() -> None:
    rates = {"sgd": {"low": 1e-2, "high": 3e-1, "log": True}, "momentum": 0.05,
             "default": {"low": 1e-4, "high": 3e-3, "log": True}}
    spec = parse_spec(spec_with(space__learning_rate=rates))
    rate = spec.space.learning_rate
    assert isinstance(rate, PerChoice)
    assert rate.param_for("sgd") == Range(low=1e-2, high=3e-1, log=True)
    assert rate.param_for("momentum") == Fixed(value=0.05)
    assert rate.param_for("adam") == rate.param_for("adagrad") == Range(low=1e-4, high=3e-3,
                                                                       log=True)
    dumped = spec.model_dump(mode="json")["space"]["learning_rate"]
    assert set(dumped) == {"sgd", "momentum", "default"}  # the YAML shape, not a wrapper
    assert parse_spec(spec.model_dump(mode="json")) == spec
    assert spec.fingerprint() != parse_spec(spec_with()).fingerprint()


def test_omitted_sections_take_the_defaults() -> None:
    spec = parse_spec(spec_with())
    assert spec.train.patience == 10
    assert spec.search.sampler == "tpe"
    assert isinstance(spec.space.learning_rate, Range) and spec.space.learning_rate.log


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"space__optimzer": ["adam"]}, "space.optimzer: unknown key (did you mean 'optimizer'?)"),
        ({"trian": {}}, "trian: unknown key (did you mean 'train'?)"),
        ({"space__learning_rate": {"low": 0.1, "high": 0.01}}, "must not exceed high"),
        ({"space__learning_rate": 0.0}, "space.learning_rate: expected a number > 0"),
        ({"space__learning_rate": {"low": 0, "high": 0.1, "log": True}}, "log range needs low > 0"),
        ({"space__n_layers": 0}, "space.n_layers: expected an integer >= 1"),
        ({"space__optimizer": ["adam", "lion"]}, "unknown optimizer 'lion'"),
        ({"space__activation": "swishy"}, "unknown activation 'swishy'"),
        ({"train__max_epochs": "many"}, "train.max_epochs"),
        ({"task": "ranking"}, "task:"),
        ({"name": "Bad Name"}, "name:"),
        ({"data__source": "csv"}, "needs the field 'path'"),
        ({"search__pruner": "asha"}, "search.pruner"),
        ({"search__objectives": ["n_params", "val_loss"]}, "search.objectives: the first "
         "objective must be val_loss"),
        ({"search__objectives": ["val_loss"]}, "search.objectives: list two or more"),
        ({"search__objectives": ["val_loss", "size"]}, "search.objectives.1.name: Input should"),
        ({"search__objectives": ["val_loss", "n_params", "n_params"]}, "each objective once"),
        ({"search__objectives": ["val_loss", {"n_params": "smallest"}]},
         "search.objectives.1.direction"),
        ({"search__objectives": ["val_loss", "n_params"], "search__pruner": "median"},
         "search.pruner: median cannot prune a multi-objective study"),
        # a learning rate per optimizer: each slip names the optimizer's entry
        ({"space__learning_rate": {"sgd": LR, "lion": LR, "default": LR}},
         "space.learning_rate: unknown optimizer 'lion'; expected one of sgd, momentum, "
         "rmsprop, adam, adagrad or default"),
        ({"space__learning_rate": {}}, "space.learning_rate: empty; give {low, high, log} or a "
         "range per optimizer"),
        ({"space__learning_rate": {"sgd": {}, "default": LR}},
         "space.learning_rate.sgd: a range needs the keys low and high"),
        ({"space__learning_rate": {"sgd": {"low": 0.3, "high": 0.01}, "default": LR}},
         "space.learning_rate.sgd: low (0.3) must not exceed high (0.01)"),
        ({"space__learning_rate": {"adam": {"low": 0, "high": 0.01}, "default": LR}},
         "space.learning_rate.adam: expected a number > 0, got 0"),
        ({"space__learning_rate": {"sgd": LR, "adam": LR}},
         "space.learning_rate: no range for optimizer(s) momentum, rmsprop, adagrad; name "
         "each one or add default"),
        ({"space__optimizer": ["adam"], "space__learning_rate": {"sgd": LR, "adam": LR}},
         "space.learning_rate.sgd: sgd is not searched (space.optimizer: adam)"),
    ],
)
def test_bad_specs_fail_with_the_field_named(changes: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(spec_with(**changes), source="toy.yaml")
    text = str(info.value)
    assert text.startswith("toy.yaml: ")
    assert message in text
    assert "\n" not in text


def test_missing_required_field_is_named() -> None:
    raw = spec_with()
    del raw["task"]
    with pytest.raises(SpecError, match="task: required field is missing"):
        parse_spec(raw)


def test_unknown_experiment_lists_the_available_ones() -> None:
    with pytest.raises(SpecError, match="unknown experiment 'fashon'; available: .*fashion"):
        load_spec("fashon")


def test_missing_and_invalid_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntask: [binary\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        load_spec(str(bad))


def test_yaml_is_read_safely(tmp_path: Path) -> None:
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        load_spec(str(evil))


def test_fingerprint_ignores_budget_but_not_space() -> None:
    spec = parse_spec(spec_with())
    assert spec.with_search(trials=99, timeout=5.0).fingerprint() == spec.fingerprint()
    assert spec.with_search(seed=7).fingerprint() != spec.fingerprint()
    other = parse_spec(spec_with(space__units=[4, 8]))
    assert other.fingerprint() != spec.fingerprint()


def test_multi_objective_specs_prune_nothing_and_keep_val_loss_first() -> None:
    spec = parse_spec(spec_with(search__objectives=["val_loss", {"train_seconds": "maximize"}]))
    assert spec.search.objective_names == ("val_loss", "train_seconds")
    assert spec.search.directions == ["minimize", "maximize"]
    assert spec.search.pruner == "none"  # Optuna cannot prune a multi-objective study
    assert parse_spec(spec.model_dump(mode="json")) == spec
    single = parse_spec(spec_with())
    assert single.search.objective_names == ("val_loss",)
    assert single.search.directions == ["minimize"]
    assert single.search.pruner == "median"
    # study names derive from it: a spec without objectives keeps the hash it had before them
    assert single.fingerprint() == "73f098f6"
    assert spec.fingerprint() != parse_spec(spec_with(search__pruner="none")).fingerprint()


def test_every_resolved_spec_loads_back_from_its_dump() -> None:
    # spec.json on the parent run and `fitscope show` hold the dumped form (Fixed -> {value})
    for name in dict(list_experiments()):
        spec = load_spec(name)
        assert parse_spec(spec.model_dump(mode="json")) == spec


def test_a_bad_per_optimizer_rate_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from fitscope.cli import main

    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(spec_with(
        space__optimizer=["sgd", "adam"],
        space__learning_rate={"sgd": {"low": 0.3, "high": 0.01, "log": True}, "adam": LR})))
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err]
    assert "space.learning_rate.sgd: low (0.3) must not exceed high (0.01)" in err
    assert "Traceback" not in err
