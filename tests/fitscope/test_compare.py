"""`fitscope compare`: both engines on one spec, seed and budget, and the side-by-side table."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from fitscope.cli import main
from tests.conftest import write_spec


def test_compare_runs_both_engines_and_writes_the_table(
    workdir: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FITSCOPE_REPORTS_DIR", raising=False)
    spec = write_spec(workdir, "iris", train__max_epochs=3, train__patience=3)
    # a budget shorter than one trial: each engine runs exactly its first trial
    assert main(["compare", str(spec), "--budget", "0.5", "--tracking-uri", tracking_uri]) == 0

    (report,) = (workdir / "reports" / "iris").glob("compare-*.md")
    text = report.read_text()
    table = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
             for line in text.splitlines() if line.startswith("| ")}
    assert table[""] == ["optuna (tpe, median pruner)", "kerastuner (hyperband)"]
    assert table["trials finished"] == ["1", "1"]
    # max_epochs 3: Hyperband's first bracket starts with one-epoch rounds
    assert table["epochs trained"] == ["3", "1"]

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("iris")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    (comparison,) = [r for r in runs if r.data.tags.get("fitscope.role") == "comparison"]
    studies = {r.data.tags["engine"]: r for r in runs
               if r.data.tags.get("fitscope.role") == "study"}
    assert comparison.info.status == "FINISHED"
    assert comparison.data.params["budget_seconds"] == "0.5"
    assert set(studies) == {"optuna", "kerastuner"}
    for engine, study in studies.items():
        # each engine's study parent nests under the comparison, with its own trials below it
        assert study.data.tags["mlflow.parentRunId"] == comparison.info.run_id
        assert comparison.data.tags[f"{engine}_parent_run_id"] == study.info.run_id
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == study.info.run_id]
        assert comparison.data.metrics[f"{engine}_trials_finished"] == len(children) == 1
        assert comparison.data.metrics[f"{engine}_best_val_loss"] == pytest.approx(
            study.data.metrics["best_val_loss"])
        # every number of the table and of the comparison run is the study's own (issue 19)
        (child,) = children
        column = ("optuna", "kerastuner").index(engine)
        best_epoch = int(child.data.metrics["best_epoch"])
        val_accuracy = [m.value for m in sorted(
            client.get_metric_history(child.info.run_id, "val_accuracy"),
            key=lambda m: m.step)][best_epoch]
        cells = {"best val_loss": child.data.metrics["best_val_loss"],
                 "best trial's val_accuracy": val_accuracy,
                 "best trial's test_accuracy": child.data.metrics["test_accuracy"]}
        for row, value in cells.items():
            assert table[row][column] == f"{value:.4f}", (engine, row)
        assert comparison.data.metrics[f"{engine}_best_val_accuracy"] == pytest.approx(
            val_accuracy)
        assert comparison.data.metrics[f"{engine}_best_test_accuracy"] == pytest.approx(
            child.data.metrics["test_accuracy"])
        seconds = comparison.data.metrics[f"{engine}_wall_seconds"]
        assert seconds > 0 and table["wall seconds"][column] == f"{seconds:.1f}"
    assert studies["kerastuner"].data.tags["tuner"] == "hyperband"
    artifacts = {a.path for a in client.list_artifacts(comparison.info.run_id)}
    assert report.name in artifacts
