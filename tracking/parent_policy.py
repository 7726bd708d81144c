"""Who opens and who closes a study's MLflow parent run, by the role of the process.

- `OwnsParent` ("study", "launcher"): the process that runs the study (or supervises its
  workers) reopens the parent at the start and closes it at the end with the study's outcome.
  The launcher runs after its workers stopped, so it also writes every run still missing.
  Two such processes on one study (two `search` commands started together) share one parent:
  on one machine they take turns finding or creating it (a file lock next to the study's
  runs), and the one that ends while the other still runs trials leaves it open to that one.
- `JoinsParent` ("worker"): a supervised worker finds the launcher's parent and writes its own
  trials' runs; it never closes the parent.
- `SharesParent` ("standalone"): one of many independent workers (`fitscope worker`, many
  machines). The first ones agree on one parent (see `open`), and the last to finish, when no
  trial of the study is running or waiting, summarises and closes it; a later worker reopens it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from common.text import first_line
from search import record as trial_record
from search.study import worker_id

if TYPE_CHECKING:
    import optuna

    from tracking.study_runs import StudyRuns

log = logging.getLogger(__name__)
PARENT_STATUS = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
PARENT_SETTLE_S = 5.0  # standalone workers agree on one parent run (see SharesParent.open)


class ParentPolicy(Protocol):
    def open(self, runs: StudyRuns, study: optuna.Study) -> str:
        """Return the parent run id this process writes under."""
        ...

    def close(self, runs: StudyRuns, study: optuna.Study, outcome: str) -> None:
        """At the study's end: write what is missing and close the parent if this role may."""
        ...


class OwnsParent:
    def __init__(self, writes_every_run: bool = False) -> None:
        self.writes_every_run = writes_every_run  # the launcher: dead workers' runs too

    def open(self, runs: StudyRuns, study: optuna.Study) -> str:
        # find-or-create is not atomic in MLflow: without the lock two processes starting
        # together both find no parent and both create one
        with _parent_lock(runs.settings.runs_dir):
            parent = runs.reopen_parent(study)
            study.set_user_attr(trial_record.MLFLOW_PARENT_STATUS, "RUNNING")
        return parent

    def close(self, runs: StudyRuns, study: optuna.Study, outcome: str) -> None:
        try:
            runs.write_missing(study, only_worker=None if self.writes_every_run else worker_id())
            runs.summarise(study)
        except Exception as exc:  # report, then still close the parent below
            log.warning(
                "MLflow summary of study %s incomplete: %s", study.study_name, first_line(exc)
            )
        others = _others_running(study)
        if others:  # another process shares this parent: the last one to end closes it
            log.warning(
                "MLflow parent run %s left RUNNING: trial(s) %s of another process are running; "
                "the last process to end closes it (or `fitscope sync %s --study %s`)",
                runs.parent_run_id, ", ".join(map(str, others)), runs.spec.name,
                study.study_name,
            )
            return
        status = PARENT_STATUS.get(outcome, "FAILED")
        try:
            study.set_user_attr(trial_record.MLFLOW_PARENT_STATUS, status)
        except Exception as exc:  # the Optuna storage is gone too; still try MLflow
            log.warning("could not record the study's outcome: %s", first_line(exc))
        try:
            runs.close_parent(status)
        except Exception as exc:
            log.warning(
                "could not close MLflow run %s (%s): run `fitscope sync %s --study %s` when "
                "MLflow is back",
                runs.parent_run_id,
                first_line(exc),
                runs.spec.name,
                study.study_name,
            )


class JoinsParent:
    def open(self, runs: StudyRuns, study: optuna.Study) -> str:
        return runs.find_parent(study) or runs.reopen_parent(study)  # the launcher opened it

    def close(self, runs: StudyRuns, study: optuna.Study, outcome: str) -> None:
        _write_own_runs(runs, study, outcome, close_if_last=False)


class SharesParent:
    def open(self, runs: StudyRuns, study: optuna.Study) -> str:
        """MLflow cannot create a run only if none exists, so each worker that finds no parent
        creates one and records it in the study; the study attribute is last-writer-wins, so
        after PARENT_SETTLE_S (far more than one create call) every such worker reads it again,
        adopts the run it names and deletes its own if that lost."""
        if runs.find_parent(study):
            parent = runs.reopen_parent(study)
        else:
            mine = runs.create_parent(study)
            time.sleep(PARENT_SETTLE_S)
            parent = str(study.user_attrs.get(trial_record.MLFLOW_PARENT) or mine)
            if parent != mine:
                runs.client.delete_run(mine)
        study.set_user_attr(trial_record.MLFLOW_PARENT_STATUS, "RUNNING")
        return parent

    def close(self, runs: StudyRuns, study: optuna.Study, outcome: str) -> None:
        _write_own_runs(runs, study, outcome, close_if_last=True)


def _write_own_runs(
    runs: StudyRuns, study: optuna.Study, outcome: str, close_if_last: bool
) -> None:
    from optuna.trial import TrialState

    try:
        runs.write_missing(study, only_worker=worker_id())
        busy = study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
        if not close_if_last or outcome != "finished" or busy:
            return
        runs.summarise(study)
        study.set_user_attr(trial_record.MLFLOW_PARENT_STATUS, "FINISHED")
        runs.close_parent("FINISHED")
    except Exception as exc:  # the runs stay in Optuna: `fitscope sync` writes them later
        log.warning(
            "MLflow could not take this worker's last runs of study %s (%s): run "
            "`fitscope sync %s --study %s` later",
            study.study_name,
            first_line(exc),
            runs.spec.name,
            study.study_name,
        )


def _others_running(study: optuna.Study) -> list[int]:
    """RUNNING trials of other processes (alive as far as their heartbeat says: Optuna fails
    stale ones before every new trial)."""
    from optuna.trial import TrialState

    me = worker_id()
    try:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    except Exception as exc:  # the storage failed: nobody can tell, so close it as usual
        log.warning("could not read the study's running trials: %s", first_line(exc))
        return []
    return [t.number for t in running if t.user_attrs.get(trial_record.WORKER) != me]


@contextmanager
def _parent_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock held by one process of this machine at a time (fcntl; elsewhere
    nothing is locked)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".mlflow-parent.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


POLICIES: dict[str, ParentPolicy] = {
    "study": OwnsParent(),
    "launcher": OwnsParent(writes_every_run=True),
    "worker": JoinsParent(),
    "standalone": SharesParent(),
}
