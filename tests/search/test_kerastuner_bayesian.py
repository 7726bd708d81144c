"""KerasTuner's Bayesian oracle end to end (issue 19): `fitscope search --engine kerastuner
--tuner bayesian` proposes past its random start-up points and records every trial.

Writing this test found a bug: with a log-scale integer range (`units: {low: 8, high: 32,
log: true}`) the Gaussian process proposed units_0 = 33. KerasTuner's `Int` without a step maps
a probability in [0, 1) onto [low, high + 1), and the oracle's optimiser returns 1.0 at its
bound; the record study then refused 33 and the whole search ended in a ValueError traceback.
`replay` now keeps values inside their ranges (the last test).
"""

from __future__ import annotations

from pathlib import Path

from fitscope.cli import main
from tests.conftest import mlflow_runs, write_spec


def test_a_bayesian_kerastuner_study_goes_past_its_start_up_points(
    workdir: Path, tracking_uri: str
) -> None:
    # one random start-up point: trials 1 and 2 come from the Gaussian process
    spec = write_spec(
        workdir, "iris", space={
            "n_layers": 1, "units": {"low": 8, "high": 32}, "activation": "relu",
            "optimizer": "adam", "learning_rate": {"low": 1.0e-3, "high": 1.0e-1, "log": True},
            "batch_size": 32, "dropout": 0.0},
        train__max_epochs=2, train__patience=2, search__startup_trials=1,
    )
    assert main(["search", str(spec), "--engine", "kerastuner", "--tuner", "bayesian",
                 "--trials", "3", "--tracking-uri", tracking_uri]) == 0

    parent, children = mlflow_runs(tracking_uri, "iris")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tuner"] == "bayesian"
    assert parent.data.params["sampler"] == "gaussian-process"
    assert parent.data.tags["fitscope.study"].endswith("-kt-bayesian")
    assert [int(c.data.tags["trial_number"]) for c in children] == [0, 1, 2]
    assert all(c.info.status == "FINISHED" and c.data.tags["state"] == "COMPLETE"
               for c in children)
    proposed = {(c.data.params["units_0"], c.data.params["learning_rate"]) for c in children}
    assert len(proposed) == 3  # the oracle proposed a new point each time
    best = min(children, key=lambda c: c.data.metrics["best_val_loss"])
    assert parent.data.tags["best_run_id"] == best.info.run_id


def test_the_top_of_a_log_integer_range_stays_in_the_range() -> None:
    import keras_tuner

    from experiments.spec import SpaceSpec
    from search.hypermodel import declare_space, replay

    space = SpaceSpec(n_layers=1, units={"low": 8, "high": 32, "log": True})
    hp = keras_tuner.HyperParameters()
    declare_space(hp, space)
    (units,) = [h for h in hp.space if h.name == "units_0"]
    # the Bayesian oracle's optimiser returns probabilities in [0, 1], bounds included, and
    # KerasTuner maps 1.0 past the range: fitscope builds and records the range's top instead
    proposed = units.prob_to_value(1.0)
    assert proposed == 33
    params, trial = replay({**hp.values, "units_0": proposed}, space)
    assert params.units == (32,)
    assert trial.params["units_0"] == 32
