"""The KerasTuner engine end to end: real iris training, its record study and real MLflow runs."""

from __future__ import annotations

import gc
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from common.errors import TrackingError
from experiments.data import load_dataset
from experiments.registry import load_spec
from experiments.spec import ExperimentSpec
from fitscope.cli import main
from search import inputs
from search.kerastuner_engine import kerastuner_study_name, open_record_study, run_kerastuner
from search.record import TrialRecord
from search.study import StudySettings, default_study_name, open_study
from tests.conftest import mlflow_runs, write_spec


class Recorder:
    """An observer keeping what it is told."""

    def __init__(self) -> None:
        self.records: list[TrialRecord] = []
        self.events: list[str] = []
        self.frozen: list[int] = []  # objects the garbage collector skips as each trial ends
        self.tensors: list[int] = []  # arrays held in TensorFlow as each trial ends

    def on_study_start(self, study: optuna.Study, spec: ExperimentSpec) -> None:
        self.events.append("start")

    def on_trial_end(self, study: optuna.Study, record: TrialRecord) -> None:
        self.records.append(record)
        self.frozen.append(gc.get_freeze_count())
        self.tensors.append(len(inputs._TENSORS))

    def on_study_end(self, study: optuna.Study, outcome: str) -> None:
        self.events.append(outcome)


def _settings(workdir: Path, spec: ExperimentSpec, tuner: str, trials: int,
              timeout: float | None = None) -> StudySettings:
    name = kerastuner_study_name(spec, tuner)
    return StudySettings(study_name=name, storage=f"sqlite:///{workdir / 'optuna.db'}",
                         trials=trials, timeout=timeout, seed=spec.search.seed,
                         runs_dir=workdir / "runs" / spec.name / name)


