"""`fitscope sync`: MLflow is rebuilt from the Optuna storage after it lost runs.

The test that stops a real MLflow server in the middle of a study, lets the study finish without
it, starts the server again and syncs is in test_mlflow_outage.py, which shares one server.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from experiments.registry import load_spec
from fitscope.cli import main
from search.record import MLFLOW_PARENT_STATUS as PARENT_STATUS_ATTR
from search.study import default_study_name
from tests.conftest import mlflow_runs, write_spec


def finished_xor_study(workdir: Path, tracking_uri: str, trials: int = 2) -> tuple[Path, str]:
    spec = write_spec(workdir, "xor", train__max_epochs=3, train__patience=3)
    assert main(["search", str(spec), "--trials", str(trials), "--tracking-uri", tracking_uri]) == 0
    return spec, default_study_name(load_spec(str(spec)))


def all_runs(tracking_uri: str, experiment: str) -> list:
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    return client.search_runs([found.experiment_id], max_results=1000)


def test_sync_replaces_a_half_written_child_and_closes_the_parent(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, name = finished_xor_study(workdir, tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    parent, (first, second) = mlflow_runs(tracking_uri, "xor")
    # what MLflow going away mid-write leaves: trial 1's run begun and never finished, and a
    # parent that could not be closed (the study had ended "finished")
    client.delete_run(second.info.run_id)
    half = client.create_run(first.info.experiment_id, tags={
        "mlflow.parentRunId": parent.info.run_id, "fitscope.role": "trial",
        "fitscope.study": name, "trial_number": "1", "state": "COMPLETE"}).info.run_id
    client.update_run(parent.info.run_id, status="RUNNING")
    capsys.readouterr()

    assert main(["sync", str(spec), "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    assert "wrote 1 child run(s) (trials 1)" in out
    assert "closed FINISHED" in out
    parent_after, children = mlflow_runs(tracking_uri, "xor")
    assert parent_after.info.run_id == parent.info.run_id
    assert parent_after.info.status == "FINISHED"
    assert [int(c.data.tags["trial_number"]) for c in children] == [0, 1]
    assert children[0].info.run_id == first.info.run_id  # a complete run is left alone
    assert half not in {c.info.run_id for c in children}
    assert client.get_run(half).info.lifecycle_stage == "deleted"
    rewritten = children[1]
    assert rewritten.info.status == "FINISHED"
    history = client.get_metric_history(rewritten.info.run_id, "val_loss")
    assert len(history) == int(rewritten.data.metrics["epochs_trained"])
    assert "test_accuracy" in rewritten.data.metrics
    assert parent_after.data.tags["best_run_id"] in {c.info.run_id for c in children}
    assert [r for r in all_runs(tracking_uri, "xor") if r.info.status == "RUNNING"] == []

    assert main(["sync", str(spec), "--tracking-uri", tracking_uri]) == 0  # nothing left to do
    assert "wrote 0 child run(s);" in capsys.readouterr().out
    assert len(mlflow_runs(tracking_uri, "xor")[1]) == 2


def test_parent_of_a_process_that_died_is_closed_failed(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, name = finished_xor_study(workdir, tracking_uri, trials=1)
    parent, _ = mlflow_runs(tracking_uri, "xor")
    # a killed process: its parent stays RUNNING and the study never recorded an outcome
    MlflowClient(tracking_uri=tracking_uri).update_run(parent.info.run_id, status="RUNNING")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{workdir / 'optuna.db'}")
    study.set_user_attr(PARENT_STATUS_ATTR, "RUNNING")
    assert main(["sync", str(spec), "--tracking-uri", tracking_uri]) == 0
    assert "closed FAILED" in capsys.readouterr().out
    assert mlflow_runs(tracking_uri, "xor")[0].info.status == "FAILED"


def test_sync_of_an_unknown_study_lists_the_known_ones(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, name = finished_xor_study(workdir, tracking_uri, trials=1)
    capsys.readouterr()
    assert main(["sync", str(spec), "--study", "nope", "--tracking-uri", tracking_uri]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fitscope: error: no study 'nope' in sqlite:///")
    assert f"studies there: {name}" in err
    assert "\n" not in err


def test_sync_without_a_storage_says_so(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "xor"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "fitscope: error: no Optuna storage at optuna.db (--storage, FITSCOPE_STORAGE)"
    assert not (workdir / "optuna.db").exists()  # not created empty by looking
