"""`fitscope search --workers N` on one machine: real worker processes, a real `mlflow server`,
the study's SQLite storage with heartbeats. One scenario, as a user could live it: Ctrl-C to the
launcher, then the same command resuming with two workers, one of which is killed mid-trial and
replaced, that still add exactly the trials asked for. (Three launcher runs as separate tests
cost ~100 s more of the suite on 2 cores.)"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from fitscope.supervisor import describe_exit
from fitscope.workers import parse_gpus, plan_workers
from search.budget import TrialBudget
from tests.conftest import write_spec
from tests.study_checks import (
    alive,
    check_study,
    finish,
    fitscope,
    kill_mid_trial,
    listening,
    load,
    server_port,
    wait_for,
    worker_pid,
)

STUDY = "par"
LONG = 150  # epochs: iris trials long enough (~8 s) to be caught in the middle by a signal


def test_budget_is_exact_and_a_retry_counts_once() -> None:
    budget = TrialBudget(3)
    assert [budget.grant() for _ in range(4)] == [True, True, True, False]
    budget.give_back(1)  # a worker died mid-trial; its params are queued again
    assert budget.grant() and not budget.grant()
    budget.give_back(-2)  # never more trials than asked for
    assert budget.left == 0


def test_workers_share_cores_and_gpus_round_robin() -> None:
    cpu = plan_workers(2, cores=2)
    assert [s.threads for s in cpu] == [1, 1]
    env = cpu[0].environment()
    assert env["TF_NUM_INTRAOP_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"  # a CPU worker never grabs a GPU
    gpu = plan_workers(4, gpus=["0", "1"], workers_per_gpu=1, cores=16)
    assert [s.gpu for s in gpu] == ["0", "1", "0", "1"]
    env = gpu[1].environment()
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert parse_gpus("none") == [] and parse_gpus("0, 1") == ["0", "1"]
    assert parse_gpus(None) is None  # not given: all visible GPUs
    assert describe_exit(-9) == "signal 9, SIGKILL" and describe_exit(3) == "exit code 3"


@pytest.mark.slow  # several processes and an MLflow server: minutes on 2 cores
def test_ctrl_c_stops_workers_and_the_command_resumes_past_a_killed_worker(
    workdir: Path,
) -> None:
    spec = write_spec(workdir, "iris", train__max_epochs=LONG, train__patience=LONG,
                      search__pruner="none")
    command = ["search", str(spec), "--workers", "2", "--trials", "4", "--study", STUDY]
    launcher = fitscope(command, cwd=workdir)
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    study = wait_for("the study", lambda: _try_load(storage))
    wait_for("two trials in training", lambda: len([
        t for t in study.get_trials(deepcopy=False)
        if t.state.name == "RUNNING" and t.user_attrs.get("history")]) == 2)
    running = {t.number: t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"}
    launcher.send_signal(signal.SIGINT)
    rc, out = finish(launcher, timeout=300)
    assert rc == 130, out[-4000:]

    tracking = f"sqlite:///{workdir / 'mlflow.db'}"
    study = load(storage, STUDY)
    assert not [t for t in study.trials if t.state.name in ("RUNNING", "WAITING")]
    for number, trial in running.items():
        now = study.trials[number]
        # 150 epochs of iris are far from done when the signal comes: each trial is interrupted
        assert now.state.name == "FAIL", now.state
        assert now.user_attrs["fail_reason"].startswith("interrupted"), now.user_attrs
        assert not alive(worker_pid(trial)), "a worker outlived Ctrl-C"
    assert not listening(server_port(out)), "the MLflow server outlived Ctrl-C"
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("iris")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert runs and all(r.info.status != "RUNNING" for r in runs)
    (parent,) = [r for r in runs if r.data.tags.get("fitscope.role") == "study"]
    assert parent.info.status == "KILLED"  # the README's word for a study stopped by Ctrl-C
    before = len(study.trials)
    counted_before = sum(t.state.name == "COMPLETE" for t in study.trials)

    # resumed by the same command: two workers add exactly the 4 trials asked for, though one
    # of them is killed in the middle of a trial (its trial fails and is retried, counted once)
    resumed = fitscope(command, cwd=workdir)
    killed = kill_mid_trial(study)
    rc, out = finish(resumed)
    assert rc == 0, out[-4000:]
    study = load(storage, STUDY)
    assert len(study.trials) == before + 5  # 4 counted + the dead one; its retry counted once
    runs = check_study(study, tracking, "iris", counted=counted_before + 4)  # one parent, reopened
    dead = study.trials[killed.number]
    assert dead.state.name == "FAIL"
    assert dead.user_attrs["fail_reason"] == "worker died (signal 9, SIGKILL)"
    (retry,) = [t for t in study.trials if t.user_attrs.get("retry_of") == killed.number]
    assert retry.state.name == "COMPLETE" and retry.params == dead.params
    run = runs[killed.number]
    assert run.info.status == "FAILED"
    assert run.data.tags["fail_reason"] == "worker died (signal 9, SIGKILL)"
    assert run.data.metrics["epochs_trained"] >= 1  # its partial curves were kept
    assert f"worker pid {worker_pid(killed)} died (signal 9, SIGKILL)" in out
    assert out.count("started: pid") == 3  # two workers and one replacement
    added = [t for t in study.trials[before:] if t.state.name == "COMPLETE"]
    # more than one worker trained (issue 19: `<= 2` also passed when one worker ran every trial)
    assert len({t.user_attrs["worker"] for t in added}) >= 2
    params = [tuple(sorted(t.params.items())) for t in study.trials
              if "retry_of" not in t.user_attrs]
    assert len(set(params)) == len(params), "two workers (or the resume) drew the same candidate"
    assert not listening(server_port(out)), "the MLflow server outlived the study"
    # the runs sit in the user's own store, where `make ui` and a plain search look
    assert (workdir / "mlruns").is_dir()


def _try_load(storage: str) -> object:
    try:
        return load(storage, STUDY)
    except Exception:  # not created yet: no database file, no tables or no study in it
        return None