def test_a_kerastuner_study_on_iris_leaves_a_parent_and_child_runs(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(workdir, "iris", train__max_epochs=3, train__patience=3)
    argv = ["search", str(spec), "--engine", "kerastuner", "--tuner", "random", "--trials", "3",
            "--tracking-uri", tracking_uri]
    assert main(argv) == 0

    parent, children = mlflow_runs(tracking_uri, "iris")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["engine"] == "kerastuner"
    assert parent.data.tags["tuner"] == "random"
    assert parent.data.params["sampler"] == "random"  # KerasTuner's, not the spec's tpe
    assert parent.data.tags["fitscope.study"].endswith("-kt-random")
    assert [int(c.data.tags["trial_number"]) for c in children] == [0, 1, 2]
    client = MlflowClient(tracking_uri=tracking_uri)
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["state"] == "COMPLETE"
        assert child.data.tags["fit"] in ("good_fit", "overfit", "underfit", "diverged",
                                          "unstable")
        history = client.get_metric_history(child.info.run_id, "val_loss")
        assert [m.step for m in history] == [0, 1, 2]
        assert min(m.value for m in history) == pytest.approx(child.data.metrics["best_val_loss"])
        for name in ("test_accuracy", "test_f1_macro", "test_loss", "n_params", "best_epoch",
                     "gap_ratio"):
            assert name in child.data.metrics
        for name in ("n_layers", "units_0", "learning_rate", "seed", "max_epochs", "engine",
                     "tuner", "kt_trial_id"):
            assert name in child.data.params
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"learning_curves.png", "confusion_matrix.png"} <= artifacts
    best = min(children, key=lambda c: c.data.metrics["best_val_loss"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_test_accuracy"] == best.data.metrics["test_accuracy"]
    # KerasTuner's working directory is under runs/, never the working directory itself
    study_dir = workdir / "runs" / "iris" / parent.data.tags["fitscope.study"]
    assert (study_dir / "kerastuner" / "oracle.json").is_file()
    assert not list(workdir.glob("untitled_project*"))
    assert "top 3 by best val_loss" in capsys.readouterr().out

    # the same command resumes: same parent, KerasTuner's oracle goes on with new trials
    assert main([*argv[:-4], "--trials", "1", "--tracking-uri", tracking_uri]) == 0
    again, children = mlflow_runs(tracking_uri, "iris")
    assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED"
    assert [c.data.params["kt_trial_id"] for c in children] == ["0000", "0001", "0002", "0003"]
    assert len({c.data.params["units_0"] + c.data.params["learning_rate"] for c in children}) == 4


def test_hyperband_continues_a_configuration_from_its_weights(workdir: Path) -> None:
    # a learning rate so small that training changes nothing: a continued trial's first
    # val_loss must then be its predecessor's, which holds only if the weights were loaded
    spec = load_spec(str(write_spec(
        workdir, "iris", space={"n_layers": 1, "units": [8, 16, 32], "activation": "relu",
                                "optimizer": "sgd", "learning_rate": 1.0e-9, "batch_size": 16,
                                "dropout": 0.0},
        train__max_epochs=3, train__patience=3)))
    recorder = Recorder()
    settings = _settings(workdir, spec, "hyperband", trials=4)
    study = run_kerastuner(spec, load_dataset(spec), settings, [recorder], "hyperband")

    # max_epochs 3, factor 3: three 1-epoch trials, then the best goes on to epoch 3
    assert recorder.events == ["start", "finished"]
    first, continued = recorder.records[:3], recorder.records[3]
    assert [r.epochs_trained for r in recorder.records] == [1, 1, 1, 2]
    assert all(r.state == "COMPLETE" for r in recorder.records)
    past = {r.settings["kt_trial_id"]: r for r in first}[continued.settings["kt_continues"]]
    assert past.best_val_loss == min(r.best_val_loss for r in first)
    assert continued.params == past.params
    assert continued.settings["kt_initial_epoch"] == 1 and continued.settings["kt_epochs"] == 3
    assert continued.history["val_loss"][0] == pytest.approx(past.best_val_loss, rel=1e-5)
    # the record study holds the same records, as the Optuna engine's storage does
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    assert study.trials[3].value == pytest.approx(continued.best_val_loss)
    assert study.trials[3].params == {"units_0": past.params["units_0"]}
    # the same per-trial economy as the Optuna engine (issue 20): TensorFlow's import stays out
    # of each trial's garbage collection, and nothing is held once the loop is over
    assert min(recorder.frozen) > 100_000 and gc.get_freeze_count() == 0
    assert min(recorder.tensors) > 0 and not inputs._TENSORS


def test_failed_trials_are_recorded_and_do_not_end_the_search(workdir: Path) -> None:
    # plain SGD at a huge rate on unscaled targets in the hundreds overflows within an epoch
    spec = load_spec(str(write_spec(
        workdir, "bloodfat", space={"n_layers": 1, "units": {"low": 8, "high": 64},
                                    "activation": "relu", "optimizer": "sgd",
                                    "learning_rate": 50.0, "batch_size": 4, "dropout": 0.0},
        train__max_epochs=2, train__patience=2)))
    recorder = Recorder()
    # KerasTuner alone would stop after 3 failures in a row; the Optuna engine never does
    study = run_kerastuner(spec, load_dataset(spec), _settings(workdir, spec, "random", 4),
                           [recorder], "random")
    assert [r.state for r in recorder.records] == ["FAIL"] * 4
    assert all("diverged" in (r.fail_reason or "") for r in recorder.records)
    assert all(r.history.get("loss") for r in recorder.records)  # partial curves kept
    assert [t.value for t in study.trials] == [None] * 4  # never replaced by a fake value


def test_the_budget_stops_starting_new_trials(workdir: Path) -> None:
    spec = load_spec(str(write_spec(workdir, "iris", train__max_epochs=1, train__patience=1)))
    recorder = Recorder()
    # like Optuna's timeout: checked before each new trial, the first one always runs
    settings = _settings(workdir, spec, "random", trials=50, timeout=1e-3)
    run_kerastuner(spec, load_dataset(spec), settings, [recorder], "random")
    assert len(recorder.records) == 1
    assert recorder.events == ["start", "finished"]


def test_a_study_of_another_engine_is_refused(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_path = write_spec(workdir, "iris", train__max_epochs=1)
    spec = load_spec(str(spec_path))
    name = default_study_name(spec)
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    open_study(spec, StudySettings(name, storage, 1, None, 42, workdir / "runs"))
    argv = ["search", str(spec_path), "--engine", "kerastuner", "--study", name,
            "--tracking-uri", tracking_uri]
    assert main(argv) == 2
    assert "holds trials of the optuna engine" in capsys.readouterr().err
    settings = StudySettings(kerastuner_study_name(spec, "hyperband"), storage, 1, None, 42,
                             workdir / "runs")
    open_record_study(spec, settings, "hyperband")  # creates it: no error
    # only the second call may raise, and only the one-line TrackingError (issue 19)
    with pytest.raises(TrackingError, match="holds trials of the kerastuner hyperband engine"):
        open_record_study(spec, settings, "random")
    assert main(["search", str(spec_path), "--tuner", "random"]) == 2
    assert "--tuner applies to --engine kerastuner" in capsys.readouterr().err
