"""Processes stopped from outside, storages failing, processes racing (issue 18): SIGTERM,
`sync` of a dead process's trials, a storage that stops accepting writes mid-study, the
`--workers` supervisor killed with -9, two `search` processes on one study."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from fitscope.cli import main
from search.record import MLFLOW_PARENT_STATUS, WORKER
from search.storage import Heartbeat, open_storage
from tests.conftest import mlflow_runs, write_spec
from tests.fitscope.test_faults import (
    assert_interrupted_truthfully,
    slow_first_trial,
    training_has_started,
)
from tests.processes import Fitscope, listening, wait_until
from tests.tracking.test_sync import finished_xor_study

# --- SIGTERM (item 2) ---------------------------------------------------------------------------


@pytest.mark.slow  # a real process importing TensorFlow
def test_sigterm_stops_a_search_like_ctrl_c(workdir: Path, tracking_uri: str) -> None:
    spec, name, storage = slow_first_trial(workdir)
    run = Fitscope(["search", str(spec), "--tracking-uri", tracking_uri, "--trials", "3"],
                   cwd=workdir)
    try:
        wait_until(lambda: training_has_started(name, storage), "the first epoch", run)
        run.proc.send_signal(signal.SIGTERM)  # what timeout, docker stop, Slurm send
        assert run.wait() == 143, run.output()
    finally:
        run.close()
    assert "run the same command again to resume" in run.stderr
    assert "Traceback" not in run.stderr
    assert_interrupted_truthfully(tracking_uri, name, storage)
    (trial,) = optuna.load_study(study_name=name, storage=storage).trials
    assert trial.user_attrs["fail_reason"] == "interrupted (SIGTERM)"


def _running_trial(storage_url: str, name: str, heartbeat_age: float) -> int:
    """A RUNNING trial of a process that is gone, its last heartbeat `heartbeat_age` s old."""
    storage = open_storage(storage_url, Heartbeat(interval=1, grace=1))
    study = optuna.load_study(study_name=name, storage=storage)
    trial = study.ask()
    trial.set_user_attr(WORKER, "elsewhere:1")
    storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
    time.sleep(heartbeat_age)
    return int(trial.number)


def _killed_mid_trial(workdir: Path, tracking_uri: str) -> tuple[Path, str, str]:
    """A finished study whose process then ran one more trial and was killed: the trial and the
    parent left RUNNING."""
    spec, name = finished_xor_study(workdir, tracking_uri, trials=1)
    parent, _ = mlflow_runs(tracking_uri, "xor")
    MlflowClient(tracking_uri=tracking_uri).update_run(parent.info.run_id, status="RUNNING")
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    optuna.load_study(study_name=name, storage=storage).set_user_attr(MLFLOW_PARENT_STATUS,
                                                                      "RUNNING")
    return spec, name, storage


def test_sync_fails_a_dead_process_trial_and_closes_the_parent(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, name, storage = _killed_mid_trial(workdir, tracking_uri)
    # SQLite keeps Optuna's heartbeat times to the second: 2.5 s could read as 2, not over it
    number = _running_trial(storage, name, heartbeat_age=3.5)
    monkeypatch.setenv("FITSCOPE_GRACE_PERIOD", "2")
    capsys.readouterr()
    assert main(["sync", str(spec), "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    assert f"trial {number}: no heartbeat for over 2 s" in out
    assert "closed FAILED" in out
    states = [t.state.name for t in optuna.load_study(study_name=name, storage=storage).trials]
    assert "RUNNING" not in states
    parent, children = mlflow_runs(tracking_uri, "xor")
    assert parent.info.status == "FAILED"
    assert [c.info.status for c in children] == ["FINISHED", "FAILED"]


def test_sync_says_why_it_leaves_the_parent_open(
    workdir: Path, tracking_uri: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec, name, storage = _killed_mid_trial(workdir, tracking_uri)
    number = _running_trial(storage, name, heartbeat_age=0)
    monkeypatch.setenv("FITSCOPE_GRACE_PERIOD", "600")  # its process may well be alive
    capsys.readouterr()
    assert main(["sync", str(spec), "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    assert f"parent run left RUNNING: trial(s) {number} still RUNNING" in out
    assert mlflow_runs(tracking_uri, "xor")[0].info.status == "RUNNING"


# --- the Optuna storage stops accepting writes mid-study (item 3) ------------------------------


def test_a_storage_that_becomes_unwritable_ends_the_study_in_one_line(
    workdir: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    # As root (the test machines) no permission makes a file unwritable and a read-only
    # remount needs privileges, so the storage's writes start failing the way SQLite fails on
    # a read-only filesystem, from inside the second trial's training.
    import sqlalchemy.exc
    from optuna.storages import RDBStorage

    import search.training

    def refuse(*args: object, **kwargs: object) -> None:
        raise sqlalchemy.exc.OperationalError(
            "UPDATE trials", {}, Exception("attempt to write a readonly database"))

    real_build = search.training.build_model
    calls: list[int] = []

    def build_model(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            for method in ("set_trial_user_attr", "set_trial_state_values", "set_trial_param",
                           "set_trial_intermediate_value", "create_new_trial",
                           "set_study_user_attr", "set_trial_system_attr"):
                monkeypatch.setattr(RDBStorage, method, refuse)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(search.training, "build_model", build_model)
    spec = write_spec(workdir, "iris", train__max_epochs=6, train__patience=6,
                      search__pruner="median")
    code = main(["search", str(spec), "--trials", "3", "--tracking-uri", tracking_uri])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("fitscope: error:")]
    assert len(lines) == 1 and "failed mid-study" in lines[0], err
    assert "attempt to write a readonly database" in lines[0]
    assert "Should not reach" not in err and "Traceback" not in err
    curve_warnings = [r for r in caplog.records if "could not save its curves" in r.message]
    assert len(curve_warnings) <= 1
    parent, children = mlflow_runs(tracking_uri, "iris")
    assert parent.info.status == "FAILED"
    assert [c.info.status for c in children] == ["FINISHED"]


# --- Ctrl-C edge cases (item 13) ----------------------------------------------------------------


class SwallowsOneCtrlC:
    """An observer during which a Ctrl-C lands and is swallowed, as Python swallows one raised
    in a weakref callback ("Exception ignored in: <weakref callback>")."""

    def on_study_start(self, study: optuna.Study, spec: object) -> None:
        pass

    def on_trial_end(self, study: optuna.Study, record: object) -> None:
        if len(study.trials) == 1:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            except KeyboardInterrupt:
                pass

    def on_study_end(self, study: optuna.Study, outcome: str) -> None:
        self.outcome = outcome


def test_a_ctrl_c_swallowed_as_a_trial_ends_starts_no_other_trial(workdir: Path) -> None:
    from experiments.data import load_dataset
    from experiments.registry import load_spec
    from search.study import StudySettings, run_study

    spec = load_spec(str(write_spec(workdir, "xor", train__max_epochs=1, train__patience=1)))
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    settings = StudySettings(study_name="s", storage=storage, trials=3, timeout=None, seed=1,
                             runs_dir=workdir / "runs")
    observer = SwallowsOneCtrlC()
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, load_dataset(spec), settings, [observer])  # type: ignore[list-item]
    assert observer.outcome == "interrupted"
    trials = optuna.load_study(study_name="s", storage=storage).trials
    # before: trial 1 was created and left FAIL with no reason and no run
    assert [t.state.name for t in trials] == ["COMPLETE"]


# --- the --workers supervisor killed with -9 (item 5) ------------------------------------------


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped by init counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow  # a launcher, an MLflow server and a worker, each importing TensorFlow
def test_workers_and_the_mlflow_server_die_with_a_killed_supervisor(
    workdir: Path, tracking_uri: str
) -> None:
    spec, name, storage = slow_first_trial(workdir)
    run = Fitscope(["search", str(spec), "--tracking-uri", tracking_uri, "--trials", "2",
                    "--workers", "1"], cwd=workdir)
    try:
        wait_until(lambda: training_has_started(name, storage), "the first epoch", run)
        out = run.stdout
        workers = [int(pid) for pid in re.findall(r"started: pid (\d+)", out)]
        port = int(re.findall(r"mlflow server http://127\.0\.0\.1:(\d+)", out)[0])
        assert len(workers) == 1, out
        run.proc.kill()  # kill -9: no clean-up code runs in the supervisor
        run.wait()
        # before: the server still answered 8 minutes later, the worker trained on
        wait_until(lambda: not any(_alive(pid) for pid in workers), "the worker to exit",
                   limit=60)
        wait_until(lambda: not listening(port), "the MLflow server to stop", limit=60)
    finally:
        run.close()
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert trials[0].state.name == "FAIL"
    assert trials[0].user_attrs["fail_reason"] == "interrupted (SIGTERM)"
