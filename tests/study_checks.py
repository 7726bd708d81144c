"""Helpers for the parallel-worker tests: run fitscope as a real process, wait for a study to
reach a state, and check that Optuna and MLflow agree trial by trial."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def fitscope(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """Start `python -m fitscope ARGS` as a process of its own; its output goes to a file in
    `cwd` (a pipe nobody reads while the test waits could fill up and stall it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = cwd / f"fitscope-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "fitscope", *args], cwd=cwd, env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    proc.log_path = log  # type: ignore[attr-defined]
    return proc


def finish(proc: subprocess.Popen[str], timeout: float = 900) -> tuple[int, str]:
    """Wait for a process (the limit only turns a hang into a failure); return (exit code,
    its output)."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode, proc.log_path.read_text()  # type: ignore[attr-defined]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 600, every: float = 0.2) -> Any:
    """Poll `check` until it returns something truthy; fail the test if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what}")


def load(storage: str, study_name: str) -> optuna.Study:
    from search.storage import sqlalchemy_url

    return optuna.load_study(study_name=study_name, storage=sqlalchemy_url(storage))


def running_mid_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """A RUNNING trial whose worker is known and that has trained at least one epoch."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get("worker") and trial.user_attrs.get("history", {}).get("loss"):
            return trial
    return None


def kill_mid_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """SIGKILL the worker of a trial that is certainly still running.

    The worker is frozen first (SIGSTOP) and its trial read again: killed only if it is still
    RUNNING, else thawed and another trial waited for. No race with the trial's end.
    """
    while True:
        trial = wait_for("a trial in mid-training", lambda: running_mid_trial(study))
        pid = worker_pid(trial)
        os.kill(pid, signal.SIGSTOP)
        now = study._storage.get_trial(trial._trial_id)
        if now.state == TrialState.RUNNING:
            os.kill(pid, signal.SIGKILL)
            return now
        os.kill(pid, signal.SIGCONT)


def worker_pid(trial: optuna.trial.FrozenTrial) -> int:
    return int(str(trial.user_attrs["worker"]).rsplit(":", 1)[1])


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def server_port(output: str) -> int:
    match = re.search(r"mlflow server http://127\.0\.0\.1:(\d+)", output)
    assert match, f"the launcher did not report its MLflow server:\n{output[-3000:]}"
    return int(match.group(1))


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def check_study(
    study: optuna.Study, tracking_uri: str, experiment: str, counted: int
) -> dict[int, Any]:
    """The checks every parallel run must pass; returns trial number -> child run.

    - exactly `counted` COMPLETE/PRUNED trials, nothing RUNNING or WAITING;
    - exactly one MLflow child run per finished Optuna trial (by study and trial number), under
      the study's one parent, none RUNNING, each with the status of its trial.
    """
    from mlflow.tracking import MlflowClient

    from tracking.trial_run import RUN_STATUS

    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == counted, states
    assert all(s in FINISHED for s in states), states
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], max_results=5000)
    parents = [r for r in runs if r.data.tags.get("fitscope.role") == "study"]
    children = [r for r in runs if r.data.tags.get("fitscope.role") == "trial"
                and r.data.tags.get("fitscope.study") == study.study_name]
    assert len(parents) == 1, [p.info.run_id for p in parents]
    assert parents[0].info.status != "RUNNING"
    numbers = [int(r.data.tags["trial_number"]) for r in children]
    assert len(numbers) == len(set(numbers)), f"duplicate child runs: {sorted(numbers)}"
    assert sorted(numbers) == [t.number for t in trials]
    by_number = {int(r.data.tags["trial_number"]): r for r in children}
    for trial in trials:
        run = by_number[trial.number]
        assert run.info.status == RUN_STATUS[trial.state.name], (trial.number, run.info.status)
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    return by_number
