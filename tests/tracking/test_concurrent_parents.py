"""Two processes that own a study (two `search` commands started together) share one MLflow
parent run (issue 18, item 12)."""

from __future__ import annotations

import threading
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient

from experiments.registry import load_spec
from search.study import StudySettings
from tests.conftest import write_spec
from tracking.parent_policy import POLICIES
from tracking.study_runs import StudyRuns


def test_two_owners_starting_together_create_one_parent(workdir: Path, tracking_uri: str) -> None:
    # Threads stand in for the two processes (the lock is one per open file, as between
    # processes): both look for the parent at the same moment, which two `search` commands
    # started together do after their imports. Before the fix both found none and made one.
    spec = load_spec(str(write_spec(workdir, "xor")))
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    optuna.create_study(study_name="s", storage=storage)
    settings = StudySettings(study_name="s", storage=storage, trials=1, timeout=None, seed=1,
                             runs_dir=workdir / "runs" / "xor" / "s")
    start = threading.Barrier(2)
    parents: list[str] = []

    def owner() -> None:
        runs = StudyRuns(tracking_uri, spec, settings, log_best_model=False)
        runs.connect()
        study = optuna.load_study(study_name="s", storage=storage)
        start.wait()
        parents.append(POLICIES["study"].open(runs, study))

    threads = [threading.Thread(target=owner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(parents) == 2 and parents[0] == parents[1]
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("xor")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`fitscope.role` = 'study'")
    assert [r.info.run_id for r in runs] == parents[:1]
