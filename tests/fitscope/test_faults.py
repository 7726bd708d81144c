"""Faults during a study: the study goes on, nothing is lost, nothing is left RUNNING.

A crashing trial runs in-process (one trial's model builder is made to fail); Ctrl-C is sent to
the installed `fitscope` console script as a terminal would send it. (NaN losses: see
test_search_command.py; MLflow going down mid-study: tests/tracking/test_sync.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient

import search.training
from experiments.registry import load_spec
from fitscope.cli import main
from search.study import default_study_name, describe_failure
from tests.conftest import mlflow_runs, write_spec
from tests.processes import Fitscope, wait_until

HUGE = 2**57  # float64 elements: 1 EiB, beyond any address space, so refused at once


# --- one trial raises ---------------------------------------------------------------------------


def test_out_of_memory_is_named_as_such() -> None:
    with pytest.raises(MemoryError) as info:
        np.empty(HUGE)  # a real allocation failure, not a hand-made exception
    reason = describe_failure(info.value)
    assert reason.startswith("out of memory: ")
    assert "Unable to allocate" in reason
    assert describe_failure(MemoryError()) == "out of memory: MemoryError"


def test_tensorflow_resource_exhausted_is_out_of_memory() -> None:
    import tensorflow as tf

    exc = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor of shape")
    assert describe_failure(exc).startswith("out of memory: ResourceExhaustedError: OOM when")


def test_other_failures_keep_type_and_first_line() -> None:
    assert describe_failure(ValueError("bad shape\nsecond line")) == "ValueError: bad shape"
    assert describe_failure(RuntimeError()) == "RuntimeError"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (RuntimeError("CUDA_ERROR_ILLEGAL_ADDRESS in kernel"),
         "RuntimeError: CUDA_ERROR_ILLEGAL_ADDRESS in kernel"),
        (None, "out of memory: MemoryError: Unable to allocate"),
    ],
    ids=["exception", "out-of-memory"],
)
def test_a_crashing_trial_fails_alone_and_the_study_goes_on(
    workdir: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch,
    failure: Exception | None, reason: str,
) -> None:
    # Real crashes (a GPU fault, memory running out) are not reproducible on demand, so the
    # second trial's model builder fails; the first and third build real models.
    real_build = search.training.build_model
    calls: list[int] = []

    def build_model(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            if failure is not None:
                raise failure
            np.empty(HUGE)  # raises numpy's MemoryError subclass for real
        return real_build(*args, **kwargs)

    monkeypatch.setattr(search.training, "build_model", build_model)
    spec = write_spec(workdir, "xor", train__max_epochs=3, train__patience=3)
    assert main(["search", str(spec), "--trials", "3", "--study", "crash",
                 "--tracking-uri", tracking_uri]) == 0

    storage = f"sqlite:///{workdir / 'optuna.db'}"
    trials = optuna.load_study(study_name="crash", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials[1].user_attrs["fail_reason"].startswith(reason)
    assert trials[1].user_attrs["params"]  # what was tried is kept
    parent, children = mlflow_runs(tracking_uri, "xor")
    assert parent.info.status == "FINISHED"
    assert [c.info.status for c in children] == ["FINISHED", "FAILED", "FINISHED"]
    assert children[1].data.tags["fail_reason"] == trials[1].user_attrs["fail_reason"]
    assert children[1].data.tags["state"] == "FAIL"


# --- Ctrl-C ------------------------------------------------------------------------------------


def slow_first_trial(workdir: Path) -> tuple[Path, str, str]:
    """An iris spec whose first trial is slow (batch size 1: 96 steps an epoch, one per call,
    30 epochs) and whose later trials are quick (batch 64: 2 steps): (spec path, study name,
    storage URL).

    The median pruner makes each epoch an intermediate value, which says training has begun.
    The tests signal the process once the first epoch is in and expect the first trial to be the
    one interrupted. With 8 epochs, a loaded `make test` on a fast machine (2026-12-02) once
    found two trials after the SIGTERM: most likely the first had ended before the signal came.
    30 epochs leave seconds between the first epoch and the trial's end."""
    spec = write_spec(
        workdir, "iris",
        space={"n_layers": 1, "units": 8, "activation": "relu", "optimizer": "adam",
               "learning_rate": 0.01, "batch_size": [1, 64], "dropout": 0.0},
        train__max_epochs=30, train__patience=30, train__steps_per_execution=1,
        search__pruner="median",
    )
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    name = default_study_name(load_spec(str(spec)))
    study = optuna.create_study(study_name=name, storage=storage)
    study.enqueue_trial({"batch_size": 1})
    return spec, name, storage


