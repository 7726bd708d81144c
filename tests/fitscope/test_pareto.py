"""A multi-objective study end to end (issue 16): `search.objectives: [val_loss, n_params]` on
iris, in two invocations, with real Keras training, Optuna and an MLflow sqlite store.

Four trials are enqueued so the outcome is known: the first invocation runs B (64 units, SGD
at 1e-4: big and barely learning), alone on the front; the second adds A (8 units, Adam at
0.05: small and good), which pushes B off the front, then C (64 units, Adam) and D (4 units,
SGD at 1e-4). The tests check the front against every complete trial's values, not against
what Optuna says.

Shown to fail, each break undone right after:
- tagging only the front's runs, never `pareto=false` (tracking/study_runs.py): B's run keeps
  `pareto=true` from the first invocation, and sync leaves a stale tag;
- `best_trial` taking the front's highest val_loss (search/objectives.py): `best_run_id`
  names another run than the lowest-val-loss front member's;
- the report's Pareto view left out (reporting/optuna_views.py): no `view-pareto_front` plot;
- no objectives check on resume (search/study.py): both resumes exit 0;
- the console's front in trial-number order, the Pareto plot coloured by point position
  instead of trial number: the two fast tests at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from fitscope.cli import main
from tests.conftest import empty_mlflow_store, mlflow_runs, use_as_workdir, write_spec

STUDY = "pareto"
SMALL_GOOD = {"units_0": 8, "optimizer": "adam", "learning_rate": 0.05}  # A
BIG_BAD = {"units_0": 64, "optimizer": "sgd", "learning_rate": 1.0e-4}  # B
BIG_GOOD = {"units_0": 64, "optimizer": "adam", "learning_rate": 0.05}  # C
TINY_BAD = {"units_0": 4, "optimizer": "sgd", "learning_rate": 1.0e-4}  # D


@dataclass(frozen=True)
class Study:
    folder: Path
    uri: str
    spec: Path
    parent: Any
    children: list[Any]  # by trial number
    trials: list[optuna.trial.FrozenTrial]
    first_tags: dict[str, str]  # trial 0's run tags after the first invocation


def pareto_spec(folder: Path, objectives: list[str] | None = None) -> Path:
    return write_spec(
        folder, "iris", space={
            "n_layers": 1, "units": [4, 8, 64], "activation": "relu", "optimizer": ["sgd", "adam"],
            "learning_rate": [1.0e-4, 0.05], "batch_size": 16, "dropout": 0.0},
            train__max_epochs=5, train__patience=5, search__pruner="none",
            search__objectives=objectives or ["val_loss", "n_params"],
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Study]:
    folder = tmp_path_factory.mktemp("pareto")
    uri = empty_mlflow_store(folder / "mlflow.db")
    storage = f"sqlite:///{folder / 'optuna.db'}"
    with pytest.MonkeyPatch.context() as patch:
        use_as_workdir(patch, folder)
        spec = pareto_spec(folder)
        created = optuna.create_study(study_name=STUDY, storage=storage,
                                      directions=["minimize", "minimize"])
        for params in (BIG_BAD, SMALL_GOOD, BIG_GOOD, TINY_BAD):
            created.enqueue_trial(params)
        search = ["search", str(spec), "--study", STUDY, "--tracking-uri", uri]
        assert main([*search, "--trials", "1"]) == 0
        _, (first,) = mlflow_runs(uri, "iris")
        assert main([*search, "--trials", "3"]) == 0
        parent, children = mlflow_runs(uri, "iris")
        done = optuna.load_study(study_name=STUDY, storage=storage)
        yield Study(folder, uri, spec, parent, children, done.trials, dict(first.data.tags))


def dominates(a: list[float], b: list[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def test_the_front_is_every_non_dominated_trial_and_only_those(study: Study) -> None:
    values = {t.number: t.values for t in study.trials if t.state.name == "COMPLETE"}
    assert len(values) == 4
    expected = {n for n, v in values.items() if not any(dominates(w, v) for w in values.values())}
    tagged = {int(c.data.tags["trial_number"]) for c in study.children
              if c.data.tags.get("pareto") == "true"}
    assert tagged == expected
    assert all(c.data.tags.get("pareto") in ("true", "false") for c in study.children)
    assert dominates(values[1], values[0]), "A (small, good) should dominate B (big, bad)"
    assert study.first_tags["pareto"] == "true"  # B was the whole front after invocation 1
    assert study.children[0].data.tags["pareto"] == "false"  # and left it when A came

    # the objectives are the trial's own measurements: val_loss, and the Keras parameter count
    for trial in study.trials:
        assert trial.values == [trial.user_attrs["best_val_loss"], trial.user_attrs["n_params"]]
    assert values[3][1] < values[1][1] < values[0][1]  # 4 < 8 < 64 units


def test_the_parent_names_the_fronts_lowest_val_loss_trial_and_lists_the_front(
    study: Study,
) -> None:
    front = [c for c in study.children if c.data.tags["pareto"] == "true"]
    lowest = min(front, key=lambda c: c.data.metrics["best_val_loss"])
    tags = study.parent.data.tags
    assert tags["best_run_id"] == lowest.info.run_id
    assert tags["best_trial_number"] == lowest.data.tags["trial_number"]
    listed = [int(n) for n in tags["pareto_front"].split(",")]
    assert sorted(listed) == sorted(int(c.data.tags["trial_number"]) for c in front)
    assert tags["objectives"] == "val_loss,n_params"
    assert study.parent.data.metrics["best_val_loss"] == lowest.data.metrics["best_val_loss"]


def test_the_report_draws_the_front_and_the_leaderboard_marks_it(study: Study) -> None:
    folder = study.folder / "reports" / "iris" / STUDY
    html = (folder / "report.html").read_text()
    plot = html.split('id="view-pareto_front"', 1)[1].split("<h3", 1)[0]
    assert "plotly-graph-div" in plot  # drawn, not a note saying why not
    assert "Pareto front (outlined)" in plot
    assert (folder / "optuna_pareto_front.html").is_file()
    board = pd.read_csv(folder / "leaderboard.csv")
    on_front = {int(c.data.tags["trial_number"]) for c in study.children
                if c.data.tags["pareto"] == "true"}
    assert set(board.loc[board["pareto"], "trial"]) == on_front


def test_sync_rewrites_a_stale_pareto_tag(study: Study) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=study.uri)
    off_front = next(c for c in study.children if c.data.tags["pareto"] == "false")
    client.set_tag(off_front.info.run_id, "pareto", "true")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(study.folder)
        assert main(["sync", str(study.spec), "--study", STUDY, "--tracking-uri",
                     study.uri]) == 0
    assert client.get_run(off_front.info.run_id).data.tags["pareto"] == "false"


@pytest.mark.parametrize("objectives", [["val_loss", "epochs_to_best"], None])
def test_resuming_with_other_objectives_is_refused(
    study: Study, objectives: list[str] | None, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if objectives is None:  # the same spec, single-objective
        spec = write_spec(tmp_path, "iris", search__pruner="none")
    else:
        spec = pareto_spec(tmp_path, objectives)
    storage = f"sqlite:///{study.folder / 'optuna.db'}"
    code = main(["search", str(spec), "--study", STUDY, "--storage", storage, "--trials", "1",
                 "--tracking-uri", empty_mlflow_store(tmp_path / "mlflow.db")])
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "was created with objectives val_loss (minimize), n_params (minimize)" in error[-1]
    assert len(optuna.load_study(study_name=STUDY, storage=storage).trials) == 4  # none added


def test_kerastuner_refuses_a_multi_objective_spec(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = pareto_spec(workdir)
    assert main(["search", str(spec), "--engine", "kerastuner", "--trials", "1"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert "the KerasTuner engine searches one objective" in error[-1]
    assert not (workdir / "optuna.db").exists()  # refused before anything was created


def synthetic_study() -> optuna.Study:
    """Four complete trials with known values: 0 and 2 dominated by 3; 1 and 3 the front."""
    study = optuna.create_study(directions=["minimize", "minimize"])
    study.set_metric_names(["val_loss", "n_params"])
    for values in ([0.5, 900], [0.6, 30], [0.3, 500], [0.2, 400]):
        study.add_trial(optuna.trial.create_trial(values=values))
    return study


def test_the_console_lists_the_front_lowest_val_loss_first() -> None:
    from reporting.console import ConsoleReporter

    text = ConsoleReporter(4, "test_accuracy").summary(synthetic_study(), "finished")
    front = text.split("Pareto front: 2 trials", 1)[1].splitlines()[2:]
    assert [line.split()[:3] for line in front] == [["3", "0.2000", "400"], ["1", "0.6000", "30"]]


def test_the_pareto_plot_colours_each_point_by_its_fit() -> None:
    from reporting.optuna_views import PARETO_KEY, TRIAL_NUMBER, optuna_views
    from reporting.overlay import COLOURS

    fits = {0: "overfit", 1: "good_fit", 2: "underfit", 3: "good_fit"}
    (view, *_) = optuna_views(synthetic_study(), fits)
    assert view.key == PARETO_KEY and view.figure is not None
    seen = {}
    for trace in view.figure.data:
        if not trace.text:  # a legend entry, one per fit class
            continue
        for text, colour in zip(trace.text, trace.marker.color, strict=True):
            seen[int(TRIAL_NUMBER.search(text)[1])] = colour
    assert seen == {n: COLOURS[fit] for n, fit in fits.items()}
