"""`fitscope worker` as on many machines: PostgreSQL for Optuna, an `mlflow server` (itself on
PostgreSQL), workers started separately; a machine that dies is noticed through heartbeats."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import write_spec
from tests.postgres import Cluster
from tests.study_checks import (
    check_study,
    finish,
    fitscope,
    kill_mid_trial,
    load,
    wait_for,
    worker_pid,
)
from tracking.server import LocalMlflowServer


@pytest.fixture(scope="module")
def mlflow_server(postgres: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `mlflow server` with a PostgreSQL backend store, as a team would run it."""
    backend = postgres.create_database("mlflow").replace("postgresql://", "postgresql+psycopg://")
    folder = tmp_path_factory.mktemp("mlflow-server")
    with LocalMlflowServer(backend, artifact_root=folder / "artifacts",
                           log_path=folder / "server.log") as server:
        yield server.uri


@pytest.mark.slow  # several processes and an MLflow server: minutes on 2 cores
def test_separately_started_workers_share_a_study_and_retry_a_dead_machine_s_trial(
    workdir: Path, postgres: Cluster, mlflow_server: str
) -> None:
    # One scenario instead of two tests (~90 s less of the suite): two workers started at once
    # share the study; one "machine" dies mid-trial; its trial is failed through heartbeats and
    # retried by a live worker.
    storage = postgres.create_database("optuna_joint")
    # 60 epochs (~4 s a trial): the kill needs no long trial (kill_mid_trial freezes the worker
    # and checks its trial is still running), and every trial here runs to its end but one
    spec = write_spec(workdir, "iris", name="irisjoint", train__max_epochs=60,
                      train__patience=60, search__pruner="none")
    # heartbeat every second, dead after 4 s without one (defaults: 30 s and 120 s)
    command = ["worker", str(spec), "--study", "joint", "--storage", storage,
               "--tracking-uri", mlflow_server, "--heartbeat", "1", "--grace", "4"]
    # started at the same moment, as a Slurm array or a Kubernetes Job would start them
    workers = [fitscope([*command, "--trials", "2"], cwd=workdir) for _ in range(2)]
    study = wait_for("the study", lambda: _try_load(storage, "joint"))
    dead = kill_mid_trial(study)  # one "machine" dies in the middle of a trial
    (survivor,) = [w for w in workers if w.pid != worker_pid(dead)]
    (victim,) = [w for w in workers if w is not survivor]
    finish(victim, timeout=60)
    rc, survived = finish(survivor)
    assert rc == 0, survived[-4000:]
    time.sleep(5)  # its last heartbeat is past the grace period, whoever retries it
    rc, late = finish(fitscope([*command, "--trials", "1"], cwd=workdir))
    assert rc == 0, late[-4000:]

    outputs = survived + late
    # the live worker that starts a trial after the grace period fails it and queues it again
    assert f"trial {dead.number} of a dead worker marked FAIL and queued again" in outputs
    study = load(storage, "joint")
    runs = check_study(study, mlflow_server, "irisjoint", counted=3)
    assert len(study.trials) == 4  # 3 counted + the dead one; its retry is one of the 3
    # two workers trained side by side in one study, plus the late one
    assert len({t.user_attrs["worker"] for t in study.trials}) == 3
    failed = study.trials[dead.number]
    assert failed.state.name == "FAIL"
    (retry,) = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.state.name == "COMPLETE" and retry.params == failed.params
    run = runs[dead.number]
    assert run.info.status == "FAILED"
    assert "sent no heartbeat for 4 s" in run.data.tags["fail_reason"]
    client = MlflowClient(tracking_uri=mlflow_server)
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FINISHED"  # closed by the last worker to finish
    # the password of the storage URL is nowhere: not in the output, not in any run
    assert postgres.password not in outputs
    for recorded_run in [parent, *runs.values()]:
        recorded = " ".join([*recorded_run.data.params.values(), *recorded_run.data.tags.values()])
        assert postgres.password not in recorded
    assert "fitscope:***@127.0.0.1" in parent.data.tags["fitscope.storage"]


def _try_load(storage: str, name: str) -> object:
    try:
        return load(storage, name)
    except Exception:  # no tables or no study yet
        return None


def test_the_throwaway_cluster_runs_as_the_postgres_user_under_root(postgres: Cluster) -> None:
    import pwd

    # initdb refuses root: as root (CI) the cluster's files belong to Debian's postgres user
    expected = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    assert (postgres.root / "data").stat().st_uid == expected