def training_has_started(name: str, storage: str) -> bool:
    """The first trial is RUNNING and has reported at least one epoch."""
    try:
        trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except Exception:  # the subprocess holds a write lock for a moment: ask again
        return False
    return any(t.state.name == "RUNNING" and t.intermediate_values for t in trials)


def assert_nothing_running(tracking_uri: str, name: str, storage: str) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("iris")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []
    states = [t.state.name for t in optuna.load_study(study_name=name, storage=storage).trials]
    assert "RUNNING" not in states


def assert_interrupted_truthfully(tracking_uri: str, name: str, storage: str) -> str:
    """One FAIL trial (reason: interrupted), its run FAILED, the parent KILLED."""
    (trial,) = optuna.load_study(study_name=name, storage=storage).trials
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["fail_reason"].startswith("interrupted")
    assert trial.intermediate_values  # the epochs it did train are kept
    parent, (child,) = mlflow_runs(tracking_uri, "iris")
    assert parent.info.status == "KILLED"
    assert child.info.status == "FAILED"
    assert child.data.tags["fail_reason"].startswith("interrupted")
    history = MlflowClient(tracking_uri=tracking_uri).get_metric_history(
        child.info.run_id, "val_loss")
    assert len(history) >= 1  # its partial curve
    assert_nothing_running(tracking_uri, name, storage)
    return str(parent.info.run_id)


@pytest.mark.slow  # two real processes, each importing TensorFlow
def test_ctrl_c_fails_the_trial_kills_the_parent_and_the_same_command_resumes(
    workdir: Path, tracking_uri: str
) -> None:
    spec, name, storage = slow_first_trial(workdir)
    argv = ["search", str(spec), "--tracking-uri", tracking_uri]
    run = Fitscope([*argv, "--trials", "3"], cwd=workdir)
    try:
        wait_until(lambda: training_has_started(name, storage), "the first epoch", run)
        run.interrupt()
        # and again and again, as an impatient user does, until the process is gone: the
        # ones that land while the runs are being closed must not leave any RUNNING
        wait_until(lambda: _interrupt_again(run), "the process to end", every=0.05)
        assert run.wait() == 130, run.output()
    finally:
        run.close()
    assert "run the same command again to resume" in run.stderr
    assert "Ctrl-C is held until that is done" in run.stderr  # some landed while closing
    assert "Traceback" not in run.stderr
    parent_id = assert_interrupted_truthfully(tracking_uri, name, storage)

    optuna.load_study(study_name=name, storage=storage).enqueue_trial({"batch_size": 64})
    again = Fitscope([*argv, "--trials", "1"], cwd=workdir)
    try:
        assert again.wait() == 0, again.output()
    finally:
        again.close()
    assert "resuming" in again.stdout
    trials = optuna.load_study(study_name=name, storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    parent, children = mlflow_runs(tracking_uri, "iris")
    assert parent.info.run_id == parent_id
    assert parent.info.status == "FINISHED"
    assert [c.info.status for c in children] == ["FAILED", "FINISHED"]
    assert_nothing_running(tracking_uri, name, storage)


def _interrupt_again(run: Fitscope) -> bool:
    if not run.alive():
        return True
    try:
        run.interrupt()
    except ProcessLookupError:  # ended between the check and the signal
        return True
    return False
