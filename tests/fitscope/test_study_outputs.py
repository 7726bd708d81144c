"""What a finished study leaves for its users, end to end on one small iris study: the best
network on the parent run, and fit diagnoses judged by the spec's own `diagnosis:` block.

Two trials are enqueued so the outcome is known: trial 0 (SGD at 1e-4) barely learns and is
saved first as the best so far; trial 1 (Adam at 0.05) beats it. With the default thresholds
trial 0 is `underfit` (by its loss); the spec's block below lifts the underfit limits, so no
trial is.

Shown to fail (issue 19), each break undone right after:
- summarising with the first trial's record instead of the best (tracking/study_runs.py):
  `best_model_trial` is 0, not 1;
- logging trial 0's .keras file under the best trial's name (tracking/best_model.py): the
  parent's model scores 0.17 test accuracy, not the best trial's 0.97;
- judging with the default thresholds instead of the spec's block (tracking/study_runs.py):
  the `fit` tags read `underfit`;
- `fitscope report` building with the thresholds stored with the study instead of the edited
  spec's (fitscope/commands/report.py): the leaderboard keeps the search's `good_fit`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml

from analysis.diagnosis import diagnose_record
from experiments.data import load_dataset
from experiments.registry import load_spec
from experiments.tasks import task_kind
from experiments.thresholds import FitThresholds
from fitscope.cli import main
from search.record import BASELINE_LOSS, record_from_trial
from tests.conftest import empty_mlflow_store, mlflow_runs, use_as_workdir, write_spec

STUDY = "outputs"
LIFTED = {"underfit_ratio": 5.0, "tail_slope": 1.0}  # nothing here is judged underfit


@dataclass(frozen=True)
class Study:
    folder: Path
    uri: str
    spec: Path
    parent: Any
    children: list[Any]
    trials: list[optuna.trial.FrozenTrial]
    baseline: float


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Study]:
    folder = tmp_path_factory.mktemp("study-outputs")
    uri = empty_mlflow_store(folder / "mlflow.db")
    storage = f"sqlite:///{folder / 'optuna.db'}"
    with pytest.MonkeyPatch.context() as patch:
        use_as_workdir(patch, folder)
        spec = write_spec(
            folder, "iris", space={
                "n_layers": 1, "units": 16, "activation": "relu", "optimizer": ["sgd", "adam"],
                "learning_rate": [1.0e-4, 0.05], "batch_size": 16, "dropout": 0.0},
            train__max_epochs=5, train__patience=5, search__pruner="none", diagnosis=LIFTED,
        )
        created = optuna.create_study(study_name=STUDY, storage=storage)
        created.enqueue_trial({"optimizer": "sgd", "learning_rate": 1.0e-4})
        created.enqueue_trial({"optimizer": "adam", "learning_rate": 0.05})
        assert main(["search", str(spec), "--trials", "2", "--study", STUDY,
                     "--tracking-uri", uri]) == 0
        parent, children = mlflow_runs(uri, "iris")
        done = optuna.load_study(study_name=STUDY, storage=storage)
        yield Study(folder, uri, spec, parent, children, done.trials,
                    float(done.user_attrs[BASELINE_LOSS]))


def network_of(model: Any) -> Any:
    """What predicts from the preprocessed arrays, whichever way `best_model` was logged: the
    Keras network inside the pyfunc winner (preprocessing + network), else the Keras flavour
    itself, whose pyfunc takes the network's inputs."""
    from mlflow.exceptions import MlflowException

    try:
        return model.unwrap_python_model().network
    except MlflowException:
        return model


def test_the_parent_model_reproduces_the_best_trials_test_metrics(study: Study) -> None:
    import keras
    import mlflow

    best = min(study.children, key=lambda c: c.data.metrics["best_val_loss"])
    assert best.data.tags["trial_number"] == "1"
    assert study.parent.data.tags["best_model_trial"] == "1"
    worse = study.children[0].data.metrics["test_accuracy"]
    assert worse != best.data.metrics["test_accuracy"]  # the check can tell the two apart

    data = load_dataset(load_spec(str(study.spec)))
    mlflow.set_tracking_uri(study.uri)
    try:
        model = mlflow.pyfunc.load_model(f"runs:/{study.parent.info.run_id}/best_model")
        raw = np.asarray(network_of(model).predict(data.x_test), dtype=np.float32)
    finally:
        keras.backend.clear_session()
    scored = task_kind("multiclass").test_metrics(data.y_test, raw)
    assert scored["test_accuracy"] == best.data.metrics["test_accuracy"]
    assert scored["test_accuracy"] == study.parent.data.metrics["best_test_accuracy"]
    for name, value in scored.items():
        assert best.data.metrics[name] == pytest.approx(value, abs=1e-6), name


def judged(study: Study, thresholds: dict[str, Any]) -> list[str]:
    fits = []
    for trial in study.trials:
        diagnosis = diagnose_record(record_from_trial(trial), study.baseline, thresholds)
        assert diagnosis is not None
        fits.append(diagnosis.fit)
    return fits


def test_the_specs_diagnosis_block_judges_search_and_report(study: Study) -> None:
    by_default = judged(study, {})
    assert by_default[0] == "underfit"  # SGD at 1e-4 barely moves in 5 epochs
    lifted = judged(study, LIFTED)
    assert "underfit" not in lifted
    assert lifted != by_default  # so the tags below tell which thresholds judged them
    assert [c.data.tags["fit"] for c in study.children] == lifted  # search used the spec's

    # the same study, re-judged by `fitscope report` after the block is edited out of the spec
    raw = yaml.safe_load(study.spec.read_text())
    del raw["diagnosis"]
    edited = study.folder / "edited" / study.spec.name
    edited.parent.mkdir()
    edited.write_text(yaml.safe_dump(raw))
    assert load_spec(str(edited)).diagnosis == FitThresholds()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(study.folder)
        patch.delenv("FITSCOPE_REPORTS_DIR", raising=False)
        assert main(["report", str(edited), "--study", STUDY, "--tracking-uri", study.uri]) == 0
    board = study.folder / "reports" / "iris" / STUDY / "leaderboard.csv"
    with board.open() as handle:
        rows = {row["trial"]: row["fit"] for row in csv.DictReader(handle)}
    assert [rows["0"], rows["1"]] == by_default
