"""`fitscope search` end to end: real data, real Keras training, a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from fitscope.cli import main
from tests.conftest import mlflow_runs, write_spec


def test_iris_study_leaves_a_parent_and_one_child_per_trial(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(workdir, "iris", train__max_epochs=6, train__patience=3,
                      search__pruner="none")
    assert main(["search", str(spec), "--trials", "3", "--tracking-uri", tracking_uri]) == 0

    parent, children = mlflow_runs(tracking_uri, "iris")
    assert parent.info.status == "FINISHED"
    assert [int(c.data.tags["trial_number"]) for c in children] == [0, 1, 2]
    client = MlflowClient(tracking_uri=tracking_uri)
    (summary,) = optuna.get_all_study_summaries(f"sqlite:///{workdir / 'optuna.db'}")
    trials = optuna.load_study(study_name=summary.study_name,
                               storage=f"sqlite:///{workdir / 'optuna.db'}").trials
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["state"] == "COMPLETE"
        history = client.get_metric_history(child.info.run_id, "val_loss")
        assert [m.step for m in history] == list(range(int(child.data.metrics["epochs_trained"])))
        assert min(m.value for m in history) == pytest.approx(child.data.metrics["best_val_loss"])
        # every curve, epoch by epoch at its step, as the trial recorded it (issue 19)
        recorded = trials[int(child.data.tags["trial_number"])].user_attrs["history"]
        for curve in ("loss", "val_loss", "accuracy", "val_accuracy"):
            points = sorted(client.get_metric_history(child.info.run_id, curve),
                            key=lambda m: m.step)
            assert [m.step for m in points] == list(range(len(recorded[curve]))), curve
            assert [m.value for m in points] == pytest.approx(recorded[curve], rel=1e-6), curve
        for name in ("test_accuracy", "test_f1_macro", "test_loss", "n_params", "best_epoch"):
            assert name in child.data.metrics
        for name in ("n_layers", "units_0", "learning_rate", "seed", "keras_backend", "patience"):
            assert name in child.data.params
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"learning_curves.png", "model_summary.txt", "confusion_matrix.png",
                "classification_report.txt"} <= artifacts
    best = min(children, key=lambda c: c.data.metrics["best_val_loss"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_val_loss"] == pytest.approx(best.data.metrics["best_val_loss"])
    assert parent.data.metrics["best_test_accuracy"] == best.data.metrics["test_accuracy"]
    assert parent.data.params["seed"] == "42"
    assert parent.data.tags["git_commit"]
    out = capsys.readouterr().out
    assert "top 3 by best val_loss" in out
    assert parent.info.run_id in out


def test_rerunning_the_same_command_resumes_the_study(workdir: Path, tracking_uri: str) -> None:
    spec = write_spec(workdir, "xor", train__max_epochs=3, train__patience=2)
    argv = ["search", str(spec), "--trials", "2", "--tracking-uri", tracking_uri]
    assert main(argv) == 0
    assert main(argv) == 0
    parent, children = mlflow_runs(tracking_uri, "xor")
    assert [int(c.data.tags["trial_number"]) for c in children] == [0, 1, 2, 3]
    assert parent.info.status == "FINISHED"
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    assert summary.n_trials == 4


def test_diverged_and_pruned_trials_are_recorded_truthfully(
    workdir: Path, tracking_uri: str
) -> None:
    # plain SGD at a huge rate on unscaled targets in the hundreds overflows within an epoch
    spec = write_spec(
        workdir, "bloodfat", space={
            "n_layers": 1, "units": 8, "activation": "relu", "optimizer": "sgd",
            "learning_rate": [1.0e-3, 50.0], "batch_size": 4, "dropout": 0.0},
        train__max_epochs=4, train__patience=4, search__pruner="none", search__sampler="random",
    )
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    study_name = "truth"
    study = optuna.create_study(study_name=study_name, storage=storage)
    study.enqueue_trial({"learning_rate": 1.0e-3})
    study.enqueue_trial({"learning_rate": 50.0})
    assert main(["search", str(spec), "--trials", "2", "--study", study_name,
                 "--tracking-uri", tracking_uri]) == 0
    _, (good, diverged) = mlflow_runs(tracking_uri, "bloodfat")
    assert good.info.status == "FINISHED"
    assert diverged.info.status == "FAILED"
    assert diverged.data.tags["state"] == "FAIL"
    assert "diverged" in diverged.data.tags["fail_reason"]
    assert diverged.data.tags["fit"] == "diverged"
    trials = optuna.load_study(study_name=study_name, storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL"]
    assert trials[1].value is None  # never replaced by a fake value
    assert trials[1].user_attrs["fail_reason"] == diverged.data.tags["fail_reason"]


def test_a_pruned_trial_is_killed_with_its_partial_curve(workdir: Path, tracking_uri: str) -> None:
    spec = write_spec(
        workdir, "iris", space={
            "n_layers": 1, "units": 16, "activation": "relu", "optimizer": ["adam", "sgd"],
            "learning_rate": [0.05, 1.0e-4], "batch_size": 16, "dropout": 0.0},
        train__max_epochs=12, train__patience=12, search__pruner="median",
        search__startup_trials=1, search__warmup_epochs=1,
    )
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    study = optuna.create_study(study_name="prune", storage=storage)
    study.enqueue_trial({"optimizer": "adam", "learning_rate": 0.05})
    study.enqueue_trial({"optimizer": "sgd", "learning_rate": 1.0e-4})
    assert main(["search", str(spec), "--trials", "2", "--study", "prune",
                 "--tracking-uri", tracking_uri]) == 0
    _, (good, slow) = mlflow_runs(tracking_uri, "iris")
    assert good.info.status == "FINISHED"
    assert slow.data.tags["state"] == "PRUNED"
    assert slow.info.status == "KILLED"
    history = MlflowClient(tracking_uri).get_metric_history(slow.info.run_id, "val_loss")
    assert 2 <= len(history) < 12
    assert "test_accuracy" not in slow.data.metrics


def test_xor_fixed_config_reaches_perfect_test_accuracy(workdir: Path, tracking_uri: str) -> None:
    spec = write_spec(
        workdir, "xor", space={
            "n_layers": 1, "units": 8, "activation": "tanh", "optimizer": "adam",
            "learning_rate": 0.1, "batch_size": 4, "dropout": 0.0},
        train__max_epochs=150, train__patience=150,
    )
    assert main(["search", str(spec), "--trials", "1", "--tracking-uri", tracking_uri]) == 0
    _, (child,) = mlflow_runs(tracking_uri, "xor")
    assert child.data.metrics["test_accuracy"] == 1.0
